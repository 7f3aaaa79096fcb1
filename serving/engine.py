"""Inference engines: turn texts into class probabilities (n, k), split into a cheap, thread-safe
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

from components.common.artifacts import ArtifactError
from components.common.models import (
    ENSEMBLE_FLAVOR,
    TFIDF_FLAVOR,
    EnsembleModel,
    TextClassifier,
    TransformerModel,
)
from components.evaluate.int8 import INT8_LOSS_TAG
from serving.config import ServingSettings
from serving.onnx_export import shipped
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
    names: tuple[str, ...]  # the model's class names in id order: the columns of ``infer``'s matrix

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        """Per-text features, computed outside the batch worker."""
        ...

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        """Class probabilities for a batch of prepared features, shape (n, k), columns in ``names`` order."""
        ...


class TfidfEngine:
    """The scikit-learn baseline: vectorising is cheap, so features are the texts themselves."""

    flavor = TFIDF_FLAVOR
    precision = "fp64"
    releases_gil = False

    def __init__(self, model: TextClassifier) -> None:
        self.model = model
        self.names = model.labels.names

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

    def __init__(self, max_length: int, call_cost_tokens: int, pad_id: int, names: tuple[str, ...]) -> None:
        self.names = names
        self.max_length = max_length
        self.call_cost_tokens = call_cost_tokens
        self.pad_id = pad_id

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        """Token ids (and masks) per text, truncated to ``max_length``, unpadded."""
        raise NotImplementedError

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
        probs = np.empty((len(features), len(self.names)))
        start = 0
        for end in split_batch(lengths, self.call_cost_tokens):
            rows = order[start:end]
            probs[rows] = self.run(self.pad([features[i] for i in rows]))
            start = end
        return probs

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """Class probabilities (rows, k) of one padded sub-batch."""
        raise NotImplementedError


class TorchEngine(_TokenEngine):
    """A Hugging Face classifier in torch: fp16 on CUDA, fp32 or dynamic int8 on CPU."""

    def __init__(self, model: TransformerModel, quantize: str, call_cost_tokens: int) -> None:
        import torch

        tokenizer = model.tokenizer
        super().__init__(
            model.max_length, call_cost_tokens, int(tokenizer.pad_token_id or 0), model.labels.names
        )
        self.tokenizer = tokenizer
        self.keys = list(tokenizer.model_input_names)
        self.model = model
        if model.device.type == "cuda":
            model.model.half()
            self.precision = "fp16"
        elif quantize == "dynamic_int8":
            model.model = torch.ao.quantization.quantize_dynamic(
                model.model, {torch.nn.Linear}, dtype=torch.qint8
            )
            self.precision = "int8-dynamic"

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        keys = [k for k in self.keys if k in encoded]
        return [{k: encoded[k][i] for k in keys} for i in range(len(texts))]

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        return self.model.predict_tokens({k: torch.from_numpy(v) for k, v in batch.items()})


class OnnxEngine(_TokenEngine):
    """One of the ONNX graphs shipped in the (verified) model directory, run by ONNX Runtime on CPU.

    Loading checks the graph against torch: its answers on the probe texts, tokenised and batched exactly as
    requests are, must match the (n, k) probabilities torch gave when the pipeline exported it (recorded in
    the manifest's metadata, so inside the digest; a graph with another number of classes than the model's
    label map is refused there too)."""

    def __init__(
        self, model: TransformerModel, variant: str, settings: ServingSettings, threads: int
    ) -> None:
        from serving.onnx_export import (
            GRAPHS,
            PRECISION,
            ServingTokenizer,
            compare_probe,
            probe_digest,
            session,
            shipped,
        )

        record = shipped(model.manifest)
        graph = (record or {}).get("graphs", {}).get(variant)
        if record is None or graph != GRAPHS.get(variant) or graph not in model.manifest.files:
            raise ArtifactError(
                f"model {model.manifest.digest[:12]} ships no verified ONNX {variant} graph: export it in the "
                "pipeline (python -m components.export --model-dir <dir>) or serve with --runtime torch"
            )
        if record.get("probe_sha256") != probe_digest(PROBE_TEXTS):
            raise ArtifactError("the model's recorded probe answers are for other probe texts: re-export it")
        self.session = session(model.model_dir / graph, threads, settings.onnx_allow_spinning)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = ServingTokenizer(model.model_dir, model.max_length, self.inputs)
        super().__init__(
            model.max_length, settings.call_cost_tokens, self.tokenizer.pad_id, model.labels.names
        )
        width = next(o.shape[-1] for o in self.session.get_outputs() if o.name == "logits")
        if isinstance(width, int) and width != len(self.names):  # a symbolic width is checked by the probe
            raise ArtifactError(
                f"ONNX {variant} graph outputs {width} logits but the model declares {len(self.names)} "
                f"classes {list(self.names)}"
            )
        self.precision = PRECISION[variant]
        tolerance = settings.onnx_max_prob_diff if variant == "fp32" else settings.int8_max_prob_diff
        check = compare_probe(
            self.infer(self.prepare(PROBE_TEXTS)), record.get("probe_reference", []), variant, tolerance
        )
        log.info(
            "onnx %s: probability vs torch max %.2e mean %.2e, label agreement %.3f on %d probe texts",
            variant,
            check.max_abs_diff,
            check.mean_abs_diff,
            check.label_agreement,
            len(PROBE_TEXTS),
        )

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        return self.tokenizer(texts)

    def run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        from serving.onnx_export import softmax

        logits = self.session.run(["logits"], batch)[0]
        return softmax(logits.astype(np.float64))


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


def _cuda_present() -> bool:
    """A GPU this process can use; torch (seconds to import) is asked only where an NVIDIA device exists."""
    if not Path("/dev/nvidiactl").exists() or os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def choose_runtime(model: TransformerModel, settings: ServingSettings) -> str:
    """``settings.runtime``, or for ``auto``: torch on CUDA, the shipped ONNX graphs on CPU (torch when a
    model ships none: slower, never unchecked)."""
    if settings.runtime != "auto":
        return settings.runtime
    cuda = settings.device == "cuda" or (settings.device == "auto" and _cuda_present())
    if cuda:
        return "torch"
    if shipped(model.manifest) is None:
        log.warning("model %s ships no ONNX graphs: serving it with torch", model.manifest.digest[:12])
        return "torch"
    return "onnx"


def choose_variant(settings: ServingSettings, int8_loss: float | None) -> tuple[str, str]:
    """(ONNX graph to serve, why): ``quantize`` when set; for ``auto``, int8 only when its accuracy loss on
    the validation split, recorded by evaluate in the registry, is at most ``max_int8_accuracy_loss``."""
    if settings.quantize != "auto":
        return ("int8" if settings.quantize == "dynamic_int8" else "fp32"), f"--quantize {settings.quantize}"
    if int8_loss is None:
        return "fp32", "no recorded int8 accuracy loss"
    verdict = "<=" if int8_loss <= settings.max_int8_accuracy_loss else ">"
    variant = "int8" if verdict == "<=" else "fp32"
    return (
        variant,
        f"recorded int8 accuracy loss {int8_loss:.2f} {verdict} {settings.max_int8_accuracy_loss} points",
    )


def recorded_int8_loss(settings: ServingSettings, tags: dict[str, str]) -> float | None:
    """The int8 graph's recorded validation accuracy loss (points): the setting (rollout writes it from the
    registry), else the registry version's tag for a ``models:/`` reference; None when neither says."""
    if settings.int8_accuracy_loss is not None:
        return settings.int8_accuracy_loss
    try:
        return float(tags[INT8_LOSS_TAG])
    except (KeyError, ValueError):
        return None


