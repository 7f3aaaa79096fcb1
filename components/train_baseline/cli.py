"""CLI: ``python -m components.train_baseline --validated-dir ... --output-dir ...``."""

from __future__ import annotations

import argparse

from components.common.settings import add_settings_arguments, run_cli, settings_from_args
from components.train_baseline.train import HYPERPARAMETERS, BaselineSettings, train_baseline


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train-baseline", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, BaselineSettings)
    return parser


def _main() -> None:
    settings = settings_from_args(BaselineSettings, build_parser().parse_args())
    if not settings.track:
        result = train_baseline(settings)
    else:
        import mlflow

        from components.common.tracking import log_model_dir, step_run

        with step_run(settings, "train-baseline", {"flavor": "tfidf"}) as run:
            mlflow.log_params(settings.model_dump(include=HYPERPARAMETERS))
            result = train_baseline(settings, run_id=run.info.run_id)
            mlflow.log_metrics({f"val_{k}": v for k, v in result.validation_metrics.items()})
            mlflow.log_metrics({"train_seconds": result.train_seconds})
            result.model_artifact_uri = log_model_dir(
                result.model_dir, result.dataset_hash, settings.validated_dir
            )
    result.write()
    print(f"baseline trained: val accuracy {result.validation_metrics['accuracy']:.4f} -> {result.model_dir}")


def main() -> None:
    run_cli(_main)
