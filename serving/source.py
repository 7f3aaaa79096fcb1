"""Where the model comes from, and the digest it must have.

A local directory or an fsspec URI (KServe's storage initializer puts the ``gs://`` model in
``/mnt/models``; we can also fetch it ourselves) is served only when its files hash to the
*expected digest* (``--expected-model-digest`` / ``SENTIMENTOPS_EXPECTED_MODEL_DIGEST``: the registry's
``model_digest``, written into the InferenceService by ``serving.rollout propose``). The manifest inside the
artifact is not trusted on its own: whoever can write the bucket can rewrite it too. An MLflow reference
``models:/<name>@<alias>`` takes the digest from the registry (and, if one is also given, both must agree).
``--allow-unpinned-model`` serves a directory without a digest, for local development only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from components.common.artifacts import ArtifactError, check_digest_format, fetch_dir, is_remote
from components.common.models import SentimentModel, load_model

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A verified model and the identity it is served under."""

    model: SentimentModel
    version: str
    digest: str
    path: Path
    tags: dict[str, str] = field(default_factory=dict)  # the registry version's tags (models:/ refs only)


def _from_registry(uri: str, expected: str | None, device: str | None) -> LoadedModel:
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
    check_digest_format(digest, f"{name} version {version.version}'s {DIGEST_TAG}")
    if expected is not None and expected != digest:
        raise ArtifactError(
            f"{uri} is version {version.version} with digest {digest[:12]}…, not the expected {expected[:12]}…"
        )
    path = download_version(version)
    model = load_model(path, expected_digest=digest, device=device)
    return LoadedModel(model, str(version.version), digest, path, dict(version.tags or {}))


def load(
    uri: str,
    device: str | None = None,
    expected_digest: str | None = None,
    allow_unpinned: bool = False,
) -> LoadedModel:
    """Fetch (if needed), verify against the expected digest and load the model at ``uri``."""
    if expected_digest is not None:
        check_digest_format(expected_digest, "expected model digest")
    if uri.startswith("models:/"):
        return _from_registry(uri, expected_digest, device)
    if expected_digest is None and not allow_unpinned:
        raise ArtifactError(
            "no expected model digest: set --expected-model-digest (env SENTIMENTOPS_EXPECTED_MODEL_DIGEST) "
            "to the registry's model_digest, or --allow-unpinned-model for local development"
        )
    path = fetch_dir(uri)
    if not is_remote(uri) and not (path / "manifest.json").is_file() and (path / "model").is_dir():
        path = path / "model"  # a step output dir (train_result.json + model/) is accepted too
    if expected_digest is None:
        log.warning("serving %s WITHOUT an expected digest (--allow-unpinned-model)", path)
    model = load_model(path, expected_digest=expected_digest, device=device)
    digest = model.manifest.digest
    return LoadedModel(model, digest[:12], digest, path)
