"""resolve_model: one integrity rule for every source (registry ref, directory, fsspec URI), and reading a
model through the registry writes nothing to MLflow."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from components.common import registry
from components.common.artifacts import ArtifactError, read_manifest, upload_dir
from components.common.model_source import ModelNotFoundError, resolve_model
from components.common.settings import TrackingSettings


def _registered(model_dir: Path, tracking_uri: str) -> tuple[object, str]:
    """A store holding ``sentiment``: @champion pinned to the right digest, @challenger to a wrong one,
    @untagged with no digest tag. Returns (client, the right digest)."""
    client = registry.write_client(TrackingSettings(tracking_uri=tracking_uri))
    digest = read_manifest(model_dir).digest
    client.create_registered_model("sentiment")
    for alias, tags in (
        ("champion", {registry.DIGEST_TAG: digest}),
        ("challenger", {registry.DIGEST_TAG: "0" * 64}),
        ("untagged", {}),
    ):
        version = client.create_model_version("sentiment", str(model_dir), tags=tags)
        client.set_registered_model_alias("sentiment", alias, version.version)
    return client, digest


def test_registry_refs_load_only_against_the_recorded_digest(
    baseline_model_dir: Path, tracking_env: str
) -> None:
    _, digest = _registered(baseline_model_dir, tracking_env)
    loaded = resolve_model("models:/sentiment@champion")
    assert (loaded.name, loaded.version, loaded.digest) == ("sentiment", "1", digest)
    assert resolve_model("models:/sentiment/1", expected_digest=digest).version == "1"
    with pytest.raises(ArtifactError, match="not the expected"):
        resolve_model("models:/sentiment@champion", expected_digest="f" * 64)
    with pytest.raises(ArtifactError, match="does not match the registered"):
        resolve_model("models:/sentiment@challenger")
    with pytest.raises(ArtifactError, match="no model_digest tag"):
        resolve_model("models:/sentiment@untagged")
    with pytest.raises(ModelNotFoundError, match="no version with alias 'missing'"):
        resolve_model("models:/sentiment@missing")
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_model("models:/sentiment/99")
    with pytest.raises(ArtifactError, match="expected models:/<name>@<alias>"):
        resolve_model("models:/sentiment")


def test_directories_and_fsspec_uris_need_a_pinned_digest(baseline_model_dir: Path) -> None:
    upload_dir(baseline_model_dir, "memory://bucket/models/sentiment")
    with pytest.raises(ArtifactError, match="needs an expected digest"):
        resolve_model("memory://bucket/models/sentiment")
    digest = read_manifest(baseline_model_dir).digest
    loaded = resolve_model("memory://bucket/models/sentiment", expected_digest=digest)
    assert loaded.model.flavor == "tfidf" and loaded.digest == digest and loaded.version == digest[:12]
    assert loaded.model.predict_proba(["good"]).shape == (1, 2)
    with pytest.raises(ArtifactError, match="does not match the registered"):
        resolve_model(str(baseline_model_dir), expected_digest="0" * 64)
    # A training step's output folder (model/ inside) resolves to its model; unpinned only when asked.
    step_output = baseline_model_dir.parent
    assert resolve_model(str(step_output), allow_unpinned=True).digest == digest


def _store_state(client: object, db: Path) -> tuple[list[str], str, list[str]]:
    """(experiment names, sha256 of the SQLite file, every file under the store's folder)."""
    from mlflow.entities import ViewType

    names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ALL))  # type: ignore[attr-defined]
    files = sorted(str(p.relative_to(db.parent)) for p in db.parent.rglob("*"))
    return names, hashlib.sha256(db.read_bytes()).hexdigest(), files


def test_reading_a_model_writes_nothing_to_mlflow(baseline_model_dir: Path, tmp_path: Path) -> None:
    """A reader whose experiment does not exist resolves the champion: no experiment, row or file appears.
    The writing client, given the same settings, does create it (so the check can fail)."""
    db = tmp_path / "mlruns" / "mlflow.db"
    uri = f"sqlite:///{db}"
    client, digest = _registered(baseline_model_dir, uri)
    reader = TrackingSettings(tracking_uri=uri, experiment="a-reader-never-creates-this")
    before = _store_state(client, db)
    assert resolve_model("models:/sentiment@champion", tracking=reader).digest == digest
    assert _store_state(client, db) == before

    registry.write_client(reader)
    names, sha, _ = _store_state(client, db)
    assert "a-reader-never-creates-this" in names and sha != before[1]


def test_reading_from_a_missing_store_creates_none(tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(ModelNotFoundError, match="no MLflow tracking store"):
        resolve_model("models:/sentiment@champion", tracking=TrackingSettings(tracking_uri=f"sqlite:///{db}"))
    assert not db.parent.exists()
