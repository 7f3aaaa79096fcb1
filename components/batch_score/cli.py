"""CLI: ``python -m components.batch_score --dataset-uri gs://.../reviews.csv [--model-uri models:/sentiment@champion]``.

``--stage all`` (default) plans, scores every shard and merges; Argo runs ``plan``, ``score-shard --shard-index
K`` per shard and ``merge`` as separate pods (workflows/README.md)."""

from __future__ import annotations

from components.batch_score.score import BatchScoreResult, BatchScoreSettings, batch_score
from components.common.tracking import TrackedStep, step_cli


def _finish(settings: BatchScoreSettings, result: BatchScoreResult) -> None:
    model = f"{result.model_name} version {result.model_version}"
    if result.stage == "plan":
        print(f"planned {result.rows} rows in {result.shards} shard(s) for {model} -> {result.output_uri}")
        return
    if result.stage == "score-shard":
        done = "scored" if result.shards_scored else "already scored (skipped)"
        print(f"shard {settings.shard_index} of {result.shards} {done} with {model} -> {result.output_uri}")
        return
    shares = ", ".join(f"{name} {share:.3f}" for name, share in (result.class_shares or {}).items())
    print(
        f"scored {result.rows} rows in {result.shards} shard(s) ({result.shards_scored} scored now, the rest "
        f"resumed) with {model} (class shares: {shares}) -> {result.output_uri}"
    )


# No MLflow run of its own: the output file's metadata names the model version that scored it.
STEP = TrackedStep("batch-score", BatchScoreSettings, work=batch_score, finish=_finish)

build_parser, main = step_cli(STEP, __doc__)
