"""Score a dataset with a sentiment model and write the predictions as parquet beside the input.

The model comes from the registry (``models:/sentiment@champion`` or ``models:/sentiment/<version>``: the
version's ``model_digest`` tag is required and checked against the downloaded files) or from a model
directory / step output folder, local or ``gs://``. The output is written atomically (temp file + rename
locally, a single object upload on GCS), so a reader never sees half a file.
"""

from __future__ import annotations

import io
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from components.common.artifacts import (
    MANIFEST_NAME,
    ArtifactError,
    atomic_write_bytes,
    check_digest_format,
    fetch_dir,
    is_remote,
    local_path,
)
from components.common.data import DataError, normalise_text
from components.common.models import LABELS, SentimentModel, load_model
from components.common.settings import ComponentError, TrackingSettings
from components.common.tracking import git_commit

PREDICTION_COLUMNS = (
    "predicted_label",
    "predicted_label_name",
    "positive_probability",
    "model_name",
    "model_version",
)
PREDICTIONS_SUFFIX = ".predictions.parquet"
DATA_EXTENSIONS = frozenset(
    {"csv", "tsv", "parquet", "pq", "jsonl", "ndjson", "json", "gz", "bz2", "zst", "xz"}
)
METADATA_KEY = b"sentimentops"
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")


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
class LoadedModel:
    """A verified model and where it came from."""

    model: SentimentModel
    name: str
    version: str
    digest: str
    source: str


@dataclass
class BatchScoreResult:
    """What a batch-scoring run wrote."""

    dataset_uri: str
    output_uri: str
    rows: int
    empty_texts: int
    positive_share: float
    model_name: str
    model_version: str
    model_digest: str
    seconds: float

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


def read_table(uri: str) -> pd.DataFrame:
    """Read CSV, TSV, parquet or JSON lines (optionally compressed) from a local path or an fsspec URI."""
    import fsspec

    lower = uri.lower()
    for compression in (".gz", ".bz2", ".zst", ".xz"):
        lower = lower.removesuffix(compression)
    try:
        with fsspec.open(uri, "rb", compression="infer") as handle:
            raw = handle.read()
    except FileNotFoundError as exc:
        raise DataError(f"dataset not found: {uri}") from exc
    except Exception as exc:  # network/auth errors from gcsfs et al.
        raise DataError(f"cannot read dataset {uri}: {type(exc).__name__}: {exc}") from exc
    try:
        if lower.endswith((".parquet", ".pq")):
            return pd.read_parquet(io.BytesIO(raw))
        if lower.endswith((".jsonl", ".ndjson", ".json")):
            return pd.read_json(io.BytesIO(raw), lines=True, dtype=False)
        sep = "\t" if lower.endswith(".tsv") else ","
        return pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False, na_values=[])
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{uri} could not be parsed: {str(exc).splitlines()[0]}") from exc


def _registry_model(settings: BatchScoreSettings) -> LoadedModel:
    from components.common import registry

    uri = settings.model_uri
    client = registry.client(settings)
    if match := _ALIAS_URI.match(uri):
        name = match["name"]
        version = registry.version_by_alias(client, name, match["alias"])
        if version is None:
            raise ArtifactError(f"registered model {name!r} has no version with alias {match['alias']!r}")
    elif match := _VERSION_URI.match(uri):
        from mlflow.exceptions import MlflowException

        name = match["name"]
        try:
            version = client.get_model_version(name, match["version"])
        except MlflowException as exc:
            raise ArtifactError(f"model version {uri} not found: {str(exc).splitlines()[0]}") from exc
    else:
        raise ComponentError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {uri!r}")
    digest = (version.tags or {}).get(registry.DIGEST_TAG)
    if not digest:
        raise ArtifactError(
            f"{name} version {version.version} has no {registry.DIGEST_TAG} tag: refusing an unverified model"
        )
    check_digest_format(digest, f"{name} version {version.version}'s {registry.DIGEST_TAG}")
    path = registry.download_version(version)
    model = load_model(path, expected_digest=digest, device=settings.device)
    return LoadedModel(model, name, str(version.version), model.manifest.digest, str(version.source))


def _directory_model(settings: BatchScoreSettings) -> LoadedModel:
    if settings.expected_digest is None and not settings.allow_unpinned_model:
        raise ArtifactError(
            "a directory model needs --expected-digest (the registry's model_digest); "
            "--allow-unpinned-model for local use only"
        )
    path = fetch_dir(settings.model_uri)
    # A training step's output folder holds the model directory under model/.
    if not (path / MANIFEST_NAME).is_file() and (path / "model" / MANIFEST_NAME).is_file():
        path = path / "model"
    model = load_model(path, expected_digest=settings.expected_digest, device=settings.device)
    name = str(PurePosixPath(settings.model_uri.rstrip("/")).name) or "model"
    digest = model.manifest.digest
    return LoadedModel(model, name, f"digest-{digest[:12]}", digest, settings.model_uri)


def load_scoring_model(settings: BatchScoreSettings) -> LoadedModel:
    """Resolve ``settings.model_uri`` to a verified, loaded model."""
    if settings.model_uri.startswith("models:/"):
        return _registry_model(settings)
    return _directory_model(settings)


def predict_frame(
    model: SentimentModel, frame: pd.DataFrame, text_column: str, batch_size: int, name: str, version: str
) -> pd.DataFrame:
    """The input frame plus prediction columns (pure: no I/O). Texts are normalised as in training."""
    if text_column not in frame.columns:
        raise ComponentError(
            f"text column {text_column!r} not in the dataset; columns: {list(frame.columns)}"
        )
    clashing = [c for c in PREDICTION_COLUMNS if c in frame.columns]
    if clashing:
        raise ComponentError(
            f"the dataset already has prediction column(s) {clashing}; is it an output file?"
        )
    texts = [normalise_text(str(t)) if isinstance(t, str) else "" for t in frame[text_column].tolist()]
    parts = [model.predict_proba(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    probs = np.concatenate(parts).astype(float) if parts else np.zeros(0)
    labels = (probs >= 0.5).astype(int)
    out = frame.copy()
    out["predicted_label"] = labels
    out["predicted_label_name"] = [LABELS[i] for i in labels]
    out["positive_probability"] = probs
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
    return BatchScoreResult(
        dataset_uri=settings.dataset_uri,
        output_uri=output_uri,
        rows=len(scored),
        empty_texts=empty,
        positive_share=float(scored["predicted_label"].mean()) if len(scored) else 0.0,
        model_name=loaded.name,
        model_version=loaded.version,
        model_digest=loaded.digest,
        seconds=time.perf_counter() - started,
    )
