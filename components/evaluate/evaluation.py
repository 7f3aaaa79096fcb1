"""Score the baseline, the challenger and the current champion on the same held-out test split."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from components.common import data as datalib
from components.common import registry
from components.common.artifacts import (
    ArtifactError,
    atomic_write_json,
    fetch_dir,
    is_remote,
    local_path,
    upload_dir,
)
from components.common.metrics import classification_metrics, format_table, plot_confusion_matrix
from components.common.models import SentimentModel, load_model
from components.common.results import TrainResult
from components.common.settings import TrackingSettings

EVALUATION_FILE = "evaluation.json"
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


@dataclass
class EvaluationResult:
    """Everything ``register`` needs to decide, as written to ``evaluation.json``."""

    dataset_hash: str
    split: str
    n: int
    models: dict[str, ModelEvaluation] = field(default_factory=dict)

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


def _latency(model: SentimentModel, texts: list[str]) -> tuple[float, float]:
    timings = []
    model.predict_proba(texts[:1])  # warm-up
    for text in texts:
        start = time.perf_counter()
        model.predict_proba([text])
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


def score_model(
    role: str,
    model: SentimentModel,
    texts: list[str],
    labels: list[int],
    settings: EvaluateSettings,
    out: Path,
) -> ModelEvaluation:
    """Metrics, confusion-matrix PNG and latency of one model."""
    start = time.perf_counter()
    proba = model.predict_proba(texts)
    throughput = len(texts) / (time.perf_counter() - start)
    metrics = classification_metrics(labels, proba, texts)
    plot_confusion_matrix(metrics.confusion_matrix, f"{role} ({model.flavor})", out / f"confusion_{role}.png")
    p50, p95 = _latency(model, texts[: settings.latency_samples])
    return ModelEvaluation(
        role=role,
        flavor=model.flavor,
        digest=model.manifest.digest,
        metrics=metrics.to_dict(),
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        batch_throughput_per_s=throughput,
    )


def _score_trained(
    role: str, step_dir: str, texts: list[str], labels: list[int], settings: EvaluateSettings, out: Path
) -> ModelEvaluation:
    trained = TrainResult.read(step_dir)
    evaluation = score_model(role, load_model(fetch_dir(trained.model_dir)), texts, labels, settings, out)
    evaluation.model_dir = trained.model_dir
    evaluation.train_run_id = trained.run_id
    evaluation.model_artifact_uri = trained.model_artifact_uri
    return evaluation


def evaluate(settings: EvaluateSettings) -> EvaluationResult:
    """Score every model on ``settings.split`` and write evaluation.json, the table and the PNGs."""
    remote = is_remote(settings.output_dir)
    out = Path(tempfile.mkdtemp(prefix="sentimentops-eval-")) if remote else local_path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = datalib.read_validated(f"{settings.validated_dir.rstrip('/')}/dataset.parquet")
    held_out = frame[frame["split"] == settings.split]
    if held_out.empty:
        raise ArtifactError(f"split {settings.split!r} is empty in {settings.validated_dir}")
    texts, labels = held_out["text"].tolist(), held_out["label"].astype(int).tolist()
    result = EvaluationResult(dataset_hash=datalib.dataset_hash(frame), split=settings.split, n=len(texts))
    result.models["baseline"] = _score_trained(
        "baseline", settings.baseline_dir, texts, labels, settings, out
    )
    result.models["challenger"] = _score_trained(
        "challenger", settings.challenger_dir, texts, labels, settings, out
    )
    if settings.compare_champion:
        mlflow_client = registry.client(settings)
        version = registry.version_by_alias(mlflow_client, settings.registered_model, registry.CHAMPION)
        if version is not None:
            champion = registry.load_verified(version)  # refused unless it hashes to its model_digest
            evaluation = score_model("champion", champion, texts, labels, settings, out)
            evaluation.registry_version = str(version.version)
            result.models["champion"] = evaluation
    (out / TABLE_FILE).write_text(result.table() + "\n")
    # evaluation.json last: its presence marks a finished evaluation (register reads only that).
    atomic_write_json(out / EVALUATION_FILE, {**asdict(result), "comparison": result.comparison()})
    if remote:
        upload_dir(out, settings.output_dir, last=EVALUATION_FILE)
        shutil.rmtree(out, ignore_errors=True)
    return result


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
