"""Where the model comes from: a local directory, an fsspec URI (KServe's storage initializer puts
``gs://`` models in /mnt/models; we can also fetch them ourselves), or an MLflow registry reference
``models:/<name>@<alias>`` whose ``model_digest`` tag must match the downloaded manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from components.common.artifacts import ArtifactError, fetch_dir, is_remote
from components.common.models import SentimentModel, load_model


@dataclass
class LoadedModel:
    """A verified model and the identity it is served under."""

    model: SentimentModel
    version: str
    digest: str
    path: Path


def _from_registry(uri: str, device: str | None) -> LoadedModel:
    from components.common.registry import (
        DIGEST_TAG,
        client,
        download_version,
        parse_model_uri,
        version_by_alias,
    )
    from components.common.settings import TrackingSettings

    name, alias = parse_model_uri(uri)
    version = version_by_alias(client(TrackingSettings()), name, alias)
    if version is None:
        raise ArtifactError(f"registered model {name!r} has no version with alias {alias!r}")
    digest = (version.tags or {}).get(DIGEST_TAG)
    if not digest:
        raise ArtifactError(
            f"{name} version {version.version} has no {DIGEST_TAG!r} tag; refusing to serve it"
        )
    path = download_version(version)
    model = load_model(path, expected_digest=digest, device=device)
    return LoadedModel(model, str(version.version), digest, path)


def load(uri: str, device: str | None = None) -> LoadedModel:
    """Fetch (if needed), verify and load the model at ``uri``."""
    if uri.startswith("models:/"):
        return _from_registry(uri, device)
    path = fetch_dir(uri)
    if not is_remote(uri) and not (path / "manifest.json").is_file() and (path / "model").is_dir():
        path = path / "model"  # a step output dir (train_result.json + model/) is accepted too
    model = load_model(path, device=device)
    digest = model.manifest.digest
    return LoadedModel(model, digest[:12], digest, path)
