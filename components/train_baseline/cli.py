"""CLI: ``python -m components.train_baseline --validated-dir ... --output-dir ...``."""

from __future__ import annotations

from collections.abc import Sequence

from components.common.results import TrainResult
from components.common.tracking import TrackedStep, active_run_id, record_training, run_step_cli
from components.train_baseline.train import HYPERPARAMETERS, BaselineSettings, train_baseline


def _finish(settings: BaselineSettings, result: TrainResult) -> None:
    result.write()
    print(f"baseline trained: val accuracy {result.validation_metrics['accuracy']:.4f} -> {result.model_dir}")


STEP = TrackedStep(
    "train-baseline",
    BaselineSettings,
    work=lambda settings: train_baseline(settings, run_id=active_run_id()),
    record=record_training,
    finish=_finish,
    params=HYPERPARAMETERS,
    tags=lambda _settings: {"flavor": "tfidf"},
)


def main(argv: Sequence[str] | None = None) -> None:
    """Train the TF-IDF baseline and log it to its MLflow run."""
    run_step_cli(STEP, __doc__, argv)
