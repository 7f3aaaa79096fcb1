"""CLI: ``python -m components.batch_score --dataset-uri gs://.../reviews.csv [--model-uri models:/sentiment@champion]``."""

from __future__ import annotations

from components.batch_score.score import BatchScoreResult, BatchScoreSettings, batch_score
from components.common.tracking import TrackedStep, step_cli


def _finish(settings: BatchScoreSettings, result: BatchScoreResult) -> None:
    shares = ", ".join(f"{name} {share:.3f}" for name, share in (result.class_shares or {}).items())
    print(
        f"scored {result.rows} rows with {result.model_name} version {result.model_version} "
        f"(class shares: {shares}) -> {result.output_uri}"
    )


# No MLflow run of its own: the output file's metadata names the model version that scored it.
STEP = TrackedStep("batch-score", BatchScoreSettings, work=batch_score, finish=_finish)

build_parser, main = step_cli(STEP, __doc__)
