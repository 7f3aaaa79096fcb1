"""Model directories: skops baseline quality, manifest integrity, atomic publishing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from components.common.artifacts import ArtifactError, staging_dir, verify_manifest
from components.common.models import load_model
from components.common.results import TrainResult


def test_baseline_dir_has_manifest_result_and_loads(baseline_model_dir: Path) -> None:
    manifest = verify_manifest(baseline_model_dir)
    assert manifest.flavor == "tfidf" and set(manifest.files) == {"model.skops"}
    assert manifest.metadata["dataset_hash"].startswith("sha256:")
    trained = TrainResult.read(str(baseline_model_dir.parent))
    assert trained.model_dir == str(baseline_model_dir)
    model = load_model(baseline_model_dir)
    assert manifest.metadata["labels"] == ["negative", "positive"] and model.labels.is_binary
    proba = model.predict_proba(["an utterly charming and funny film"])
    assert proba.shape == (1, 2) and 0.0 <= proba[0, 1] <= 1.0 and proba.sum() == pytest.approx(1.0)


def test_tampered_file_is_refused(tmp_path: Path, baseline_model_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(baseline_model_dir, copy)
    with (copy / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_model(copy)


def test_wrong_registered_digest_is_refused(baseline_model_dir: Path) -> None:
    with pytest.raises(ArtifactError, match="does not match the registered"):
        load_model(baseline_model_dir, expected_digest="0" * 64)


def test_directory_without_manifest_is_incomplete(tmp_path: Path, baseline_model_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(baseline_model_dir, copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match="not a complete model directory"):
        load_model(copy)


def test_staging_dir_publishes_only_on_success(tmp_path: Path) -> None:
    final = tmp_path / "out" / "model"
    with staging_dir(final) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), staging_dir(final) as tmp:
        (tmp / "a.txt").write_text("half-written")
        raise RuntimeError("killed mid-write")
    assert (final / "a.txt").read_text() == "first"
    assert [p.name for p in final.parent.iterdir()] == ["model"]


def test_baseline_reaches_target_accuracy_on_full_data(tmp_path: Path, rt_frame: pd.DataFrame) -> None:
    """The TF-IDF baseline on the real train split clears 0.78 test accuracy (fit takes seconds)."""
    from components.common.data import read_validated, write_validated
    from components.common.metrics import classification_metrics
    from components.train_baseline.train import BaselineSettings, train_baseline

    validated = tmp_path / "validated"
    write_validated(rt_frame, validated / "dataset.parquet")
    result = train_baseline(
        BaselineSettings(validated_dir=str(validated), output_dir=str(tmp_path / "b"), track=False)
    )
    test = read_validated(validated / "dataset.parquet").query("split == 'test'")
    metrics = classification_metrics(
        test["label"].tolist(), load_model(Path(result.model_dir)).predict_proba(test["text"].tolist())
    )
    assert metrics.accuracy >= 0.78
    assert (
        json.loads((Path(result.model_dir) / "manifest.json").read_text())["metadata"]["params"]["ngram_max"]
        == 2
    )
