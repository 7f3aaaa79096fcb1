"""Score a dataset with a sentiment model and write the predictions as parquet beside the input.

The model comes from ``components.common.model_source.resolve_model``: the registry
(``models:/sentiment@champion`` or ``models:/sentiment/<version>``: the version's ``model_digest`` tag is
required and checked against the downloaded files) or a model directory / step output folder, local or
``gs://``, pinned by ``--expected-digest``. The output is written atomically (temp file + rename
locally, a single object upload on GCS), so a reader never sees half a file.

Columns added: ``predicted_label`` (the class name; binary models: the id 0/1 as always, the name in
``predicted_label_name``), ``class_index`` (the class id), ``probability_<name>`` per class (binary also keeps
``positive_probability``), ``model_name``, ``model_version``.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from components.common.artifacts import atomic_write_bytes, is_remote, local_path
from components.common.data import COMPRESSION_SUFFIXES, normalise_text, read_table
from components.common.labels import LabelMap, as_matrix, predicted_ids
from components.common.model_source import LoadedModel, resolve_model
from components.common.models import TextClassifier
from components.common.settings import ComponentError, TrackingSettings
from components.common.tracking import git_commit

PREDICTION_COLUMNS = (
    "predicted_label",
    "predicted_label_name",
    "class_index",
    "positive_probability",
    "model_name",
    "model_version",
)
PROBABILITY_PREFIX = "probability_"
PREDICTIONS_SUFFIX = ".predictions.parquet"
DATA_EXTENSIONS = frozenset(
    {"csv", "tsv", "parquet", "pq", "jsonl", "ndjson", "json", *(c.lstrip(".") for c in COMPRESSION_SUFFIXES)}
)
METADATA_KEY = b"sentimentops"


class BatchScoreSettings(TrackingSettings):
    """Inputs of a batch-scoring run."""

    dataset_uri: str = Field("", description="CSV/TSV/parquet/JSON-lines file (local or gs://) to score")
    model_uri: str = Field(
        "models:/sentiment@champion",
        description="models:/<name>@<alias>, models:/<name>/<version>, or a model dir / step output dir",
    )
    output_uri: str = Field(
        "", description="predictions parquet (empty: <input stem>.predictions.parquet beside it)"
    )
    text_column: str = Field("text", description="column holding the texts")
    batch_size: int = Field(256, ge=1, description="texts per forward pass")
    expected_digest: str | None = Field(
        None,
        description="for a directory model (required): the registry's model_digest it must hash to exactly",
    )
    allow_unpinned_model: bool = Field(
        False, description="local use only: score with a directory model without an expected digest"
    )
    device: str | None = Field(None, description="torch device for transformer models (default: cuda if any)")


@dataclass
class BatchScoreResult:
    """What a batch-scoring run wrote."""

    dataset_uri: str
    output_uri: str
    rows: int
    empty_texts: int
    positive_share: float | None  # binary: share predicted positive; None for other tasks (see class_shares)
    model_name: str
    model_version: str
    model_digest: str
    seconds: float
    class_shares: dict[str, float] | None = None  # share of the rows predicted as each class, by name

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _stem(name: str) -> str:
    """The file name without its data-format (and compression) extensions: ``a.2026.csv.gz`` -> ``a.2026``."""
    while "." in name and name.rsplit(".", 1)[1].lower() in DATA_EXTENSIONS:
        name = name.rsplit(".", 1)[0]
    return name


def default_output_uri(dataset_uri: str) -> str:
    """``gs://b/data/reviews.csv`` -> ``gs://b/data/reviews.predictions.parquet`` (same folder, same stem)."""
    if "://" in dataset_uri:
        scheme, rest = dataset_uri.split("://", 1)
        path = PurePosixPath(rest)
        return f"{scheme}://{path.with_name(_stem(path.name) + PREDICTIONS_SUFFIX)}"
    path = Path(dataset_uri)
    return str(path.with_name(_stem(path.name) + PREDICTIONS_SUFFIX))


def load_scoring_model(settings: BatchScoreSettings) -> LoadedModel:
    """Resolve ``settings.model_uri`` to a verified, loaded model."""
    return resolve_model(
        settings.model_uri,
        expected_digest=settings.expected_digest,
        device=settings.device,
        allow_unpinned=settings.allow_unpinned_model,
        tracking=settings,
        digest_flag="--expected-digest",
    )


