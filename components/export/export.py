"""Build a transformer model directory's ONNX graphs from its weights and check them against torch.

``export_graphs`` runs while the model directory is being written (finetune calls it after saving the weights
and tokenizer, before the manifest): the graphs are files of the directory, so the manifest lists their
sha256 and the digest the registry records covers them. The returned metadata (graph paths, torch's
class-probability matrix on the probe texts, the measured differences) goes into the manifest too: the predictor
checks the graph it serves against those recorded answers instead of loading torch at every start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from components.common.artifacts import ArtifactError, Manifest, verify_manifest, write_manifest
from components.common.labels import LabelMap, as_matrix
from components.common.models import TRANSFORMER_FLAVOR, TransformerModel, manifest_labels
from serving.onnx_export import GRAPH_DIR, GRAPHS, METADATA_KEY, probe_digest, write_graphs
from serving.probe import PROBE_TEXTS

log = logging.getLogger(__name__)

FP32_MAX_ABS_DIFF = 1e-4  # ORT fp32 vs torch: float reassociation only (measured ~1e-6)
INT8_MAX_MEAN_DIFF = 0.05  # int8 vs torch: rounded weights, on average over the probe texts


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def config_labels(config: Any) -> LabelMap:
    """A Hugging Face config's classes: binary for two outputs, else ``id2label`` in id order."""
    if config.num_labels == 2:
        return LabelMap.binary()
    return LabelMap(tuple(str(config.id2label[i]) for i in range(config.num_labels)))


def export_graphs(
    model_dir: Path,
    max_length: int,
    fp32_tolerance: float = FP32_MAX_ABS_DIFF,
    int8_tolerance: float = INT8_MAX_MEAN_DIFF,
    labels: LabelMap | None = None,
) -> dict[str, Any]:
    """Write ``model_dir/onnx/`` from the weights and tokenizer saved in ``model_dir`` (no manifest yet) and
    return the manifest metadata entry; ArtifactError when a graph or the serving tokenizer disagrees with torch.
    ``labels``: the model's classes (default: binary for two outputs, else the config's ``id2label``).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from serving.config import ServingSettings
    from serving.engine import OnnxEngine

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    labels = labels or config_labels(model.config)
    encoded = tokenizer(
        list(PROBE_TEXTS), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.inference_mode():
        # (n, k) class probabilities, columns in class-id order (binary included: column 1 = P(positive)).
        reference = torch.softmax(model(**encoded).logits.float(), dim=-1).tolist()
    write_graphs(model, {k: v[:2] for k, v in encoded.items()}, model_dir)
    record: dict[str, Any] = {
        "graphs": dict(GRAPHS),
        "probe_sha256": probe_digest(PROBE_TEXTS),
        "probe_reference": reference,
        "versions": _versions(),
    }
    # Check each graph exactly as the predictor will load it: the serving tokenizer (tokenizers, not
    # transformers), sub-batches padded per length, the recorded reference.
    draft = Manifest(
        TRANSFORMER_FLAVOR,
        {path: "" for path in GRAPHS.values()},
        {"max_length": max_length, "labels": list(labels.names), METADATA_KEY: record},
    )
    settings = ServingSettings(onnx_max_prob_diff=fp32_tolerance, int8_max_prob_diff=int8_tolerance)
    checks = {}
    for variant in GRAPHS:
        engine = OnnxEngine(TransformerModel(model_dir, draft, device="cpu"), variant, settings, threads=1)
        if variant == "fp32":
            served = [f["input_ids"] for f in engine.prepare(PROBE_TEXTS)]
            expected = tokenizer(list(PROBE_TEXTS), truncation=True, max_length=max_length)["input_ids"]
            if served != [list(ids) for ids in expected]:
                raise ArtifactError(
                    "the serving tokenizer (tokenizer.json) disagrees with transformers' tokenizer"
                )
        diff = as_matrix(engine.infer(engine.prepare(PROBE_TEXTS))) - np.asarray(reference)
        checks[variant] = {"max_abs_diff": float(abs(diff).max()), "mean_abs_diff": float(abs(diff).mean())}
        log.info("onnx %s vs torch on the probe texts: %s", variant, checks[variant])
    return record | {"checks": checks}


def export_model_dir(model_dir: Path, expected_digest: str | None = None) -> Manifest:
    """Add (or rebuild) the graphs of an already finished transformer model directory and rewrite its
    manifest: the model's digest changes, so register the result as a new version."""
    manifest = verify_manifest(model_dir, expected_digest)
    if manifest.flavor != TRANSFORMER_FLAVOR:
        raise ArtifactError(f"{model_dir} is a {manifest.flavor} model: only transformers have ONNX graphs")
    for path in (model_dir / GRAPH_DIR).glob("*.onnx"):
        path.unlink()
    max_length = int(manifest.metadata.get("max_length", 128))
    record = export_graphs(model_dir, max_length, labels=manifest_labels(manifest))
    return write_manifest(model_dir, TRANSFORMER_FLAVOR, manifest.metadata | {METADATA_KEY: record})
