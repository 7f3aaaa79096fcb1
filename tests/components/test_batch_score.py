"""batch-score: pure prediction, output beside the input, registry digest checks, CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from components.batch_score.cli import build_parser
from components.batch_score.score import (
    METADATA_KEY,
    BatchScoreSettings,
    batch_score,
    default_output_uri,
    predict_frame,
)
from components.common.artifacts import ArtifactError, read_manifest
from components.common.data import read_table
from components.common.settings import ComponentError, TrackingSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


class _FixedModel:
    """A stand-in model: probability = 0.9 for texts containing 'good', else 0.2; records batch sizes."""

    flavor = "fake"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        return np.array([0.9 if "good" in t else 0.2 for t in texts])


def write_reviews(tmp_path: Path, rt_frame: pd.DataFrame, rows: int) -> Path:
    """``<tmp>/in/reviews.csv``: the first ``rows`` RT texts with a ``review_id`` column."""
    path = tmp_path / "in" / "reviews.csv"
    path.parent.mkdir()
    sample = rt_frame.head(rows)
    pd.DataFrame({"review_id": range(len(sample)), "text": sample["text"].tolist()}).to_csv(path, index=False)
    return path


@pytest.fixture()
def reviews_csv(tmp_path: Path, rt_frame: pd.DataFrame) -> Path:
    return write_reviews(tmp_path, rt_frame, 40)


def test_default_output_is_beside_the_input() -> None:
    assert default_output_uri("gs://b/data/reviews.csv") == "gs://b/data/reviews.predictions.parquet"
    assert default_output_uri("/x/y/reviews.2026-11.csv.gz") == "/x/y/reviews.2026-11.predictions.parquet"
    assert default_output_uri("file:///x/reviews.jsonl") == "file:///x/reviews.predictions.parquet"
    assert default_output_uri("reviews.parquet") == "reviews.predictions.parquet"


def test_predict_frame_adds_columns_in_batches_and_normalises() -> None:
    model = _FixedModel()
    frame = pd.DataFrame({"id": [1, 2, 3, 4, 5], "text": ["good  film", "bad", None, "so\tgood", "meh"]})
    out = predict_frame(model, frame, "text", batch_size=2, name="sentiment", version="7")
    assert model.batches == [2, 2, 1]
    assert out["predicted_label"].tolist() == [1, 0, 0, 1, 0]
    assert out["predicted_label_name"].tolist() == [
        "positive",
        "negative",
        "negative",
        "positive",
        "negative",
    ]
    assert out["positive_probability"].tolist() == pytest.approx([0.9, 0.2, 0.2, 0.9, 0.2])
    assert set(out["model_version"]) == {"7"} and out["id"].tolist() == [1, 2, 3, 4, 5]
    assert "predicted_label" not in frame.columns  # the input is not modified


def test_predict_frame_refuses_missing_text_column_and_scored_input() -> None:
    with pytest.raises(ComponentError, match="text column 'review' not in the dataset"):
        predict_frame(_FixedModel(), pd.DataFrame({"text": ["a"]}), "review", 8, "m", "1")
    scored = pd.DataFrame({"text": ["a"], "predicted_label": [1]})
    with pytest.raises(ComponentError, match="already has prediction column"):
        predict_frame(_FixedModel(), scored, "text", 8, "m", "1")


def test_scores_a_csv_with_a_model_directory(reviews_csv: Path, baseline_model_dir: Path) -> None:
    digest = read_manifest(baseline_model_dir).digest
    # A training step's output folder (holding model/) works as well as the model directory itself.
    settings = BatchScoreSettings(
        dataset_uri=str(reviews_csv), model_uri=str(baseline_model_dir.parent), expected_digest=digest
    )
    result = batch_score(settings)
    out = reviews_csv.with_name("reviews.predictions.parquet")
    assert result.output_uri == str(out) and result.rows == 40 and result.model_digest == digest
    table = pq.read_table(out)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    assert meta["model_digest"] == digest and meta["dataset_uri"] == str(reviews_csv)
    frame = table.to_pandas()
    assert frame["review_id"].tolist() == [str(i) for i in range(40)]  # CSV values kept verbatim
    assert frame["positive_probability"].between(0, 1).all()
    assert set(frame["predicted_label"]) <= {0, 1}
    # Published atomically: no temporary files left beside it.
    assert sorted(p.name for p in out.parent.iterdir()) == ["reviews.csv", "reviews.predictions.parquet"]


def test_wrong_expected_digest_and_bad_inputs_are_refused(
    tmp_path: Path, reviews_csv: Path, baseline_model_dir: Path
) -> None:
    with pytest.raises(ArtifactError, match="does not match"):
        batch_score(
            BatchScoreSettings(
                dataset_uri=str(reviews_csv), model_uri=str(baseline_model_dir), expected_digest="0" * 64
            )
        )
    with pytest.raises(ComponentError, match="--dataset-uri is required"):
        batch_score(BatchScoreSettings(dataset_uri=" ", model_uri=str(baseline_model_dir)))
    with pytest.raises(ComponentError, match="would overwrite the input"):
        batch_score(
            BatchScoreSettings(
                dataset_uri=str(reviews_csv), output_uri=str(reviews_csv), model_uri=str(baseline_model_dir)
            )
        )
    with pytest.raises(ComponentError, match="dataset not found"):
        batch_score(
            BatchScoreSettings(dataset_uri=str(tmp_path / "nope.csv"), model_uri=str(baseline_model_dir))
        )
    assert not reviews_csv.with_name("reviews.predictions.parquet").exists()


def test_directory_model_without_a_pinned_digest_is_refused(
    reviews_csv: Path, baseline_model_dir: Path
) -> None:
    """The artifact's own manifest is not enough: a directory model needs the registry's digest."""
    with pytest.raises(ArtifactError, match="needs --expected-digest"):
        batch_score(BatchScoreSettings(dataset_uri=str(reviews_csv), model_uri=str(baseline_model_dir)))
    assert not reviews_csv.with_name("reviews.predictions.parquet").exists()


def _register(model_dir: Path, tracking_uri: str, digest: str | None, alias: str = "champion") -> str:
    """Register ``model_dir`` as the register step does: run artifact model/, digest tag, alias."""
    import mlflow
    from mlflow import MlflowClient

    from components.common.tracking import configure

    configure(TrackingSettings(tracking_uri=tracking_uri))
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model_dir), "model")
        source = mlflow.get_artifact_uri("model")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if not client.search_registered_models("name = 'sentiment'"):
        client.create_registered_model("sentiment")
    tags = {"model_digest": digest} if digest else {}
    version = client.create_model_version("sentiment", source, run_id=run.info.run_id, tags=tags)
    client.set_registered_model_alias("sentiment", alias, version.version)
    return str(version.version)


def test_scores_with_the_registered_champion_and_checks_its_digest(
    tracking_env: str, reviews_csv: Path, baseline_model_dir: Path, tmp_path: Path
) -> None:
    digest = read_manifest(baseline_model_dir).digest
    version = _register(baseline_model_dir, tracking_env, digest)
    out = tmp_path / "preds.parquet"
    result = batch_score(BatchScoreSettings(dataset_uri=str(reviews_csv), output_uri=str(out)))
    assert (result.model_name, result.model_version, result.model_digest) == ("sentiment", version, digest)
    assert pd.read_parquet(out)["model_version"].unique().tolist() == [version]
    by_version = batch_score(
        BatchScoreSettings(
            dataset_uri=str(reviews_csv), output_uri=str(out), model_uri=f"models:/sentiment/{version}"
        )
    )
    assert by_version.model_version == version

    # A version whose digest tag does not match its files, or that has none, is refused.
    _register(baseline_model_dir, tracking_env, "f" * 64, alias="tampered")
    with pytest.raises(ArtifactError, match="does not match the registered"):
        batch_score(BatchScoreSettings(dataset_uri=str(reviews_csv), model_uri="models:/sentiment@tampered"))
    _register(baseline_model_dir, tracking_env, None, alias="untagged")
    with pytest.raises(ArtifactError, match="no model_digest tag"):
        batch_score(BatchScoreSettings(dataset_uri=str(reviews_csv), model_uri="models:/sentiment@untagged"))
    with pytest.raises(ArtifactError, match="no version with alias 'missing'"):
        batch_score(BatchScoreSettings(dataset_uri=str(reviews_csv), model_uri="models:/sentiment@missing"))


def test_cli_flags_and_clear_error_exit(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--dataset-uri", "gs://b/x.csv", "--batch-size", "16", "--output-uri", ""]
    )
    assert (args.dataset_uri, args.batch_size, args.output_uri) == ("gs://b/x.csv", "16", "")
    env = {**os.environ, "SENTIMENTOPS_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "components.batch_score", "--batch-size", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "invalid setting 'batch_size'" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "components.batch_score"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "--dataset-uri is required" in proc.stderr


@pytest.mark.parametrize("name", ["r.parquet", "r.jsonl", "r.tsv", "r.csv.gz"])
def test_reads_every_supported_format(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["good film", "dull"]})
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
    assert read_table(str(path)).to_dict("list") == frame.to_dict("list")
