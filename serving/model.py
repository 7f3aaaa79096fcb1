"""The KServe model: verified load + warm-up, V1/V2 request handling, fault injection, metrics and
payload logging. Heavy lifting lives in engine.py (inference) and batching.py (micro-batching).

Responses (docs/contracts.md): every prediction carries the predicted class (``label``, ``label_name``,
``class_index``), ``probability`` and the probability of every class. The default binary sentiment task keeps
its original fields and meanings (``label`` the class id, ``probability`` P(positive)); any other label map
answers with ``label`` = the class name and ``probability`` = the predicted class's probability.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Any

import kserve
import numpy as np
from kserve.errors import InferenceError
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from components.common.model_source import resolve_model
from components.common.models import LABELS
from serving.batching import MicroBatcher
from serving.config import ServingSettings
from serving.engine import build_engine, recorded_int8_loss, warm_up
from serving.metrics import MODEL_INFO, class_matrix, class_series, observe_predictions, predicted_classes
from serving.payload_log import PayloadLogger
from serving.protocol import InputError, Limits, ParsedRequest, v1_texts, v2_texts

log = logging.getLogger(__name__)


def _v2_body(request: InferRequest) -> dict[str, Any]:
    """An InferRequest (REST or gRPC) as the JSON shape ``v2_texts`` validates."""
    inputs = []
    for tensor in request.inputs:
        data = tensor.data if tensor.data is not None else []
        try:
            data = [d.decode("utf-8") if isinstance(d, bytes) else d for d in data]
        except UnicodeDecodeError as exc:
            raise InputError("BYTES data must be UTF-8 text") from exc
        inputs.append({"datatype": tensor.datatype, "shape": list(tensor.shape), "data": data})
    return {"id": request.id, "inputs": inputs}


def v1_predictions(
    names: tuple[str, ...], proba: np.ndarray, model_name: str, model_version: str
) -> list[dict[str, Any]]:
    """The V1 ``predictions`` list for an (n, k) probability matrix over the classes ``names``."""
    binary = names == LABELS
    rows = np.round(proba, 6).tolist()
    out = []
    for index, row in zip(predicted_classes(names, proba).tolist(), rows, strict=True):
        out.append(
            {
                "label": index if binary else names[index],
                "label_name": names[index],
                "class_index": index,
                "probability": row[1] if binary else row[index],
                "probabilities": dict(zip(names, row, strict=True)),
                "model_name": model_name,
                "model_version": model_version,
            }
        )
    return out


def v2_outputs(names: tuple[str, ...], proba: np.ndarray) -> list[InferOutput]:
    """The V2 output tensors for an (n, k) probability matrix (see ``output_types`` for their meaning)."""
    binary = names == LABELS
    n, k = proba.shape
    index = predicted_classes(names, proba)
    rounded = np.round(proba, 6)
    chosen = rounded[:, 1] if binary else rounded[np.arange(n), index]
    label_names = [names[i] for i in index.tolist()]
    return [
        InferOutput("label", [n], "INT64", index.tolist())
        if binary
        else InferOutput("label", [n], "BYTES", label_names),
        InferOutput("label_name", [n], "BYTES", label_names),
        InferOutput("probability", [n], "FP64", chosen.tolist()),
        InferOutput("class_index", [n], "INT64", index.tolist()),
        InferOutput("probabilities", [n, k], "FP64", rounded.ravel().tolist()),  # row-major
        InferOutput("class_names", [k], "BYTES", list(names)),
    ]


def output_types(names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The V2 output metadata of a model with classes ``names``: ``label`` is the class id (INT64) for the
    default binary task, the class name (BYTES) otherwise; ``probabilities`` columns follow ``class_names``."""
    k = len(names)
    return [
        {"name": "label", "datatype": "INT64" if names == LABELS else "BYTES", "shape": [-1]},
        {"name": "label_name", "datatype": "BYTES", "shape": [-1]},
        {"name": "probability", "datatype": "FP64", "shape": [-1]},
        {"name": "class_index", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, k]},
        {"name": "class_names", "datatype": "BYTES", "shape": [k]},
    ]


