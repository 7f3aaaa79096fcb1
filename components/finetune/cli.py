"""CLI: ``python -m components.finetune --validated-dir ... --output-dir ... --base-model ...``."""

from __future__ import annotations

import argparse

from components.common.settings import add_settings_arguments, run_cli, settings_from_args
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finetune", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, FinetuneSettings)
    return parser


def _main() -> None:
    settings = settings_from_args(FinetuneSettings, build_parser().parse_args())
    if not settings.track:
        result = finetune(settings)
    else:
        import mlflow

        from components.common.tracking import log_model_dir, step_run

        with step_run(settings, "finetune", {"flavor": "transformer"}) as run:
            mlflow.log_params(settings.model_dump(include=LOGGED_PARAMS))
            result = finetune(settings, run_id=run.info.run_id)
            mlflow.log_param("precision_used", result.precision)
            mlflow.log_metrics({f"val_{k}": v for k, v in result.validation_metrics.items()})
            mlflow.log_metrics(
                {
                    "train_seconds": result.train_seconds,
                    "train_samples_per_second": result.train_samples_per_second,
                }
            )
            result.model_artifact_uri = log_model_dir(
                result.model_dir, result.dataset_hash, settings.validated_dir
            )
    result.write()
    print(
        f"finetuned ({result.precision}): val accuracy {result.validation_metrics.get('accuracy', float('nan')):.4f}"
        f" -> {result.model_dir}"
    )


def main() -> None:
    run_cli(_main)
