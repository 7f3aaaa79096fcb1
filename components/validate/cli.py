"""CLI for the validation gate: ``python -m components.validate --dataset-uri ... --output-dir ...``."""

from __future__ import annotations

import argparse

from components.common.settings import add_settings_arguments, run_cli, settings_from_args
from components.validate.gate import ValidateSettings, ValidationResult, require_success, validate_dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, ValidateSettings)
    return parser


def _log_to_mlflow(settings: ValidateSettings, result: ValidationResult) -> None:
    import mlflow

    from components.common.tracking import step_run

    with step_run(settings, "validate", {"dataset_uri": settings.dataset_uri}):
        mlflow.log_params({"dataset_uri": settings.dataset_uri, "smoke": settings.smoke})
        mlflow.set_tag("gate", "passed" if result.success else "failed")
        if result.dataset_hash:
            mlflow.set_tag("dataset_hash", result.dataset_hash)
            mlflow.log_metrics({f"rows_{k}": v for k, v in result.split_sizes.items()})
        if result.cleaning:
            mlflow.log_metrics({f"dropped_{k}": v for k, v in result.cleaning["counts"].items()})
            mlflow.log_metric("input_rows", result.cleaning["input_rows"])
        else:
            mlflow.set_tag("gate_reason", result.reason[:5000])


def _main() -> None:
    settings = settings_from_args(ValidateSettings, build_parser().parse_args())
    result = validate_dataset(settings)
    if settings.track:
        _log_to_mlflow(settings, result)
    if result.cleaning:
        dropped = ", ".join(f"{k} {v:,}" for k, v in result.cleaning["counts"].items() if v) or "none"
        print(
            f"cleaning: {result.cleaning['kept_rows']:,} of {result.cleaning['input_rows']:,} rows kept; "
            f"dropped {dropped} (each in {result.output_dir}/quarantine.parquet with its reason)"
        )
    require_success(result)
    print(f"validation passed: {result.dataset_hash} {result.split_sizes} -> {result.output_dir}")


def main() -> None:
    run_cli(_main)
