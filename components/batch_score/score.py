"""Score a dataset with a sentiment model and write the predictions as parquet beside the input.

The dataset is scored in shards (``components.batch_score.shards``): ``--stage all`` (the default, local)
plans, scores every shard and merges in one process; on Argo the ``batch-score`` template runs ``plan``,
then one ``score-shard`` pod per shard in parallel, then ``merge``. Either way a rerun resumes: shards
already scored by the pinned model are skipped.

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

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from components.batch_score import shards as sharding
from components.common.artifacts import is_remote, local_path
from components.common.data import COMPRESSION_SUFFIXES, normalise_text
from components.common.labels import LabelMap, as_matrix, predicted_ids
from components.common.model_source import LoadedModel, pin_model, resolve_model
from components.common.models import TextClassifier
from components.common.settings import ComponentError, TrackingSettings
from components.common.tracking import git_commit
from serving.config import Quantize, Runtime

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
    stage: Literal["all", "plan", "score-shard", "merge"] = Field(
        "all", description="all: plan, score every shard, merge (local); Argo runs the three stages as pods"
    )
    shard_rows: int = Field(1_000_000, ge=1, description="rows per shard (one score-shard pod each on Argo)")
    shard_index: int | None = Field(None, ge=0, description="score-shard: which shard of the plan to score")
    work_uri: str = Field(
        "", description="the shards' folder (empty: <output stem>.shards beside the output); reruns resume"
    )
    shard_list_path: str = Field(
        "", description="plan: also write the shard indices as a JSON list here (Argo's withParam)"
    )
    keep_shards: bool = Field(False, description="keep the work folder after a successful merge")
    runtime: Runtime = Field(
        "auto",
        description="transformer runtime, as the predictor chooses it: auto = the ONNX graphs shipped in the "
        "model directory on CPU (checked against torch's probe answers at load), torch on CUDA",
    )
    quantize: Quantize = Field(
        "auto",
        description="auto = the int8 graph only when the version's recorded int8 accuracy loss is small "
        "(registry tag; the predictor's rule), else fp32",
    )


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
    stage: str = "all"
    shards: int = 0  # shards in the plan
    shards_scored: int = 0  # shards this invocation scored (the others were already done: resumed)

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
    # Batches of similar length: a transformer pads each batch to its longest text, so scoring in length
    # order wastes almost no positions; rows go back to input order below.
    order = np.argsort([len(t) for t in texts], kind="stable")
    ordered = [texts[i] for i in order]
    parts = [model.predict_proba(ordered[i : i + batch_size]) for i in range(0, len(ordered), batch_size)]
    k = labels.num_classes
    probs = np.zeros((0, k))
    if parts:
        in_length_order = as_matrix(np.concatenate(parts))
        probs = np.empty_like(in_length_order)
        probs[order] = in_length_order
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


def _same_location(a: str, b: str) -> bool:
    if is_remote(a) or is_remote(b):
        return a.rstrip("/") == b.rstrip("/")
    return local_path(a).resolve() == local_path(b).resolve()


def _work_uri(settings: BatchScoreSettings, output_uri: str) -> str:
    return settings.work_uri.strip() or sharding.default_work_uri(output_uri)


def _output_metadata(settings: BatchScoreSettings, plan: sharding.ShardPlan) -> dict[str, Any]:
    return {
        "dataset_uri": settings.dataset_uri,
        "model_uri": settings.model_uri,
        "pinned_model_uri": plan.model_uri,
        "model_source": plan.model_source,
        "model_digest": plan.model_digest,
        "model_flavor": plan.model_flavor,
        "shards": len(plan.shards),
        "git_commit": git_commit(),
        "scored_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }


def engine_classifier(loaded: LoadedModel, settings: BatchScoreSettings) -> TextClassifier:
    """The model scored through the predictor's engine (``serving.engine.build_engine``): the same runtime,
    graph choice and load-time probe check as serving, so batch and online answers agree."""
    from serving.config import ServingSettings
    from serving.engine import EngineClassifier, recorded_int8_loss

    serving = ServingSettings(
        runtime=settings.runtime,
        quantize=settings.quantize,
        device=settings.device if settings.device in ("cpu", "cuda") else "auto",
    )
    return EngineClassifier.build(loaded.model, serving, recorded_int8_loss(serving, loaded.tags))


def _score_shard(
    settings: BatchScoreSettings,
    plan: sharding.ShardPlan,
    work_uri: str,
    shard: sharding.Shard,
    model: TextClassifier,
) -> None:
    frame = sharding.read_shard_input(work_uri, shard)
    scored = predict_frame(
        model, frame, settings.text_column, settings.batch_size, plan.model_name, plan.model_version
    )
    sharding.write_shard_output(plan, work_uri, shard, scored)


def _pinned_loader(settings: BatchScoreSettings, plan: sharding.ShardPlan) -> LoadedModel:
    """The plan's model (a registry version or a directory pinned to the plan's digest), verified and loaded."""
    return resolve_model(
        plan.model_uri,
        expected_digest=plan.model_digest,
        device=settings.device,
        tracking=settings,
        digest_flag="--expected-digest",
    )


def _require_plan(work_uri: str) -> sharding.ShardPlan:
    plan = sharding.read_plan(work_uri)
    if plan is None:
        raise ComponentError(f"no plan in {work_uri}: run --stage plan first (same --work-uri)")
    return plan


def batch_score(settings: BatchScoreSettings) -> BatchScoreResult:
    """Run the requested stage (default: all of them) and return what was scored and where it went."""
    if not settings.dataset_uri.strip():
        raise ComponentError("--dataset-uri is required (a CSV/parquet/JSON-lines file, local or gs://)")
    output_uri = settings.output_uri.strip() or default_output_uri(settings.dataset_uri)
    if _same_location(output_uri, settings.dataset_uri):
        raise ComponentError(f"output {output_uri} would overwrite the input dataset")
    if settings.stage == "score-shard" and settings.shard_index is None:
        raise ComponentError("--stage score-shard needs --shard-index")
    started = time.perf_counter()
    work_uri = _work_uri(settings, output_uri)

    if settings.stage in ("all", "plan"):
        # Before any model load, so that a missing dataset is what gets reported.
        fingerprint = sharding.dataset_fingerprint(settings.dataset_uri)
        pinned = sharding.PinnedModel.of(
            pin_model(
                settings.model_uri,
                expected_digest=settings.expected_digest,
                allow_unpinned=settings.allow_unpinned_model,
                tracking=settings,
                digest_flag="--expected-digest",
            )
        )
        plan = sharding.make_plan(
            settings.dataset_uri, fingerprint, work_uri, settings.shard_rows, settings.text_column, pinned
        )
        if settings.shard_list_path:
            sharding.write_shard_indices(settings.shard_list_path, plan)
    else:
        plan = _require_plan(work_uri)
        if plan.dataset_uri != settings.dataset_uri:
            raise ComponentError(
                f"the plan in {work_uri} is for {plan.dataset_uri}, not {settings.dataset_uri}"
            )

    scored_now = 0
    if settings.stage in ("all", "score-shard"):
        todo = (
            plan.shards
            if settings.stage == "all"
            else [sharding.shard_by_index(plan, settings.shard_index or 0)]
        )
        todo = [s for s in todo if not sharding.shard_is_done(plan, work_uri, s)]
        if todo:
            scorer = engine_classifier(_pinned_loader(settings, plan), settings)
            for shard in todo:
                _score_shard(settings, plan, work_uri, shard, scorer)
            scored_now = len(todo)

    result = BatchScoreResult(
        dataset_uri=settings.dataset_uri,
        output_uri=output_uri if settings.stage in ("all", "merge") else work_uri,
        rows=plan.total_rows,
        empty_texts=0,
        positive_share=None,
        model_name=plan.model_name,
        model_version=plan.model_version,
        model_digest=plan.model_digest,
        seconds=0.0,
        stage=settings.stage,
        shards=len(plan.shards),
        shards_scored=scored_now,
    )
    if settings.stage in ("all", "merge"):
        merged = sharding.merge_shards(
            plan, work_uri, output_uri, _output_metadata(settings, plan), settings.text_column
        )
        labels = LabelMap(tuple(plan.class_names))
        shares = {
            name: float(count / merged.rows) if merged.rows else 0.0
            for name, count in zip(labels.names, merged.class_counts, strict=True)
        }
        result.class_shares = shares
        result.positive_share = shares["positive"] if labels.is_binary else None
        result.empty_texts = merged.empty_texts
        if not settings.keep_shards:
            sharding.remove_work(work_uri)
    result.seconds = time.perf_counter() - started
    return result
