"""CLI: ``python -m components.evaluate --validated-dir ... --baseline-dir ... --challenger-dir ...``."""

from __future__ import annotations

import argparse

from components.common.settings import add_settings_arguments, run_cli, settings_from_args
from components.evaluate.evaluation import EvaluateSettings, evaluate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, EvaluateSettings)
    return parser


def _main() -> None:
    settings = settings_from_args(EvaluateSettings, build_parser().parse_args())
    if not settings.track:
        result = evaluate(settings)
    else:
        import mlflow

        from components.common.tracking import step_run

        with step_run(settings, "evaluate"):
            result = evaluate(settings)
            mlflow.set_tag("dataset_hash", result.dataset_hash)
            for role, model in result.models.items():
                headline = {k: v for k, v in model.metrics.items() if isinstance(v, float)}
                mlflow.log_metrics({f"{role}_test_{k}": v for k, v in headline.items()})
                mlflow.log_metric(f"{role}_latency_ms_p50", model.latency_ms_p50)
            mlflow.log_artifacts(settings.output_dir, "evaluation")
    print(f"evaluation on {result.split} (n={result.n}):\n{result.table()}")
    for name, deltas in result.comparison().items():
        print(f"{name}: " + ", ".join(f"{k} {v:+.4f}" for k, v in deltas.items()))


def main() -> None:
    run_cli(_main)
