"""The local pipeline end to end on the smoke subset with a tiny model, against a real MLflow server on
a real PostgreSQL (the cluster's setup), plus the failure path: a corrupted CSV never reaches the registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.conftest import RT_CSV

pytestmark = pytest.mark.integration


def run_pipeline(tracking_uri: str, artifacts: Path, dataset: Path, checkpoint: Path, *extra: str):
    env = {**os.environ, "SENTIMENTOPS_TRACKING_URI": tracking_uri}
    cmd = [
        sys.executable,
        "-m",
        "components.pipeline",
        "--dataset-uri",
        str(dataset),
        "--artifacts-root",
        str(artifacts),
        "--smoke",
        "true",
        "--base-model",
        str(checkpoint),
        *extra,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def test_smoke_pipeline_registers_challenger_and_champion_on_mlflow_server(
    mlflow_server: str, tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    # The tiny random model cannot beat TF-IDF, so the margin is opened up; the gate itself is tested in test_register.
    proc = run_pipeline(
        mlflow_server, tmp_path / "run", RT_CSV, tiny_checkpoint_dir, "--promotion-margin", "-1"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "registered: sentiment version" in proc.stdout
    assert "baseline" in proc.stdout and "challenger" in proc.stdout  # the metrics table

    client = MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias("sentiment", "champion")
    challenger = client.get_model_version_by_alias("sentiment", "challenger")
    assert champion.version == challenger.version
    tags = challenger.tags
    assert tags["flavor"] == "transformer" and tags["dataset_hash"].startswith("sha256:")
    assert tags["parent_run_id"], "the pipeline's parent run is recorded on the version"
    parent = client.get_run(tags["parent_run_id"])
    assert parent.data.tags["outcome"] == "succeeded"
    train_run = client.get_run(tags["train_run_id"])
    assert train_run.data.params["precision_used"] == "fp32"
    assert train_run.data.tags["dataset_hash"] == tags["dataset_hash"]

    # Re-running the registration step is idempotent against the server too.
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "components.register",
            "--evaluation-dir",
            str(tmp_path / "run" / "evaluation"),
            "--promotion-margin",
            "-1",
        ],
        env={**os.environ, "SENTIMENTOPS_TRACKING_URI": mlflow_server},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stdout and "aliases unchanged" in again.stdout
    assert len(client.search_model_versions("name = 'sentiment'")) == 1


def test_corrupted_csv_stops_the_pipeline_at_validate(tmp_path: Path, tiny_checkpoint_dir: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(RT_CSV, keep_default_na=False)
    frame["label"] = frame["label"].astype(object)
    frame.loc[frame.index[::5], "label"] = "positive"
    frame.to_csv(bad, index=False)
    proc = run_pipeline(tracking_uri, tmp_path / "run", bad, tiny_checkpoint_dir)
    assert proc.returncode == 2
    assert "error: validation gate failed: expect_column_values_to_be_in_set failed on label" in proc.stderr
    assert "error: pipeline stopped: the validate gate refused" in proc.stderr.strip().splitlines()[-1]
    assert "=== train-baseline" not in proc.stdout
    assert MlflowClient(tracking_uri).search_registered_models() == []


def test_unknown_or_abbreviated_parameter_is_refused(tmp_path: Path) -> None:
    for flag in ("--learning-rat", "--no-such-parameter"):
        proc = subprocess.run(
            [sys.executable, "-m", "components.pipeline", flag, "1", "--artifacts-root", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and f"unrecognized arguments: {flag} 1" in proc.stderr
        assert not any(tmp_path.iterdir()), "nothing runs on a bad command line"
