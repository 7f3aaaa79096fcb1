"""The local pipeline end to end on the smoke subset with a tiny model, against a real MLflow server on
a real PostgreSQL (the cluster's setup), plus the failure path: a corrupted CSV never reaches the registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from components.common.artifacts import read_manifest
from components.evaluate.evaluation import read_evaluation
from serving.onnx_export import GRAPHS
from tests.conftest import RT_CSV

pytestmark = pytest.mark.integration


def run_pipeline(
    tracking_uri: str,
    artifacts: Path,
    dataset: Path,
    checkpoint: Path,
    *extra: str,
    env: dict[str, str] | None = None,
):
    env = {**os.environ, "SENTIMENTOPS_TRACKING_URI": tracking_uri, **(env or {})}
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
    # The tiny random model cannot beat TF-IDF and the smoke split is 8 rows, so the margin is opened up and the
    # significance test switched off (env, as a pod would get it); the gate itself: test_promotion_gate.py.
    no_test = {"SENTIMENTOPS_GATE_MIN_SAMPLES": "0", "SENTIMENTOPS_GATE_TEST": "none"}
    proc = run_pipeline(
        mlflow_server, tmp_path / "run", RT_CSV, tiny_checkpoint_dir, "--promotion-margin", "-1", env=no_test
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "registered: sentiment-smoke version" in proc.stdout  # a smoke run has its own model name
    assert "baseline" in proc.stdout and "challenger" in proc.stdout  # the metrics table

    client = MlflowClient(mlflow_server)
    champion = client.get_model_version_by_alias("sentiment-smoke", "champion")
    challenger = client.get_model_version_by_alias("sentiment-smoke", "challenger")
    assert champion.version == challenger.version
    tags = challenger.tags
    # The tiny random transformer gains from the baseline on validation: blend makes the challenger an ensemble.
    blend = json.loads((tmp_path / "run" / "blended" / "blend.json").read_text())
    assert blend["baseline_weight"] > 0 and blend["curve"]["0"] <= max(blend["curve"].values())
    assert tags["flavor"] == "ensemble" and tags["dataset_hash"].startswith("sha256:")
    assert tags["parent_run_id"], "the pipeline's parent run is recorded on the version"
    parent = client.get_run(tags["parent_run_id"])
    assert parent.data.tags["outcome"] == "succeeded"
    train_run = client.get_run(tags["train_run_id"])
    assert train_run.data.params["precision_used"] == "fp32"
    assert train_run.data.tags["dataset_hash"] == tags["dataset_hash"]
    # The graphs the predictor serves were exported by the pipeline, inside the registered model's digest, and
    # evaluate measured what int8 costs on validation and test (register recorded it for quantize=auto).
    registered = read_manifest(tmp_path / "run" / "blended" / "model")
    assert registered.digest == tags["model_digest"]
    assert {f"members/transformer/{g}" for g in GRAPHS.values()} <= set(registered.files)
    for split in ("validation", "test"):
        assert float(tags[f"int8_accuracy_loss_{split}"]) == pytest.approx(
            read_evaluation(str(tmp_path / "run" / "evaluation"))
            .models["challenger"]
            .int8[split]["loss_points"]
        )

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
        env={
            **os.environ,
            **no_test,
            "SENTIMENTOPS_TRACKING_URI": mlflow_server,
            "SENTIMENTOPS_REGISTERED_MODEL": "sentiment-smoke",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "already registered" in again.stdout and "aliases unchanged" in again.stdout
    assert len(client.search_model_versions("name = 'sentiment-smoke'")) == 1
    assert client.search_model_versions("name = 'sentiment'") == []


def test_smoke_run_holds_and_leaves_the_real_registry_alone(
    tmp_path: Path, tiny_checkpoint_dir: Path
) -> None:
    """`make run` then `make run-smoke`: the smoke run (default gate) must not move the real aliases."""
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri)
    client.create_registered_model("sentiment")
    real = client.create_model_version("sentiment", source=str(tmp_path), tags={"model_digest": "0" * 64})
    for alias in ("champion", "challenger"):
        client.set_registered_model_alias("sentiment", alias, real.version)

    proc = run_pipeline(tracking_uri, tmp_path / "smoke", RT_CSV, tiny_checkpoint_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke run: experiment 'sentiment-smoke', registered model 'sentiment-smoke'" in proc.stdout
    assert "hold: promotion gate held, nothing registered: the 8-row evaluation split is below" in proc.stderr
    assert "the register gate held" in proc.stdout and "nothing registered, no alias moved" in proc.stdout
    for alias in ("champion", "challenger"):
        assert client.get_model_version_by_alias("sentiment", alias).version == real.version
    assert len(client.search_model_versions("name = 'sentiment'")) == 1
    assert client.search_model_versions("name = 'sentiment-smoke'") == []
    assert client.get_experiment_by_name("sentiment") is None  # every run went to the smoke experiment
    smoke_runs = client.search_runs([client.get_experiment_by_name("sentiment-smoke").experiment_id])
    assert {r.data.tags.get("step") for r in smoke_runs} >= {
        "pipeline",
        "validate",
        "train-baseline",
        "evaluate",
    }


def test_smoke_tracking_defaults_to_its_own_store() -> None:
    from components.common.settings import REPO_ROOT, TrackingSettings
    from components.pipeline.runner import smoke_tracking

    default = TrackingSettings(tracking_uri=TrackingSettings.model_fields["tracking_uri"].default)
    smoke = smoke_tracking(default)
    assert (
        smoke.tracking_uri
        == f"sqlite:///{REPO_ROOT / 'mlruns' / 'smoke' / 'mlflow.db'}"
        != default.tracking_uri
    )
    assert (smoke.experiment, smoke.registered_model) == ("sentiment-smoke", "sentiment-smoke")
    server = smoke_tracking(
        TrackingSettings(tracking_uri="http://mlflow:5000", registered_model="sentiment-smoke")
    )
    assert server.tracking_uri == "http://mlflow:5000" and server.registered_model == "sentiment-smoke"


def test_corrupted_csv_stops_the_pipeline_at_validate(tmp_path: Path, tiny_checkpoint_dir: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(RT_CSV, keep_default_na=False)
    frame["label"] = frame["label"].astype(object)
    frame.loc[frame.index[::5], "label"] = "neutral"  # not a declared class ("positive" is one: class 1)
    frame.to_csv(bad, index=False)
    proc = run_pipeline(tracking_uri, tmp_path / "run", bad, tiny_checkpoint_dir)
    assert proc.returncode == 2
    assert (
        "error: validation gate failed: share of rows dropped as invalid_label 20.01% exceeds" in proc.stderr
    )
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