def predict_frame(
    model: TextClassifier, frame: pd.DataFrame, text_column: str, batch_size: int, name: str, version: str
) -> pd.DataFrame:
    """The input frame plus prediction columns (pure: no I/O). Texts are normalised as in training."""
    if text_column not in frame.columns:
        raise ComponentError(
            f"text column {text_column!r} not in the dataset; columns: {list(frame.columns)}"
        )
    labels: LabelMap = getattr(model, "labels", None) or LabelMap.binary()
    probability_columns = [f"{PROBABILITY_PREFIX}{name}" for name in labels.names]
    clashing = [c for c in (*PREDICTION_COLUMNS, *probability_columns) if c in frame.columns]
    if clashing:
        raise ComponentError(
            f"the dataset already has prediction column(s) {clashing}; is it an output file?"
        )
    texts = [normalise_text(str(t)) if isinstance(t, str) else "" for t in frame[text_column].tolist()]
    parts = [model.predict_proba(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    k = labels.num_classes
    probs = as_matrix(np.concatenate(parts)) if parts else np.zeros((0, k))
    if probs.shape[1] != k:
        raise ComponentError(f"the model returned {probs.shape[1]} class probabilities for {k} classes")
    ids = predicted_ids(probs)
    names = np.asarray(labels.names, dtype=object)[ids] if len(ids) else np.zeros(0, dtype=object)
    out = frame.copy()
    # Binary keeps its columns exactly (predicted_label = id); other tasks name the class in predicted_label.
    out["predicted_label"] = ids if labels.is_binary else names
    if labels.is_binary:
        out["predicted_label_name"] = names
    out["class_index"] = ids
    for i, column in enumerate(probability_columns):
        out[column] = probs[:, i]
    if labels.is_binary:
        out["positive_probability"] = probs[:, 1]
    out["model_name"] = name
    out["model_version"] = version
    return out


def _parquet_bytes(frame: pd.DataFrame, metadata: dict[str, Any]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema_metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()}
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(schema_metadata), buffer)
    return buffer.getvalue()


def _same_location(a: str, b: str) -> bool:
    if is_remote(a) or is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return local_path(a).resolve() == local_path(b).resolve()


def batch_score(settings: BatchScoreSettings, loaded: LoadedModel | None = None) -> BatchScoreResult:
    """Read the dataset, score it, and publish the predictions parquet atomically."""
    if not settings.dataset_uri.strip():
        raise ComponentError("--dataset-uri is required (a CSV/parquet/JSON-lines file, local or gs://)")
    output_uri = settings.output_uri.strip() or default_output_uri(settings.dataset_uri)
    if _same_location(output_uri, settings.dataset_uri):
        raise ComponentError(f"output {output_uri} would overwrite the input dataset")
    started = time.perf_counter()
    frame = read_table(settings.dataset_uri)
    loaded = loaded or load_scoring_model(settings)
    scored = predict_frame(
        loaded.model, frame, settings.text_column, settings.batch_size, loaded.name, loaded.version
    )
    empty = int((scored[settings.text_column].fillna("").astype(str).str.strip() == "").sum())
    metadata = {
        "dataset_uri": settings.dataset_uri,
        "model_uri": settings.model_uri,
        "model_source": loaded.source,
        "model_digest": loaded.digest,
        "model_flavor": loaded.model.flavor,
        "git_commit": git_commit(),
        "scored_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    atomic_write_bytes(output_uri, _parquet_bytes(scored, metadata))
    labels = loaded.model.labels
    counts = np.bincount(scored["class_index"].to_numpy(dtype=int), minlength=labels.num_classes)
    shares = {
        n: float(c / len(scored)) if len(scored) else 0.0 for n, c in zip(labels.names, counts, strict=True)
    }
    positive_share = shares["positive"] if labels.is_binary else None
    return BatchScoreResult(
        dataset_uri=settings.dataset_uri,
        output_uri=output_uri,
        rows=len(scored),
        empty_texts=empty,
        positive_share=positive_share,
        class_shares=shares,
        model_name=loaded.name,
        model_version=loaded.version,
        model_digest=loaded.digest,
        seconds=time.perf_counter() - started,
    )
