"""Inference engines: turn texts into positive-class probabilities, split into a cheap, thread-safe
``prepare`` step (tokenisation, run per request outside the model) and a batched ``infer`` step
(run by the single batch worker, so the model itself needs no lock).

Transformer engines sort a micro-batch by token length and run it in sub-batches padded to their own
longest member, splitting where the padding saved outweighs the cost of one more model call
(``split_batch``): Rotten Tomatoes sentences range from 3 to 64 tokens, so one batch padded to its
longest row wastes about half its FLOPs.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from components.common.models import TFIDF_FLAVOR, TextClassifier, TransformerModel
from serving.config import ServingSettings
from serving.probe import PROBE_TEXTS

log = logging.getLogger(__name__)


def cpu_limit() -> int:
    """CPUs this process may use: the cgroup quota (v2 or v1) capped by the affinity mask."""
    available = len(os.sched_getaffinity(0))
    quota = period = None
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if fields[0] != "max":
            quota, period = int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        try:
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if q > 0:
                quota, period = q, p
        except (OSError, ValueError):
            pass
    if quota and period:
        return max(1, min(available, math.floor(quota / period)))
    return available


class Engine(Protocol):
    """What the batcher drives."""

    flavor: str
    precision: str
    releases_gil: bool  # False: the batcher runs it on the event loop, not in a thread

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        """Per-text features, computed outside the batch worker."""
        ...

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        """Positive-class probabilities for a batch of prepared features, shape (n,)."""
        ...


class TfidfEngine:
    """The scikit-learn baseline: vectorising is cheap, so features are the texts themselves."""

    flavor = TFIDF_FLAVOR
    precision = "fp64"
    releases_gil = False

    def __init__(self, model: TextClassifier) -> None:
        self.model = model

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        return list(texts)

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        import sklearn

        # The inputs are our own validated strings: skip scikit-learn's per-call parameter checks.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return self.model.predict_proba(list(features))


def split_batch(lengths: Sequence[int], call_cost_tokens: int) -> list[int]:
    """Where to cut ascending ``lengths`` into sub-batches: the end index of each.

    Minimises the padded tokens (rows x longest row, per sub-batch) plus ``call_cost_tokens`` per
    sub-batch, the fixed cost of one model call expressed in tokens (exact dynamic programme; n <= batch).
    """
    n = len(lengths)
    best = [0.0] + [math.inf] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(end):
            cost = best[start] + call_cost_tokens + (end - start) * lengths[end - 1]
            if cost < best[end]:
                best[end], cut[end] = cost, start
    ends, end = [], n
    while end > 0:
        ends.append(end)
        end = cut[end]
    return ends[::-1]


class _TokenEngine:
    """Shared by the transformer engines: tokenise per request, run length-sorted padded sub-batches."""

    flavor = "transformer"
    precision = "fp32"
    releases_gil = True

    def __init__(self, tokenizer: Any, max_length: int, call_cost_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.call_cost_tokens = call_cost_tokens
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.keys = list(tokenizer.model_input_names)

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        keys = [k for k in self.keys if k in encoded]
        return [{k: encoded[k][i] for k in keys} for i in range(len(texts))]

    def pad(self, features: Sequence[dict[str, list[int]]]) -> dict[str, np.ndarray]:
        """Right-pad one sub-batch to its longest member (int64 arrays, as both runtimes take)."""
        width = max(len(f["input_ids"]) for f in features)
        batch: dict[str, np.ndarray] = {}
        for key in features[0]:
            array = np.full((len(features), width), self.pad_id if key == "input_ids" else 0, dtype=np.int64)
            for row, feature in enumerate(features):
                array[row, : len(feature[key])] = feature[key]
            batch[key] = array
        return batch

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
        lengths = [len(features[i]["input_ids"]) for i in order]
        probs = np.empty(len(features))
        start = 0
        for end in split_batch(lengths, self.call_cost_tokens):
            rows = order[start:end]
            probs[rows] = self.run(self.pad([features[i] for i in rows]))
            start = end
        return probs

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Positive-class probabilities of one padded sub-batch."""
        raise NotImplementedError


class TorchEngine(_TokenEngine):
    """A Hugging Face classifier in torch: fp16 on CUDA, fp32 or dynamic int8 on CPU."""

    def __init__(self, model: TransformerModel, quantize: str, call_cost_tokens: int) -> None:
        import torch

        super().__init__(model.tokenizer, model.max_length, call_cost_tokens)
        self.model = model
        if model.device.type == "cuda":
            model.model.half()
            self.precision = "fp16"
        elif quantize == "dynamic_int8":
            model.model = torch.ao.quantization.quantize_dynamic(
                model.model, {torch.nn.Linear}, dtype=torch.qint8
            )
            self.precision = "int8-dynamic"

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        return self.model.predict_tokens({k: torch.from_numpy(v) for k, v in batch.items()})


class OnnxEngine(_TokenEngine):
    """The same classifier exported to ONNX and run by ONNX Runtime on CPU (fp32 or dynamic int8)."""

    def __init__(self, model: TransformerModel, settings: ServingSettings, threads: int) -> None:
        from serving.onnx_export import build_onnx, session

        super().__init__(model.tokenizer, model.max_length, settings.call_cost_tokens)
        int8 = settings.quantize == "dynamic_int8"
        build = build_onnx(
            model,
            Path(settings.onnx_cache_dir),
            settings.quantize,
            PROBE_TEXTS,
            settings.int8_max_prob_diff if int8 else settings.onnx_max_prob_diff,
        )
        self.precision = build.precision
        self.session = session(build.path, threads, settings.onnx_allow_spinning)
        self.inputs = [i.name for i in self.session.get_inputs()]
        log.info(
            "onnx %s (%s): mean probability difference %.2e vs torch, label agreement %.3f on %d probe texts",
            build.precision,
            "cached" if build.reused else "exported",
            build.mean_prob_diff,
            build.label_agreement,
            len(PROBE_TEXTS),
        )

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        from serving.onnx_export import positive_probability

        logits = self.session.run(["logits"], {name: batch[name] for name in self.inputs})[0]
        return positive_probability(logits.astype(np.float64))


def inference_threads(requested: int) -> int:
    """Intra-op threads for the model: ``requested``, or the cgroup CPU limit when 0."""
    return requested or cpu_limit()


def configure_torch(threads: int) -> None:
    """Give torch ``threads`` intra-op threads and one inter-op thread."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def build_engine(model: TextClassifier, settings: ServingSettings) -> Engine:
    """The engine for a loaded model's flavour and the configured runtime."""
    if not isinstance(model, TransformerModel):
        return TfidfEngine(model)
    threads = inference_threads(settings.inference_threads)
    configure_torch(threads)  # torch also runs the ONNX path's one-off export and probe check
    runtime = settings.runtime
    if runtime == "auto":
        runtime = "torch" if model.device.type == "cuda" else "onnx"
    if runtime == "onnx":
        engine: Engine = OnnxEngine(model, settings, threads)
    else:
        engine = TorchEngine(model, settings.quantize, settings.call_cost_tokens)
    log.info("%s runtime: %d threads, precision %s", runtime, threads, engine.precision)
    return engine


def warm_up(engine: Engine, max_batch: int, rounds: int) -> None:
    """Run the probe texts at batch 1 and at the max batch so the first requests do not pay for lazy init."""
    for size in sorted({1, max_batch}):
        batch = [PROBE_TEXTS[i % len(PROBE_TEXTS)] for i in range(size)]
        for _ in range(rounds):
            engine.infer(engine.prepare(batch))
