"""Score the baseline, the challenger and the current champion on the same held-out test split.

The split is streamed from the dataset artifact in batches (memory holds one batch of texts, whatever the
dataset's size); every model scores the same batch, and the paired per-row probabilities are written to
``predictions.parquet`` for the promotion gate's significance test.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from components.common.artifacts import ArtifactError, atomic_write_json, is_remote, local_path, upload_dir
from components.common.data import PARQUET_READ, iter_split, read_summary
from components.common.labels import LabelMap, validated_label_map
from components.common.metrics import classification_metrics, format_table, plot_confusion_matrix
from components.common.model_source import ModelNotFoundError, resolve_model
from components.common.models import TextClassifier
from components.common.registry import CHAMPION
from components.common.results import TrainResult
from components.common.settings import TrackingSettings
from components.evaluate.int8 import int8_accuracy_change
from serving.engine import EngineClassifier

EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.parquet"
TABLE_FILE = "metrics_table.txt"
TABLE_COLUMNS = ("accuracy", "f1", "precision", "recall", "roc_auc", "latency_ms_p50")


class EvaluateSettings(TrackingSettings):
    """Inputs of the evaluation."""

    validated_dir: str = Field("artifacts/validated", description="output folder of validate")
    baseline_dir: str = Field("artifacts/baseline", description="output folder of train-baseline")
    challenger_dir: str = Field(
        "artifacts/finetuned", description="output folder of the candidate's training"
    )
    output_dir: str = Field("artifacts/evaluation", description="where the evaluation and plots go")
    split: str = Field("test", description="held-out split every model is scored on")
    compare_champion: bool = Field(True, description="also score the registry's champion")
    latency_samples: int = Field(100, description="texts timed one at a time for per-sample latency")
    batch_size: int = Field(4096, ge=1, description="rows of the split read and scored at a time")
    int8_max_rows: int = Field(
        20_000,
        ge=0,
        description="rows per split on which the int8 graph's accuracy loss is measured (0 = all)",
    )
    track: bool = True


@dataclass
class ModelEvaluation:
    """One model's scores on the split, and where the model came from."""

    role: str
    flavor: str
    digest: str
    metrics: dict[str, Any]
    latency_ms_p50: float
    latency_ms_p95: float
    batch_throughput_per_s: float
    model_dir: str | None = None
    train_run_id: str | None = None
    model_artifact_uri: str | None = None
    registry_version: str | None = None
    # challenger only: the shipped int8 graph's accuracy vs its fp32 graph per split (components.evaluate.int8)
    int8: dict[str, dict[str, Any]] | None = None


@dataclass
class EvaluationResult:
    """Everything ``register`` needs to decide, as written to ``evaluation.json``."""

    dataset_hash: str
    split: str
    n: int
    models: dict[str, ModelEvaluation] = field(default_factory=dict)
    smoke: bool = False  # scored on the smoke subset: never registered under the real model name
    predictions_file: str | None = PREDICTIONS_FILE  # paired per-row probabilities, beside evaluation.json

    def comparison(self) -> dict[str, dict[str, float]]:
        """Challenger minus each other model, per headline metric (positive = challenger better)."""
        challenger = self.models["challenger"].metrics
        return {
            f"challenger_vs_{role}": {
                k: float(challenger[k]) - float(v)
                for k, v in model.metrics.items()
                if isinstance(v, float) and isinstance(challenger.get(k), float)
            }
            for role, model in self.models.items()
            if role != "challenger"
        }

    def table(self) -> str:
        rows = {
            role: {
                **{k: v for k, v in m.metrics.items() if not isinstance(v, list | dict)},
                "latency_ms_p50": m.latency_ms_p50,
            }
            for role, m in self.models.items()
        }
        return format_table(rows, TABLE_COLUMNS)


def _latency(model: TextClassifier, texts: list[str]) -> tuple[float, float]:
    timings = []
    model.predict_proba(texts[:1])  # warm-up
    for text in texts:
        start = time.perf_counter()
        model.predict_proba([text])
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


