"""CLI: ``python -m components.batch_score --dataset-uri gs://.../reviews.csv [--model-uri models:/sentiment@champion]``."""

from __future__ import annotations

import argparse

from components.batch_score.score import BatchScoreSettings, batch_score
from components.common.settings import add_settings_arguments, run_cli, settings_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="batch-score", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, BatchScoreSettings)
    return parser


def _main() -> None:
    settings = settings_from_args(BatchScoreSettings, build_parser().parse_args())
    result = batch_score(settings)
    print(
        f"scored {result.rows} rows with {result.model_name} version {result.model_version} "
        f"(positive share {result.positive_share:.3f}) -> {result.output_uri}"
    )


def main() -> None:
    run_cli(_main)
