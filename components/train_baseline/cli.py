"""CLI: ``python -m components.train_baseline --validated-dir ... --output-dir ...``."""

from __future__ import annotations

from components.common.tracking import step_cli, training_step
from components.train_baseline.train import HYPERPARAMETERS, BaselineSettings, train_baseline

STEP = training_step(
    "train-baseline",
    BaselineSettings,
    train_baseline,
    HYPERPARAMETERS,
    flavor="tfidf",
    summary=lambda result: (
        f"baseline trained: val accuracy {result.validation_metrics['accuracy']:.4f} -> {result.model_dir}"
    ),
)
build_parser, main = step_cli(STEP, __doc__)
