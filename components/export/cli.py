"""CLI: ``python -m components.export --model-dir <dir> [--expected-digest <sha256>]``.

Adds the ONNX graphs to a transformer model directory finished before the pipeline exported them (finetune
exports its models itself) and rewrites its manifest; prints the new digest to register.
"""

from __future__ import annotations

import argparse

from pydantic import Field

from components.common.settings import ComponentSettings, add_settings_arguments, run_cli, settings_from_args


class ExportSettings(ComponentSettings):
    """Which model directory to export."""

    model_dir: str = Field(description="a finished transformer model directory (with manifest.json), local")
    expected_digest: str | None = Field(None, description="refuse the directory unless it hashes to this")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="export", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, ExportSettings)
    return parser


def _main() -> None:
    from pathlib import Path

    from components.export.export import export_model_dir

    settings = settings_from_args(ExportSettings, build_parser().parse_args())
    manifest = export_model_dir(Path(settings.model_dir), settings.expected_digest)
    checks = manifest.metadata["onnx"]["checks"]
    print(
        f"exported ONNX graphs of {settings.model_dir}: "
        + ", ".join(f"{v} max |Δp| {c['max_abs_diff']:.1e}" for v, c in checks.items())
        + f"; new digest {manifest.digest}"
    )


def main() -> None:
    run_cli(_main)