@dataclass
class _Scoring:
    """One model's running state while the split streams past."""

    role: str
    model: EngineClassifier
    proba: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0

    def score(self, texts: list[str]) -> None:
        start = time.perf_counter()
        self.proba.append(np.asarray(self.model.predict_proba(texts), dtype=np.float32))
        self.seconds += time.perf_counter() - start


def _finish(
    scoring: _Scoring,
    labels: np.ndarray,
    word_counts: np.ndarray,
    latency_texts: list[str],
    out: Path,
) -> ModelEvaluation:
    proba = np.concatenate(scoring.proba)
    role, model = scoring.role, scoring.model
    names = model.labels.names
    metrics = classification_metrics(labels, proba, word_counts=word_counts, class_names=names)
    plot_confusion_matrix(
        metrics.confusion_matrix, f"{role} ({model.flavor})", out / f"confusion_{role}.png", names
    )
    p50, p95 = _latency(model, latency_texts)
    return ModelEvaluation(
        role=role,
        flavor=model.flavor,
        digest=model.manifest.digest,
        metrics=metrics.to_dict(),
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        batch_throughput_per_s=len(proba) / scoring.seconds if scoring.seconds else 0.0,
    )


def paired_columns(role: str, proba: np.ndarray) -> dict[str, np.ndarray]:
    """A model's columns in ``predictions.parquet``: binary ``<role>_proba`` = P(positive) (as always);
    N classes ``<role>_proba_<id>``, one per class (what the promotion gate reads)."""
    if proba.ndim == 1 or proba.shape[1] == 2:
        return {f"{role}_proba": proba if proba.ndim == 1 else proba[:, 1]}
    return {f"{role}_proba_{i}": proba[:, i] for i in range(proba.shape[1])}


def _check_labels(role: str, model: TextClassifier, labels: LabelMap) -> None:
    """A model trained on other classes cannot be scored against this dataset's label ids."""
    if model.labels != labels:
        raise ArtifactError(
            f"the {role} model's classes {list(model.labels.names)} differ from the dataset's label map"
            f" {list(labels.names)}"
        )


def _smoke_flag(validated_dir: str) -> bool:
    import json

    import fsspec

    try:
        with fsspec.open(f"{validated_dir.rstrip('/')}/dataset.json", "r") as handle:
            return bool(json.load(handle).get("smoke", False))
    except FileNotFoundError:
        return False


