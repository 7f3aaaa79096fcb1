"""CLI: ``python -m components.finetune --validated-dir ... --output-dir ... --base-model ...``."""

from __future__ import annotations

from components.common.tracking import step_cli, training_step
from components.finetune.train import FinetuneSettings, finetune

LOGGED_PARAMS = {
    "base_model",
    "epochs",
    "learning_rate",
    "batch_size",
    "max_length",
    "seed",
    "max_train_samples",
    "cpu_max_train_samples",
    "max_eval_samples",
    "eval_steps",
}

STEP = training_step(
    "finetune",
    FinetuneSettings,
    finetune,
    LOGGED_PARAMS,
    flavor="transformer",
    summary=lambda result: (
        f"finetuned ({result.precision}): val accuracy "
        f"{result.validation_metrics.get('accuracy', float('nan')):.4f} -> {result.model_dir}"
    ),
)
build_parser, main = step_cli(STEP, __doc__)
