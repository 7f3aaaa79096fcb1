"""CLI: ``python -m components.evaluate --validated-dir ... --baseline-dir ... --challenger-dir ...``."""

from __future__ import annotations

from components.common.tracking import TrackedStep, step_cli
from components.evaluate.evaluation import EvaluateSettings, EvaluationResult, evaluate


def _record(settings: EvaluateSettings, result: EvaluationResult) -> None:
    import mlflow

    mlflow.set_tag("dataset_hash", result.dataset_hash)
    for role, model in result.models.items():
        headline = {k: v for k, v in model.metrics.items() if isinstance(v, float)}
        mlflow.log_metrics({f"{role}_test_{k}": v for k, v in headline.items()})
        mlflow.log_metric(f"{role}_latency_ms_p50", model.latency_ms_p50)
    mlflow.log_artifacts(settings.output_dir, "evaluation")


def _finish(settings: EvaluateSettings, result: EvaluationResult) -> None:
    print(f"evaluation on {result.split} (n={result.n}):\n{result.table()}")
    for name, deltas in result.comparison().items():
        print(f"{name}: " + ", ".join(f"{k} {v:+.4f}" for k, v in deltas.items()))


STEP = TrackedStep("evaluate", EvaluateSettings, work=evaluate, record=_record, finish=_finish)

build_parser, main = step_cli(STEP, __doc__)
