"""CLI: ``python -m components.blend --validated-dir ... --baseline-dir ... --finetuned-dir ... --output-dir ...``."""

from __future__ import annotations

from components.blend.blend import BlendResult, BlendSettings, blend, write_outputs
from components.common.tracking import TrackedStep, active_run_id, record_training, step_cli


def _record(settings: BlendSettings, result: BlendResult) -> None:
    import mlflow

    mlflow.log_metric("baseline_weight", result.baseline_weight)
    for weight, value in result.curve.items():
        mlflow.log_metric(f"val_{result.metric}_at_w{weight.replace('.', '_')}", value)
    if result.blended:  # a new model directory: logged to this run, the source a registered version points at
        record_training(settings, result.challenger)


def _finish(settings: BlendSettings, result: BlendResult) -> None:
    write_outputs(settings, result)
    if result.blended:
        print(
            f"blended: baseline weight {result.baseline_weight:g} scores {result.metric} "
            f"{result.curve[f'{result.baseline_weight:g}']:.4f} on {result.n} validation rows "
            f"(fine-tuned alone {result.curve.get('0', float('nan')):.4f}) -> {result.challenger.model_dir}"
        )
    else:
        print(f"not blended: the fine-tuned model is the challenger -> {result.challenger.model_dir}")


STEP = TrackedStep(
    "blend",
    BlendSettings,
    work=lambda settings: blend(settings, run_id=active_run_id()),
    record=_record,
    finish=_finish,
    params=("baseline_weights", "selection_metric", "max_rows"),
)
build_parser, main = step_cli(STEP, __doc__)
