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


# --- the ensemble flavour (written by blend) ---


def _members(model_dir: Path) -> list[dict]:
    return json.loads((model_dir / "manifest.json").read_text())["metadata"]["members"]


def test_ensemble_predicts_the_weighted_average_of_its_members(
    ensemble_model_dir: Path, tiny_transformer_model_dir: Path, baseline_model_dir: Path
) -> None:
    texts = ["an utterly charming and funny film", "dull, joyless and far too long", "ok"]
    model = load_model(ensemble_model_dir)
    assert model.flavor == "ensemble" and model.labels.is_binary
    expected = 0.6 * load_model(tiny_transformer_model_dir).predict_proba(texts) + 0.4 * load_model(
        baseline_model_dir
    ).predict_proba(texts)
    assert model.predict_proba(texts) == pytest.approx(expected, abs=1e-6)
    assert [m["path"] for m in _members(ensemble_model_dir)] == ["members/transformer", "members/tfidf"]
    # The ensemble's manifest covers every member file: its digest changes with any of them.
    manifest = verify_manifest(ensemble_model_dir)
    assert "members/transformer/model.safetensors" in manifest.files
    assert "members/tfidf/model.skops" in manifest.files


def test_a_tampered_member_file_is_refused(tmp_path: Path, ensemble_model_dir: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(ensemble_model_dir, copy)
    with (copy / "members" / "tfidf" / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_model(copy)


def _rewrite_members(source: Path, target: Path, edit) -> Path:
    """A copy of the ensemble with its member list edited and its manifest rewritten to match (as an attacker
    who can write the bucket would): only the loader's own rules stand in the way."""
    from components.common.artifacts import read_manifest, write_manifest

    shutil.copytree(source, target)
    manifest = read_manifest(target)
    write_manifest(target, manifest.flavor, manifest.metadata | {"members": edit(_members(source))})
    return target


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda ms: [ms[0] | {"path": "members/../members/tfidf"}, ms[1]], "not under members/"),
        (lambda ms: [ms[0] | {"path": "/etc"}, ms[1]], "not under members/"),
        (lambda ms: [ms[0] | {"weight": 0.9}, ms[1]], "sum to"),
        (lambda ms: [ms[0] | {"weight": -0.4}, ms[1] | {"weight": 1.4}], "must be positive"),
        (lambda ms: [ms[0] | {"weight": float("nan")}, ms[1]], "must be positive"),
        (lambda ms: [ms[0] | {"digest": "0" * 64}, ms[1]], "not the recorded"),
        (lambda ms: [{k: v for k, v in ms[0].items() if k != "digest"}, ms[1]], "no recorded digest"),
        (lambda ms: [ms[0] | {"path": "members/nothing"}, ms[1]], "not a listed model directory"),
        (lambda ms: [], "must list its members"),
    ],
    ids=[
        "dot-dot",
        "absolute",
        "weights-not-1",
        "negative",
        "nan",
        "member-digest",
        "no-digest",
        "absent",
        "empty",
    ],
)
def test_an_ensemble_that_breaks_the_loaders_rules_is_refused(
    tmp_path: Path, ensemble_model_dir: Path, edit, reason: str
) -> None:
    with pytest.raises(ArtifactError, match=reason):
        load_model(_rewrite_members(ensemble_model_dir, tmp_path / "model", edit))


def test_an_ensemble_inside_an_ensemble_is_refused(
    tmp_path: Path, ensemble_model_dir: Path, baseline_model_dir: Path
) -> None:
    from components.common.models import write_ensemble

    nested = tmp_path / "nested"
    nested.mkdir()
    write_ensemble(nested, [(ensemble_model_dir, 0.5), (baseline_model_dir, 0.5)], {})
    with pytest.raises(ArtifactError, match="cannot be an ensemble"):
        load_model(nested)