class SentimentPredictor(kserve.Model):
    """Serves one sentiment model (either flavour) under ``name``."""

    def __init__(self, name: str, settings: ServingSettings) -> None:
        super().__init__(name)
        self.settings = settings
        self.limits = Limits.from_settings(settings)
        self.version = "unloaded"
        self.names: tuple[str, ...] = LABELS  # the served model's class names, set at load
        self.batcher: MicroBatcher | None = None
        self.payload_log: PayloadLogger | None = None

    def load(self) -> bool:
        """Fetch, verify, load and warm up the model; only then is it ready."""
        s = self.settings
        if s.expected_model_digest is None and s.allow_unpinned_model:
            log.warning("serving %s WITHOUT an expected digest (--allow-unpinned-model)", s.model_dir)
        loaded = resolve_model(
            s.model_dir,
            expected_digest=s.expected_model_digest,
            device=None if s.device == "auto" else s.device,
            allow_unpinned=s.allow_unpinned_model,
            digest_flag="--expected-model-digest (env SENTIMENTOPS_EXPECTED_MODEL_DIGEST)",
        )
        self.version = s.model_version or loaded.version
        engine = build_engine(loaded.model, s, recorded_int8_loss(s, loaded.tags))
        warm_up(engine, s.max_batch_size, s.warmup_rounds)
        self.batcher = MicroBatcher(
            engine.infer, s.max_batch_size, s.max_batch_wait_ms / 1000, s.max_queue, not engine.releases_gil
        )
        # engine.flavor must not shadow kserve's ``self.engine`` flag (True means "start an engine")
        self.flavor = engine.flavor
        self._engine = engine
        self.names = engine.names
        class_series(self.names, s.max_metric_classes)  # every class's series exists at 0 from the start
        MODEL_INFO.labels(self.name, self.version, engine.flavor, loaded.digest, engine.precision).set(1)
        if s.payload_log_uri:
            self.payload_log = PayloadLogger(
                s.payload_log_uri,
                self.name,
                s.payload_log_sample_rate,
                s.payload_log_flush_s,
                s.payload_log_max_buffer,
                s.payload_log_max_buffer_bytes,
            )
            self.payload_log.start()
        log.info(
            "loaded %s (%s, version %s, classes %s) from %s",
            self.name,
            engine.flavor,
            self.version,
            ",".join(self.names),
            loaded.path,
        )
        self.ready = True
        return self.ready

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> ParsedRequest:
        """Validate the request against the input contract (400 on any violation)."""
        if isinstance(payload, InferRequest):
            request_id, texts = v2_texts(_v2_body(payload), self.limits)
            return ParsedRequest(True, request_id, texts)
        request_id = (headers or {}).get("x-request-id") or uuid.uuid4().hex
        return ParsedRequest(False, request_id, v1_texts(payload, self.limits))

    async def predict(self, payload: ParsedRequest, headers: dict[str, str] | None = None) -> Any:
        """Inject configured faults, then run the texts through the micro-batcher."""
        s = self.settings
        if s.fault_latency_ms:
            await asyncio.sleep(s.fault_latency_ms / 1000)
        if s.fault_error_rate and random.random() < s.fault_error_rate:
            raise InferenceError("injected fault (fault_error_rate)")
        assert self.batcher is not None, "model not loaded"
        probs = await self.batcher.submit(self._engine.prepare(payload.texts))
        return payload, probs

    async def postprocess(self, result: Any, headers: dict[str, str] | None = None, *_: Any) -> Any:
        """Record metrics and the payload log, then shape the response for the caller's protocol."""
        request, probs = result
        names, proba = class_matrix(probs, self.names)  # (n, k) in class-id order, checked against the names
        observe_predictions(request.texts, proba, names, self.settings.max_metric_classes)
        if self.payload_log is not None:
            self.payload_log.log(request.request_id, self.version, request.texts, proba, names)
        if request.v2:
            outputs = v2_outputs(names, proba)
            return InferResponse(request.request_id, self.name, outputs, model_version=self.version)
        return {"predictions": v1_predictions(names, proba, self.name, self.version)}

    def get_input_types(self) -> list[dict]:
        return [{"name": "text", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        return output_types(self.names)

    def close(self) -> None:
        """Release the batch worker and flush the payload log (idempotent; after the server drained)."""
        self.ready = False
        if self.batcher is not None:
            self.batcher.close()
            self.batcher = None
        if self.payload_log is not None:
            self.payload_log.close()
            self.payload_log = None

    def stop(self) -> None:
        """KServe calls this on unload/shutdown."""
        self.close()
