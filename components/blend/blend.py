"""Choose how much of the baseline to average into the fine-tuned model, on the validation split only.

Every candidate baseline weight ``w`` scores ``(1 - w) * P(finetuned) + w * P(baseline)`` on the same
validation rows (each model scored once, through the predictor's own engine, so what is chosen is what is
served). The best weight by the task's selection metric wins, ties going to the smaller weight. With ``w = 0``
the fine-tuned model is the challenger as it is: this step then writes only a hand-off to it. Otherwise it
writes an ``ensemble`` model directory holding both models and the weights. The test split is never read.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from components.common.artifacts import ArtifactError, atomic_write_json, staging_dir
from components.common.data import iter_split, read_summary
from components.common.labels import predicted_ids, validated_label_map
from components.common.metrics import classification_metrics
from components.common.model_source import resolve_model
from components.common.models import ENSEMBLE_FLAVOR, TextClassifier, write_ensemble
from components.common.results import TRAIN_RESULT_FILE, TrainResult, model_dir_of
from components.common.settings import ComponentError, TrackingSettings
from components.common.tracking import git_commit
from components.register.gate import multiclass_metric, resolve_metric

BLEND_FILE = "blend.json"
DEFAULT_WEIGHTS = "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9"


class BlendSettings(TrackingSettings):
    """Inputs of the blend and the weights it may choose from."""

    validated_dir: str = Field("artifacts/validated", description="output folder of validate")
    baseline_dir: str = Field("artifacts/baseline", description="output folder of train-baseline")
    finetuned_dir: str = Field("artifacts/finetuned", description="output folder of finetune")
    output_dir: str = Field(
        "artifacts/blended", description="where the challenger (or a hand-off to it) goes"
    )
    baseline_weights: str = Field(
        DEFAULT_WEIGHTS,
        description="baseline weights tried, comma-separated in [0, 1) ('0' = never blend: the fine-tuned model)",
    )
    selection_metric: str = Field(
        "auto",
        description="validation metric that picks the weight (auto: accuracy for two classes, else macro_f1)",
    )
    max_rows: int = Field(20_000, ge=0, description="validation rows the weights are chosen on (0 = all)")
    batch_size: int = Field(4096, ge=1, description="validation rows read and scored at a time")
    track: bool = True


@dataclass
class BlendResult:
    """The chosen weight, the validation curve behind it, and the challenger's training hand-off."""

    baseline_weight: float
    metric: str
    curve: dict[str, float]  # baseline weight -> validation metric
    n: int
    challenger: TrainResult  # the finetune's own result (w = 0) or the ensemble's
    seconds: float

    @property
    def blended(self) -> bool:
        return self.baseline_weight > 0


def parse_weights(text: str) -> list[float]:
    """The candidate baseline weights, each in [0, 1); ComponentError naming the offending item otherwise."""
    weights = []
    for item in text.split(","):
        try:
            weight = float(item)
        except ValueError:
            raise ComponentError(f"baseline weight {item.strip()!r} is not a number") from None
        if not 0 <= weight < 1:
            raise ComponentError(f"baseline weight {weight:g} is outside [0, 1)")
        weights.append(weight)
    return sorted(set(weights))


