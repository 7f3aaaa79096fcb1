"""The local pipeline end to end on the four-class task (data/uci_source_sentiment, its label map, the macro-F1
gate) with a tiny transformer: it registers under its own model name, beside the binary task, a model whose
classes are the label map's four names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from components.common.model_source import resolve_model
from components.common.settings import TrackingSettings
from components.evaluate.evaluation import read_evaluation
from tests.conftest import FOUR_CLASS_DIR

pytestmark = pytest.mark.integration

NAMES = json.loads((FOUR_CLASS_DIR / "label_map.json").read_text())["names"]
TASK = "uci-source-sentiment"


def test_four_class_pipeline_registers_a_four_class_model(tmp_path: Path, tiny_checkpoint_dir: Path) -> None:
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # The task's parameters as `make run-four-class` passes them; the tiny random transformer (a binary head,
    # replaced by a four-class one) cannot beat TF-IDF, so the margin is opened and the significance test off.
    command = [
        sys.executable,
        "-m",
        "components.pipeline",
        "--dataset-uri",
        str(FOUR_CLASS_DIR / "uci_source_sentiment.csv"),
        "--label-map",
        str(FOUR_CLASS_DIR / "label_map.json"),
        "--min-train-rows",
        "800",
        "--min-eval-rows",
        "350",
        "--min-class-count",
        "50",
        "--gate-metric",
        "macro_f1",
        "--registered-model",
        TASK,
        "--artifacts-root",
        str(tmp_path / "run"),
        "--base-model",
        str(tiny_checkpoint_dir),
        "--max-train-samples",
        "300",
        "--class-weight",
        "balanced",
        "--promotion-margin",
        "-1",
    ]
    env = {**os.environ, "SENTIMENTOPS_TRACKING_URI": tracking_uri, "SENTIMENTOPS_GATE_TEST": "none"}
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"registered: {TASK} version 1" in proc.stdout

    evaluation = read_evaluation(str(tmp_path / "run" / "evaluation"))
    for role in ("baseline", "challenger"):
        metrics = evaluation.models[role].metrics
        assert metrics["labels"] == NAMES and np.asarray(metrics["confusion_matrix"]).shape == (4, 4)
        assert 0.0 <= metrics["macro_f1"] <= 1.0 and set(metrics["per_class"]) == set(NAMES)
        assert (tmp_path / "run" / "evaluation" / f"confusion_{role}.png").stat().st_size > 0
    # The multinomial baseline learns the four classes (chance is 0.25).
    assert evaluation.models["baseline"].metrics["macro_f1"] > 0.5
    predictions = pd.read_parquet(tmp_path / "run" / "evaluation" / "predictions.parquet")
    assert {f"challenger_proba_{i}" for i in range(4)} <= set(predictions.columns)
    assert "challenger_proba" not in predictions.columns

    client = MlflowClient(tracking_uri)
    assert str(client.get_model_version_by_alias(TASK, "champion").version) == "1"
    assert client.search_model_versions("name = 'sentiment'") == []  # the binary task's name is untouched
    loaded = resolve_model(
        f"models:/{TASK}@champion",
        tracking=TrackingSettings(tracking_uri=tracking_uri, registered_model=TASK),
    )
    # blend averaged the tiny transformer with the baseline (it gains on validation): a four-class ensemble
    assert loaded.model.flavor == "ensemble" and list(loaded.model.labels.names) == NAMES
    assert {m.model.flavor for m in loaded.model.members} == {"transformer", "tfidf"}
    proba = loaded.model.predict_proba(["This phone case broke in a day.", "A moving, wonderful film."])
    assert proba.shape == (2, 4) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    baseline = resolve_model(str(tmp_path / "run" / "baseline"), allow_unpinned=True).model
    assert list(baseline.labels.names) == NAMES
    assert baseline.predict_proba(["Great headset, works perfectly."]).shape == (1, 4)
