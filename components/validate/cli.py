"""CLI for the validation gate: ``python -m components.validate --dataset-uri ... --output-dir ...``."""

from __future__ import annotations

from components.common.tracking import TrackedStep, step_cli
from components.validate.gate import ValidateSettings, ValidationResult, require_success, validate_dataset


def _record(settings: ValidateSettings, result: ValidationResult) -> None:
    import mlflow

    mlflow.set_tag("gate", "passed" if result.success else "failed")
    if result.dataset_hash:
        mlflow.set_tag("dataset_hash", result.dataset_hash)
        mlflow.log_metrics({f"rows_{k}": v for k, v in result.split_sizes.items()})
    if result.cleaning:
        mlflow.log_metrics({f"dropped_{k}": v for k, v in result.cleaning["counts"].items()})
        mlflow.log_metric("input_rows", result.cleaning["input_rows"])
    else:
        mlflow.set_tag("gate_reason", result.reason[:5000])


def _finish(settings: ValidateSettings, result: ValidationResult) -> None:
    # The cleaning summary is printed even when the gate refuses: it says where the dropped rows went.
    if result.cleaning:
        dropped = ", ".join(f"{k} {v:,}" for k, v in result.cleaning["counts"].items() if v) or "none"
        print(
            f"cleaning: {result.cleaning['kept_rows']:,} of {result.cleaning['input_rows']:,} rows kept; "
            f"dropped {dropped} (each in {result.output_dir}/quarantine.parquet with its reason)"
        )
    require_success(result)
    print(f"validation passed: {result.dataset_hash} {result.split_sizes} -> {result.output_dir}")


STEP = TrackedStep(
    "validate",
    ValidateSettings,
    work=validate_dataset,
    record=_record,
    finish=_finish,
    params=("dataset_uri", "smoke"),
    tags=lambda settings: {"dataset_uri": settings.dataset_uri},
)

build_parser, main = step_cli(STEP, __doc__)
