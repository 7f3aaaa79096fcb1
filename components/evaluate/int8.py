"""What the shipped int8 graph costs in accuracy against the fp32 graph of the same model.

Measured on the validation split (the figure the predictor's default precision is decided on: the test
split stays read once, for the reported metrics) and on the test split (reported beside it). Both graphs
run through the predictor's own engine, so the numbers are those of what would be served. ``register``
records the losses as version tags (``int8_accuracy_loss_<split>``, in accuracy points).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from components.common import data as datalib
from components.common.labels import as_matrix, predicted_ids
from components.common.models import TextClassifier, transformer_of

INT8_LOSS_TAG = "int8_accuracy_loss_validation"  # the tag the predictor's quantize=auto reads
INT8_SPLITS = ("validation", "test")


def loss_tag(split: str) -> str:
    """The registry tag holding the int8 graph's accuracy loss on ``split``."""
    return f"int8_accuracy_loss_{split}"


def int8_accuracy_change(
    model: TextClassifier,
    validated_dir: str,
    max_rows: int,
    batch_size: int = 1024,
    fp32_proba: dict[str, np.ndarray] | None = None,
) -> dict[str, dict[str, Any]] | None:
    """Per split: rows, fp32 and int8 accuracy, their label agreement and the loss in points (fp32 minus int8,
    positive = int8 worse); at most ``max_rows`` rows per split (0 = all). None for a model without graphs.
    ``fp32_proba``: per split, the fp32 graph's probabilities already computed on its rows in order (evaluate's
    own scoring of the test split), used instead of scoring them again."""
    from serving.config import ServingSettings
    from serving.engine import build_engine
    from serving.onnx_export import shipped

    transformer = transformer_of(model)
    if transformer is None or shipped(transformer.manifest) is None:
        return None
    # The whole model as served (an ensemble with its other members too), once with each graph.
    engines = {
        variant: build_engine(model, ServingSettings(runtime="onnx", quantize=quantize))
        for variant, quantize in (("fp32", "none"), ("int8", "dynamic_int8"))
    }
    dataset = f"{validated_dir.rstrip('/')}/dataset.parquet"
    out: dict[str, dict[str, Any]] = {}
    for split in INT8_SPLITS:
        labels: list[np.ndarray] = []
        preds: dict[str, list[np.ndarray]] = {v: [] for v in engines}
        seen = 0
        for batch in datalib.iter_split(dataset, split, batch_size, max_rows=max_rows):
            labels.append(batch["label"].to_numpy(dtype=np.int8))
            texts = batch["text"].tolist()
            for variant, engine in engines.items():
                known = (fp32_proba or {}).get(split) if variant == "fp32" else None
                if known is not None and len(known) >= seen + len(batch):
                    probs = known[seen : seen + len(batch)]
                else:
                    features = engine.prepare(texts)
                    probs = np.concatenate(
                        [engine.infer(features[i : i + 64]) for i in range(0, len(features), 64)]
                    )
                # (n, k) from the engine (a 1-D P(positive) from binary-only engines): same rule as evaluate
                preds[variant].append(predicted_ids(as_matrix(probs)).astype(np.int8))
            seen += len(batch)
        if not seen:
            continue
        y = np.concatenate(labels)
        fp32, int8 = (np.concatenate(preds[v]) for v in ("fp32", "int8"))
        acc32, acc8 = float(np.mean(fp32 == y)), float(np.mean(int8 == y))
        out[split] = {
            "n": int(seen),
            "fp32_accuracy": acc32,
            "int8_accuracy": acc8,
            "label_agreement": float(np.mean(fp32 == int8)),
            "loss_points": round(100 * (acc32 - acc8), 4),
        }
    return out
