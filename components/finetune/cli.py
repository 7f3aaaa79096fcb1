"""CLI: ``python -m components.finetune --validated-dir ... --output-dir ... --base-model ...``."""

from __future__ import annotations

from collections.abc import Sequence

from components.common.results import TrainResult
from components.common.tracking import TrackedStep, active_run_id, record_training, run_step_cli
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


def _finish(settings: FinetuneSettings, result: TrainResult) -> None:
    result.write()
    print(
        f"finetuned ({result.precision}): val accuracy {result.validation_metrics.get('accuracy', float('nan')):.4f}"
        f" -> {result.model_dir}"
    )


STEP = TrackedStep(
    "finetune",
    FinetuneSettings,
    work=lambda settings: finetune(settings, run_id=active_run_id()),
    record=record_training,
    finish=_finish,
    params=LOGGED_PARAMS,
    tags=lambda _settings: {"flavor": "transformer"},
)


def main(argv: Sequence[str] | None = None) -> None:
    """Fine-tune the transformer and log it to its MLflow run."""
    run_step_cli(STEP, __doc__, argv)