def evaluate(settings: EvaluateSettings) -> EvaluationResult:
    """Score every model on ``settings.split`` and write evaluation.json, predictions, the table and PNGs."""
    import pandas as pd

    remote = is_remote(settings.output_dir)
    out = Path(tempfile.mkdtemp(prefix="sentimentops-eval-")) if remote else local_path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    models: list[_Scoring] = []
    trained: dict[str, TrainResult] = {}
    label_map = validated_label_map(settings.validated_dir)
    for role, step_dir in (("baseline", settings.baseline_dir), ("challenger", settings.challenger_dir)):
        trained[role] = TrainResult.read(step_dir)
        # The pipeline's own hand-off: this run's training output, checked against its manifest; the
        # digest evaluated here is the one register records and every later reader is pinned to.
        loaded = resolve_model(trained[role].model_dir, allow_unpinned=True)
        _check_labels(role, loaded.model, label_map)
        models.append(_Scoring(role, EngineClassifier.full_precision(loaded.model)))
    champion_version = None
    if settings.compare_champion:
        try:
            champion = resolve_model(f"models:/{settings.registered_model}@{CHAMPION}", tracking=settings)
        except ModelNotFoundError:
            champion = None  # nothing promoted yet
        if champion is not None and champion.model.labels != label_map:
            print(
                f"note: the champion's classes {list(champion.model.labels.names)} differ from this task's"
                f" {list(label_map.names)}: not compared (is registered_model the task's own name?)",
                flush=True,
            )
            champion = None
        if champion is not None:
            champion_version = champion.version
            models.append(_Scoring("champion", EngineClassifier.full_precision(champion.model)))

    dataset = f"{settings.validated_dir.rstrip('/')}/dataset.parquet"
    labels: list[np.ndarray] = []
    word_counts: list[np.ndarray] = []
    latency_texts: list[str] = []
    for batch in iter_split(dataset, settings.split, settings.batch_size):
        texts = batch["text"].tolist()
        labels.append(batch["label"].to_numpy(dtype=np.int8))
        word_counts.append(batch["text"].str.split().str.len().to_numpy(dtype=np.int32))
        if len(latency_texts) < settings.latency_samples:
            latency_texts += texts[: settings.latency_samples - len(latency_texts)]
        for scoring in models:
            scoring.score(texts)
    if not labels:
        raise ArtifactError(f"split {settings.split!r} is empty in {settings.validated_dir}")
    y, lengths = np.concatenate(labels), np.concatenate(word_counts)
    result = EvaluationResult(
        dataset_hash=read_summary(settings.validated_dir).dataset_hash,
        split=settings.split,
        n=len(y),
        smoke=_smoke_flag(settings.validated_dir),
    )
    for scoring in models:
        evaluation = _finish(scoring, y, lengths, latency_texts, out)
        if scoring.role in trained:
            evaluation.model_dir = trained[scoring.role].model_dir
            evaluation.train_run_id = trained[scoring.role].run_id
            evaluation.model_artifact_uri = trained[scoring.role].model_artifact_uri
        elif champion_version is not None:
            evaluation.registry_version = champion_version
        result.models[scoring.role] = evaluation
    challenger = next(s for s in models if s.role == "challenger")
    # The challenger was just scored on this split with its fp32 graph: the int8 comparison reuses that.
    result.models["challenger"].int8 = int8_accuracy_change(
        challenger.model.model,
        settings.validated_dir,
        settings.int8_max_rows,
        fp32_proba={settings.split: np.concatenate(challenger.proba)},
    )
    predictions = pd.DataFrame(
        {
            "label": y,
            **{k: v for s in models for k, v in paired_columns(s.role, np.concatenate(s.proba)).items()},
        }
    )
    predictions.to_parquet(out / PREDICTIONS_FILE, index=False)
    (out / TABLE_FILE).write_text(result.table() + "\n")
    # evaluation.json last: its presence marks a finished evaluation (register reads only that).
    atomic_write_json(out / EVALUATION_FILE, {**asdict(result), "comparison": result.comparison()})
    if remote:
        upload_dir(out, settings.output_dir, last=EVALUATION_FILE)
        shutil.rmtree(out, ignore_errors=True)
    return result


def read_predictions(output_dir: str, evaluation: EvaluationResult) -> Any:
    """The paired per-row probabilities written beside ``evaluation.json`` (a DataFrame)."""
    import fsspec
    import pandas as pd

    path = f"{output_dir.rstrip('/')}/{evaluation.predictions_file or PREDICTIONS_FILE}"
    try:
        with fsspec.open(path, "rb") as handle:
            return pd.read_parquet(handle, **PARQUET_READ)
    except FileNotFoundError as exc:
        raise ArtifactError(f"paired predictions not found: {path} (rerun evaluate)") from exc


def read_evaluation(output_dir: str) -> EvaluationResult:
    """Load ``evaluation.json`` written by :func:`evaluate`."""
    import json

    import fsspec

    path = f"{output_dir.rstrip('/')}/{EVALUATION_FILE}"
    try:
        with fsspec.open(path, "r") as handle:
            data = json.load(handle)
    except FileNotFoundError as exc:
        raise ArtifactError(f"evaluation not found: {path} (run evaluate first)") from exc
    data.pop("comparison", None)  # derived from the models on load
    models = {role: ModelEvaluation(**m) for role, m in data.pop("models").items()}
    return EvaluationResult(**data, models=models)