def validation_probabilities(
    settings: BlendSettings, finetuned: TextClassifier, baseline: TextClassifier
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, P(finetuned), P(baseline)) on at most ``max_rows`` validation rows."""
    from serving.engine import EngineClassifier

    score = {
        role: EngineClassifier.full_precision(m)
        for role, m in (("finetuned", finetuned), ("baseline", baseline))
    }
    labels: list[np.ndarray] = []
    proba: dict[str, list[np.ndarray]] = {role: [] for role in score}
    seen = 0
    dataset = f"{settings.validated_dir.rstrip('/')}/dataset.parquet"
    for batch in iter_split(dataset, "validation", settings.batch_size, max_rows=settings.max_rows):
        texts = batch["text"].tolist()
        labels.append(batch["label"].to_numpy(dtype=np.int64))
        for role, model in score.items():
            proba[role].append(model.predict_proba(texts))
        seen += len(batch)
    if not seen:
        raise ArtifactError(
            f"the validation split of {settings.validated_dir} is empty: nothing to choose on"
        )
    return np.concatenate(labels), np.concatenate(proba["finetuned"]), np.concatenate(proba["baseline"])


def choose_weight(
    y: np.ndarray, finetuned: np.ndarray, baseline: np.ndarray, weights: list[float], metric: str
) -> tuple[float, dict[str, float]]:
    """(best baseline weight, metric per weight): the highest metric, ties to the smaller weight."""
    k = finetuned.shape[1]
    curve = {
        f"{w:g}": float(multiclass_metric(metric, y, predicted_ids((1 - w) * finetuned + w * baseline), k)[0])
        for w in weights
    }
    best = max(weights, key=lambda w: (round(curve[f"{w:g}"], 12), -w))
    return best, curve


def blend(settings: BlendSettings, run_id: str | None = None) -> BlendResult:
    """Choose the baseline weight on validation and write the challenger (or the hand-off) to ``output_dir``."""
    started = time.perf_counter()
    weights = parse_weights(settings.baseline_weights)
    trained = {
        role: TrainResult.read(d)
        for role, d in (("finetuned", settings.finetuned_dir), ("baseline", settings.baseline_dir))
    }
    label_map = validated_label_map(settings.validated_dir)
    metric = resolve_metric(settings.selection_metric, label_map.num_classes)
    if weights == [0.0]:
        return BlendResult(0.0, metric, {}, 0, trained["finetuned"], time.perf_counter() - started)
    # The pipeline's own hand-off: this run's training outputs, checked against their manifests.
    loaded = {role: resolve_model(t.model_dir, allow_unpinned=True) for role, t in trained.items()}
    models = {role: item.model for role, item in loaded.items()}
    for role, model in models.items():
        if model.labels != label_map:
            raise ArtifactError(
                f"the {role} model's classes {list(model.labels.names)} differ from the dataset's"
                f" {list(label_map.names)}"
            )
    y, p_finetuned, p_baseline = validation_probabilities(settings, models["finetuned"], models["baseline"])
    weight, curve = choose_weight(y, p_finetuned, p_baseline, weights, metric)
    if weight == 0:
        return BlendResult(0.0, metric, curve, len(y), trained["finetuned"], time.perf_counter() - started)
    blended = (1 - weight) * p_finetuned + weight * p_baseline
    val_metrics = classification_metrics(y, blended, class_names=label_map.names).headline()
    summary = read_summary(settings.validated_dir)
    metadata = {
        "labels": list(label_map.names),
        "dataset_hash": summary.dataset_hash,
        "git_commit": git_commit(),
        "run_id": run_id,
        "selection": {"metric": metric, "curve": curve, "n": len(y), "split": "validation"},
        "validation_metrics": val_metrics,
    }
    # The verified local copies (a gs:// model directory was fetched by resolve_model).
    members = [(loaded["finetuned"].path, round(1 - weight, 6)), (loaded["baseline"].path, round(weight, 6))]
    with staging_dir(model_dir_of(settings.output_dir)) as tmp:
        write_ensemble(Path(tmp), members, metadata)
    finetuned = trained["finetuned"]
    challenger = TrainResult(
        output_dir=settings.output_dir,
        flavor=ENSEMBLE_FLAVOR,
        dataset_hash=summary.dataset_hash,
        validation_metrics=val_metrics,
        train_seconds=finetuned.train_seconds,
        train_samples_per_second=finetuned.train_samples_per_second,
        run_id=run_id,
        precision=finetuned.precision,
    )
    return BlendResult(weight, metric, curve, len(y), challenger, time.perf_counter() - started)


def write_outputs(settings: BlendSettings, result: BlendResult) -> None:
    """``blend.json`` (the choice and its curve), then ``train_result.json``: the hand-off evaluate reads."""
    out = settings.output_dir.rstrip("/")
    record = {k: v for k, v in asdict(result).items() if k != "challenger"}
    atomic_write_json(f"{out}/{BLEND_FILE}", record | {"challenger_dir": result.challenger.output_dir})
    atomic_write_json(f"{out}/{TRAIN_RESULT_FILE}", asdict(result.challenger))
