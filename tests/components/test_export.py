"""Export in the pipeline: the model directory carries its ONNX graphs under its manifest and digest; the
export CLI adds them to an older model directory; what it refuses."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.common.artifacts import read_manifest, sha256_file, write_manifest
from components.common.models import TRANSFORMER_FLAVOR, load_model
from components.evaluate.int8 import int8_accuracy_change
from serving.onnx_export import GRAPHS


def _export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "components.export", *args], capture_output=True, text=True, timeout=600
    )


def test_export_cli_adds_graphs_to_an_older_model_and_changes_its_digest(
    tiny_checkpoint_dir: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_checkpoint_dir, model_dir)
    before = write_manifest(model_dir, TRANSFORMER_FLAVOR, {"max_length": 64})

    wrong = _export("--model-dir", str(model_dir), "--expected-digest", "0" * 64)
    assert wrong.returncode != 0 and "does not match the registered" in wrong.stderr
    assert not (model_dir / "onnx").exists()

    done = _export("--model-dir", str(model_dir), "--expected-digest", before.digest)
    assert done.returncode == 0, done.stderr[-2000:]
    after = read_manifest(model_dir)
    assert after.digest != before.digest and after.digest in done.stdout
    for graph in GRAPHS.values():  # listed, so the digest covers them and a swapped graph is refused
        assert after.files[graph] == sha256_file(model_dir / graph)
    assert load_model(model_dir, expected_digest=after.digest).manifest.metadata["max_length"] == 64


def test_export_refuses_a_tfidf_model(baseline_model_dir: Path) -> None:
    done = _export("--model-dir", str(baseline_model_dir))
    assert done.returncode != 0 and "only transformers have ONNX graphs" in done.stderr
    assert not (baseline_model_dir / "onnx").exists()


def test_int8_accuracy_change_is_measured_on_validation_and_test(
    tiny_transformer_model_dir: Path, validated_smoke_dir: Path
) -> None:
    change = int8_accuracy_change(
        load_model(tiny_transformer_model_dir), str(validated_smoke_dir), max_rows=0
    )
    assert change is not None and set(change) == {"validation", "test"}
    for split in change.values():
        assert split["n"] > 0 and 0 <= split["label_agreement"] <= 1
        expected = 100 * (split["fp32_accuracy"] - split["int8_accuracy"])
        assert np.isclose(split["loss_points"], expected, atol=1e-3)
    capped = int8_accuracy_change(
        load_model(tiny_transformer_model_dir), str(validated_smoke_dir), max_rows=3
    )
    assert capped is not None and capped["validation"]["n"] == 3


def test_int8_accuracy_change_is_none_for_a_model_without_graphs(
    baseline_model_dir: Path, validated_smoke_dir: Path
) -> None:
    assert int8_accuracy_change(load_model(baseline_model_dir), str(validated_smoke_dir), max_rows=0) is None


def test_an_ensembles_int8_change_is_measured_on_the_whole_ensemble(
    ensemble_model_dir: Path, validated_smoke_dir: Path
) -> None:
    from components.common.data import read_validated
    from components.common.labels import predicted_ids

    model = load_model(ensemble_model_dir)
    change = int8_accuracy_change(model, str(validated_smoke_dir), max_rows=0)
    assert change is not None and set(change) == {"validation", "test"}
    # Its fp32 accuracy is the ensemble's (both members averaged), not its transformer member's alone.
    frame = read_validated(validated_smoke_dir / "dataset.parquet")
    validation = frame[frame["split"] == "validation"]
    proba = model.predict_proba(validation["text"].tolist())
    expected = float(np.mean(predicted_ids(proba) == validation["label"].to_numpy()))
    assert change["validation"]["fp32_accuracy"] == pytest.approx(expected)
    transformer_alone = load_model(ensemble_model_dir / "members" / "transformer")
    alone = float(
        np.mean(
            predicted_ids(transformer_alone.predict_proba(validation["text"].tolist()))
            == validation["label"].to_numpy()
        )
    )
    assert alone != pytest.approx(expected)  # the smoke data tells the two apart
