"""The ONNX Runtime form of a transformer model: built once by the pipeline, shipped in the model directory.

``write_graphs`` (run by ``components.export`` while the model directory is still being written, before its
manifest) exports the classifier with torch's dynamo exporter (the TorchScript exporter traces
transformers 5's attention-mask code into constants and gives logits off by up to 0.07; measured), fuses
LayerNorm/GELU with ORT's transformer optimizer, and quantizes the MatMul weights per channel for int8.
Both graphs land under ``onnx/``; the manifest lists their sha256 like every other file, and its metadata
(``onnx``: graph paths, torch's class probabilities on the probe texts) is inside the digest too. The graph's
output is ``logits`` (n, k) for the model's k classes; the engine turns them into an (n, k) softmax matrix.

The predictor then only verifies and loads: ``load_graph`` opens one graph and refuses it unless its answers
on the probe texts, tokenised the way serving tokenises, match torch's recorded ones. It needs neither torch
nor transformers: the tokenizer is the ``tokenizers`` library reading ``tokenizer.json``.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.common.artifacts import ArtifactError, Manifest

log = logging.getLogger(__name__)

METADATA_KEY = "onnx"  # manifest.metadata[METADATA_KEY]: what write_graphs recorded
GRAPH_DIR = "onnx"
GRAPHS = {"fp32": f"{GRAPH_DIR}/model-fp32.onnx", "int8": f"{GRAPH_DIR}/model-int8.onnx"}
PRECISION = {"fp32": "fp32", "int8": "int8-dynamic"}  # what the engine reports for each graph
TOKENIZER_FILE = "tokenizer.json"


def probe_digest(texts: Sequence[str]) -> str:
    """sha256 of the probe texts: the recorded reference is only comparable for the same texts."""
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def _export(torch_model: Any, encoded: dict[str, Any], out: Path) -> None:
    import torch

    names = list(encoded.keys())
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    # The exporter logs its progress at INFO and warns about torchvision ops we do not use.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    torch.onnx.export(
        torch_model,
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


def write_graphs(torch_model: Any, sample: dict[str, Any], model_dir: Path) -> dict[str, str]:
    """Write the fp32 and int8 graphs of ``torch_model`` (CPU, fp32, eval) under ``model_dir/onnx/``.

    ``sample`` is a tokenised batch (torch tensors) to trace with. Intermediate files live in a temporary
    directory outside ``model_dir``, so the model directory only ever gains the two finished graphs.
    """
    (model_dir / GRAPH_DIR).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sentimentops-onnx-") as tmp:
        exported, optimized = Path(tmp) / "exported.onnx", Path(tmp) / "optimized.onnx"
        _export(torch_model, sample, exported)
        _optimize(exported, optimized)
        _quantize(optimized, model_dir / GRAPHS["int8"])
        shutil.move(str(optimized), model_dir / GRAPHS["fp32"])
    return dict(GRAPHS)


def _pad_id(model_dir: Path, tokenizer: Any) -> int:
    """The pad token's id as transformers would pick it (``tokenizer_config.json``), else 0; padded positions
    are masked out, so this only has to be a valid id."""
    import json

    try:
        token = json.loads((model_dir / "tokenizer_config.json").read_text()).get("pad_token")
    except (OSError, ValueError):
        token = None
    token = token.get("content") if isinstance(token, dict) else token
    found = tokenizer.token_to_id(token) if isinstance(token, str) else None
    return int(found) if found is not None else 0


class ServingTokenizer:
    """The model's fast tokenizer (``tokenizer.json``) without transformers: truncation to ``max_length``,
    special tokens added, no padding (the engine pads each sub-batch)."""

    def __init__(self, model_dir: Path, max_length: int, names: Sequence[str]) -> None:
        from tokenizers import Tokenizer

        path = model_dir / TOKENIZER_FILE
        if not path.is_file():
            raise ArtifactError(
                f"{model_dir} has no {TOKENIZER_FILE}: the ONNX runtime needs a fast tokenizer"
            )
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.names = list(names)
        self.pad_id = _pad_id(model_dir, self.tokenizer)

    def __call__(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        out = []
        for enc in self.tokenizer.encode_batch(list(texts)):
            fields = {
                "input_ids": enc.ids,
                "attention_mask": enc.attention_mask,
                "token_type_ids": enc.type_ids,
            }
            out.append({name: fields[name] for name in self.names})
        return out


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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (n, k) from logits (n, k), computed stably (row max subtracted)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def reference_matrix(reference: Sequence[float] | Sequence[Sequence[float]]) -> np.ndarray:
    """Recorded torch probe answers as an (n, k) matrix: binary models exported before N-class support
    recorded P(positive) per text, which is the matrix [1 - p, p]."""
    values = np.asarray(reference, dtype=np.float64)
    if values.ndim == 1:
        return np.column_stack([1.0 - values, values])
    return values


def shipped(manifest: Manifest) -> dict[str, Any] | None:
    """What the pipeline recorded about the model's ONNX graphs, or None when it ships none."""
    record = manifest.metadata.get(METADATA_KEY)
    if not isinstance(record, dict) or not isinstance(record.get("graphs"), dict):
        return None
    return record


@dataclass(frozen=True)
class ProbeCheck:
    """How a graph's probe answers differ from torch's recorded ones."""

    max_abs_diff: float
    mean_abs_diff: float
    label_agreement: float

    def to_dict(self) -> dict[str, float]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "mean_abs_diff": self.mean_abs_diff,
            "label_agreement": self.label_agreement,
        }


def compare_probe(
    got: np.ndarray, reference: Sequence[float] | Sequence[Sequence[float]], variant: str, tolerance: float
) -> ProbeCheck:
    """Refuse a graph whose probe probabilities (n, k) differ from torch's: fp32 by more than ``tolerance``
    in any class of any text, int8 by more than ``tolerance`` on average (its weights are rounded by design).
    ``reference``: the recorded (n, k) matrix, or a binary model's older P(positive) list."""
    expected = reference_matrix(reference)
    if got.shape != expected.shape:
        raise ArtifactError(
            f"ONNX {variant} graph: probe answers of shape {got.shape}, recorded {expected.shape}"
        )
    diff = np.abs(got - expected)
    check = ProbeCheck(
        float(diff.max()), float(diff.mean()), float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1)))
    )
    measured = check.max_abs_diff if variant == "fp32" else check.mean_abs_diff
    if not measured <= tolerance:  # also refuses NaN
        what = "at most" if variant == "fp32" else "on average"
        raise ArtifactError(
            f"ONNX {variant} graph differs from torch by {measured:.2e} in probability {what} on the probe "
            f"texts (allowed {tolerance}); refusing to serve it"
        )
    return check