class EnsembleEngine:
    """An ensemble: each member's engine on the same texts, their probabilities averaged with the weights."""

    flavor = ENSEMBLE_FLAVOR

    def __init__(self, engines: Sequence[Engine], weights: Sequence[float], names: tuple[str, ...]) -> None:
        self.engines = list(engines)
        self.weights = list(weights)
        self.names = names
        # Run in a thread when any member does: the transformer's time dwarfs the baseline's.
        self.releases_gil = any(e.releases_gil for e in self.engines)
        self.precision = "+".join(e.precision for e in self.engines)

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        """Per text, a tuple of each member engine's features."""
        return list(zip(*(e.prepare(texts) for e in self.engines), strict=True))

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        probs = np.zeros((len(features), len(self.names)))
        for i, (engine, weight) in enumerate(zip(self.engines, self.weights, strict=True)):
            probs += weight * engine.infer([f[i] for f in features])
        return probs


def build_engine(model: TextClassifier, settings: ServingSettings, int8_loss: float | None = None) -> Engine:
    """The engine for a loaded model's flavour and the configured runtime; ``int8_loss`` is the int8 graph's
    recorded validation accuracy loss in points (None: unknown, so fp32 unless int8 is asked for). An
    ensemble's loss was measured on the whole ensemble; it decides its transformer member's graph."""
    if isinstance(model, EnsembleModel):
        engines = [build_engine(m.model, settings, int8_loss) for m in model.members]
        return EnsembleEngine(engines, [m.weight for m in model.members], model.labels.names)
    if not isinstance(model, TransformerModel):
        return TfidfEngine(model)
    threads = inference_threads(settings.inference_threads)
    runtime = choose_runtime(model, settings)
    engine: Engine
    if runtime == "onnx":
        variant, why = choose_variant(settings, int8_loss)
        engine = OnnxEngine(model, variant, settings, threads)
    else:
        configure_torch(threads)
        engine = TorchEngine(model, settings.quantize, settings.call_cost_tokens)
        why = f"--quantize {settings.quantize}"
    log.info("%s runtime: %d threads, precision %s (%s)", runtime, threads, engine.precision, why)
    return engine


class EngineClassifier:
    """A loaded model scored through its serving engine: the ``TextClassifier`` interface at the precision
    and runtime the predictor would serve (batch-score, blend and evaluate score models this way)."""

    def __init__(self, model: TextClassifier, engine: Engine) -> None:
        self.model = model
        self.engine = engine
        self.flavor = model.flavor
        self.manifest = model.manifest
        self.labels = model.labels

    @classmethod
    def build(
        cls, model: TextClassifier, settings: ServingSettings, int8_loss: float | None = None
    ) -> EngineClassifier:
        """The model behind ``build_engine(model, settings, int8_loss)``."""
        return cls(model, build_engine(model, settings, int8_loss))

    @classmethod
    def full_precision(cls, model: TextClassifier) -> EngineClassifier:
        """The model as the CPU predictor serves it at full precision: its fp32 graph (checked against torch's
        recorded answers at load), torch fp32 for a model without graphs; what evaluate and blend score (never
        CUDA's fp16, whatever the machine)."""
        return cls.build(model, ServingSettings(quantize="none", device="cpu"))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (n, k), columns in class-id order."""
        return np.asarray(self.engine.infer(self.engine.prepare(list(texts))), dtype=np.float64)


def warm_up(engine: Engine, max_batch: int, rounds: int) -> None:
    """Run the probe texts at batch 1 and at the max batch so the first requests do not pay for lazy init."""
    for size in sorted({1, max_batch}):
        batch = [PROBE_TEXTS[i % len(PROBE_TEXTS)] for i in range(size)]
        for _ in range(rounds):
            engine.infer(engine.prepare(batch))
