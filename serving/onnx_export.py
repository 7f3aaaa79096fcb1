"""The ONNX Runtime form of a transformer model, built once per model digest and checked before use.

Export uses torch's dynamo exporter (the TorchScript exporter traces transformers 5's attention-mask code
into constants and gives logits off by up to 0.07; measured), then ORT's transformer optimizer fuses
LayerNorm/GELU, and ``dynamic_int8`` quantizes the MatMul weights. The result is cached under
``cache_dir/<digest>-<variant>/`` (written to a temporary directory and renamed, with the sha256 of the
.onnx file recorded and verified on reuse), so a restarted pod on the same volume skips the export.
Every load then compares the ONNX model with the torch model on the probe texts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.common.artifacts import ArtifactError, atomic_write_json, sha256_file
from components.common.models import TransformerModel

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
BUILD_FILE = "build.json"
VARIANT_PRECISION = {"none": "fp32", "dynamic_int8": "int8-dynamic"}


@dataclass(frozen=True)
class OnnxBuild:
    """A verified ONNX model file and how it differs from the torch model it came from."""

    path: Path
    precision: str
    mean_prob_diff: float
    label_agreement: float
    reused: bool


def _versions() -> dict[str, str]:
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _export(model: TransformerModel, out: Path, sample: Sequence[str]) -> None:
    import torch

    encoded = model.tokenize(sample)
    names = list(encoded.keys())
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    # The exporter logs its progress at INFO and warns about torchvision ops we do not use.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    torch.onnx.export(
        model.model.cpu().float().eval(),
        (),
        kwargs=dict(encoded),
        f=str(out),
        dynamo=True,
        input_names=names,
        output_names=["logits"],
        dynamic_shapes={name: {0: batch, 1: seq} for name in names},
        external_data=False,  # one self-contained file (our models are far below ONNX's 2 GB cap)
        verbose=False,
    )


def _optimize(src: Path, out: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    # num_heads/hidden_size 0: read them from the graph
    optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0).save_model_to_file(str(out))


def _quantize(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weights with reduced range: on AVX2 without VNNI, u8s8 products saturate int16 at full
    # range; per-tensor s8 lost 1.5 points of test accuracy, this 0.1 (docs/benchmarks.md).
    # Fused ops (SkipLayerNormalization, BiasGelu) are outside ONNX shape inference: their outputs are float.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # the quantizer logs every tensor on the root logger
    try:
        quantize_dynamic(
            str(src),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _build(model: TransformerModel, target: Path, quantize: str, sample: Sequence[str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging-"))
    try:
        exported, optimized, final = (
            staging / "exported.onnx",
            staging / "optimized.onnx",
            staging / ONNX_FILE,
        )
        _export(model, exported, sample)
        _optimize(exported, optimized)
        exported.unlink()  # each step's input goes as soon as it is read: /tmp is a small emptyDir
        if quantize == "dynamic_int8":
            _quantize(optimized, final)
            optimized.unlink()
        else:
            optimized.rename(final)
        atomic_write_json(
            staging / BUILD_FILE,
            {"sha256": sha256_file(final), "quantize": quantize, "source_digest": model.manifest.digest}
            | _versions(),
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _private_dir(path: Path) -> None:
    """Create ``path`` for this user only, and refuse one that others could write: a cached model is
    trusted after its own sha256 record, so nobody else may be able to replace both."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ArtifactError(f"ONNX cache {path} must belong to this user and not be group/world-writable")


def _cached(target: Path) -> bool:
    """True when ``target`` holds a finished build whose file still has its recorded sha256."""
    try:
        record = json.loads((target / BUILD_FILE).read_text())
    except (OSError, ValueError):
        return False
    if {k: record.get(k) for k in _versions()} != _versions():
        return False
    return sha256_file(target / ONNX_FILE) == record.get("sha256")


def session(path: Path, threads: int, allow_spinning: bool) -> Any:
    """An ORT CPU session: ``threads`` intra-op threads, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning worker threads answer sooner but burn the cores the event loop needs between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def positive_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax over two logits, positive class, computed stably."""
    return 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))


def build_onnx(
    model: TransformerModel,
    cache_dir: Path,
    quantize: str,
    probe_texts: Sequence[str],
    max_mean_diff: float,
) -> OnnxBuild:
    """Export (or reuse) the ONNX model for ``model`` and check it against torch on ``probe_texts``
    (mean absolute difference of the positive-class probability at most ``max_mean_diff``)."""
    if quantize not in VARIANT_PRECISION:
        raise ArtifactError(f"unknown quantization {quantize!r} for the ONNX runtime")
    if model.device.type != "cpu":
        raise ArtifactError("the ONNX runtime path is CPU-only; serve on CUDA with --runtime torch")
    _private_dir(cache_dir)
    target = cache_dir / f"{model.manifest.digest[:16]}-{quantize}"
    reused = _cached(target)
    if not reused:
        log.info("exporting %s to ONNX (%s) in %s", model.manifest.digest[:12], quantize, target)
        _build(model, target, quantize, probe_texts[:2])
    path = target / ONNX_FILE

    encoded = model.tokenize(probe_texts)  # one padded batch, fed to both runtimes
    expected = model.predict_tokens(encoded)
    check = session(path, threads=1, allow_spinning=False)
    feed = {i.name: encoded[i.name].numpy() for i in check.get_inputs()}
    got = positive_probability(check.run(["logits"], feed)[0])
    diff = float(np.abs(got - expected).mean())
    agreement = float(np.mean((got >= 0.5) == (expected >= 0.5)))
    if diff > max_mean_diff:
        raise ArtifactError(
            f"ONNX model ({quantize}) differs from torch by {diff:.4f} in probability on average over the "
            f"probe texts (allowed {max_mean_diff}); refusing to serve it"
        )
    return OnnxBuild(path, VARIANT_PRECISION[quantize], diff, agreement, reused)
