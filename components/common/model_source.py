"""Where a model comes from, and the one integrity rule every reader loads it under.

``resolve_model(uri)`` is the only way serving, batch-score, evaluate and the drift job get a model. ``uri``
is a local directory, an fsspec URI (``gs://``, ``memory://``: KServe's storage initializer puts the
``gs://`` model in ``/mnt/models``), ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.

The rule: the files must hash to a *pinned* digest before anything in them is loaded. The manifest inside
the artifact is not trusted on its own (whoever can write the bucket can rewrite it too).

- A registry reference is pinned by the version's ``model_digest`` tag, which must be present: an untagged
  version is refused. An ``expected_digest`` given as well must agree with it.
- A directory or fsspec URI is pinned by ``expected_digest`` (the registry's ``model_digest``, e.g. from
  ``SENTIMENTOPS_EXPECTED_MODEL_DIGEST``). Without one it is refused, unless the caller passes
  ``allow_unpinned=True``: local development, and the pipeline's own hand-off from a training step to
  evaluate (its files are then checked against their own manifest only).

The registry is read through ``registry.read_client``: resolving a model never writes to MLflow.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from components.common import registry
from components.common.artifacts import (
    MANIFEST_NAME,
    ArtifactError,
    Manifest,
    check_digest_format,
    fetch_dir,
    is_remote,
    local_path,
    read_manifest,
    verify_manifest,
)
from components.common.registry import ModelNotFoundError
from components.common.results import MODEL_SUBDIR
from components.common.settings import TrackingSettings

if TYPE_CHECKING:
    from components.common.models import TextClassifier

__all__ = [
    "LoadedModel",
    "ModelNotFoundError",
    "PinnedManifest",
    "VerifiedModelFiles",
    "pin_model",
    "resolve_model",
    "verify_model_files",
]
log = logging.getLogger(__name__)
REGISTRY_SCHEME = "models:/"
_ALIAS_REF = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")
_VERSION_REF = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class VerifiedModelFiles:
    """A model directory whose files hashed to the pinned ``digest``, not loaded yet."""

    path: Path
    digest: str
    name: str
    version: str  # the registry version, or digest[:12] for a directory
    source: str  # where the files came from: the version's source, or the URI as given
    tags: dict[str, str] = field(default_factory=dict)  # the registry version's tags (models:/ refs only)

    def load(self, device: str | None = None) -> LoadedModel:
        """Load the model, verifying its files against ``digest`` again right before the load."""
        from components.common import models

        model = models.load_model(self.path, expected_digest=self.digest, device=device)
        return LoadedModel(model, self.name, self.version, self.digest, self.path, self.source, self.tags)


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded model and the identity it is used under."""

    model: TextClassifier
    name: str
    version: str
    digest: str
    path: Path
    source: str
    tags: dict[str, str] = field(default_factory=dict)  # the registry version's tags (models:/ refs only)


def is_registry_ref(uri: str) -> bool:
    """Whether ``uri`` names a registered model version (``models:/...``)."""
    return uri.startswith(REGISTRY_SCHEME)


def _registry_version(
    uri: str, expected_digest: str | None, tracking: TrackingSettings
) -> tuple[str, Any, str]:
    """(name, version, its pinned digest) of a registry reference; refuses an untagged or mismatched version."""
    client = registry.read_client(tracking)
    if match := _ALIAS_REF.match(uri):
        name = match["name"]
        version = registry.version_by_alias(client, name, match["alias"])
        if version is None:
            raise ModelNotFoundError(
                f"registered model {name!r} has no version with alias {match['alias']!r}"
            )
    elif match := _VERSION_REF.match(uri):
        name = match["name"]
        version = registry.get_version(client, name, match["version"])
        if version is None:
            raise ModelNotFoundError(f"model version {uri} not found")
    else:
        raise ArtifactError(f"expected models:/<name>@<alias> or models:/<name>/<version>, got {uri!r}")
    digest = (version.tags or {}).get(registry.DIGEST_TAG)
    if not digest:
        raise ArtifactError(
            f"{name} version {version.version} has no {registry.DIGEST_TAG} tag: refusing an unverified model"
        )
    check_digest_format(digest, f"{name} version {version.version}'s {registry.DIGEST_TAG}")
    if expected_digest is not None and expected_digest != digest:
        raise ArtifactError(
            f"{uri} is version {version.version} with digest {digest[:12]}…, "
            f"not the expected {expected_digest[:12]}…"
        )
    return name, version, digest


def _registry_files(uri: str, expected_digest: str | None, tracking: TrackingSettings) -> VerifiedModelFiles:
    name, version, digest = _registry_version(uri, expected_digest, tracking)
    path = registry.download_version(version, tracking.tracking_uri)
    verify_manifest(path, digest)
    return VerifiedModelFiles(
        path, digest, name, str(version.version), str(version.source), dict(version.tags or {})
    )


def _require_pin(uri: str, expected_digest: str | None, allow_unpinned: bool, digest_flag: str) -> None:
    """A directory or URI loads only pinned to an expected digest, unless the caller allows unpinned use."""
    if expected_digest is None and not allow_unpinned:
        raise ArtifactError(
            f"the model at {uri} needs {digest_flag} (the registry's model_digest it must hash to), "
            "or load it as models:/<name>@<alias>"
        )


def _directory_files(
    uri: str, expected_digest: str | None, allow_unpinned: bool, digest_flag: str
) -> VerifiedModelFiles:
    _require_pin(uri, expected_digest, allow_unpinned, digest_flag)
    path = fetch_dir(uri)
    # A training step's output folder (train_result.json + model/) is accepted too.
    if not (path / MANIFEST_NAME).is_file() and (path / MODEL_SUBDIR / MANIFEST_NAME).is_file():
        path = path / MODEL_SUBDIR
    if expected_digest is None:
        log.info("loading %s pinned to nothing but its own manifest (unpinned: local or pipeline use)", uri)
    digest = verify_manifest(path, expected_digest).digest
    name = PurePosixPath(uri.rstrip("/")).name or "model"
    return VerifiedModelFiles(path, digest, name, digest[:12], uri)


@dataclass(frozen=True)
class PinnedManifest:
    """A model's identity and its manifest, checked against the pinned digest, without its other files."""

    uri: str  # ``models:/<name>/<version>`` for a registry reference (never an alias), else as given
    manifest: Manifest
    name: str
    version: str
    source: str

    @property
    def digest(self) -> str:
        return self.manifest.digest


def _checked_manifest(path: Path, digest: str | None, uri: str) -> Manifest:
    manifest = read_manifest(path)
    if digest is not None and manifest.digest != digest:
        raise ArtifactError(
            f"model digest {manifest.digest[:12]}… of {uri} does not match the registered {digest[:12]}…"
        )
    return manifest


def pin_model(
    uri: str,
    expected_digest: str | None = None,
    allow_unpinned: bool = False,
    tracking: TrackingSettings | None = None,
    digest_flag: str = "an expected digest",
) -> PinnedManifest:
    """Which exact model ``uri`` names, with its flavour and classes, reading only its manifest (the digest
    covers the manifest, so the pinned digest checks it alone): what a planner needs before any worker
    downloads, verifies and loads the files. The same pinning rule as :func:`resolve_model`."""
    if expected_digest is not None:
        check_digest_format(expected_digest, "expected model digest")
    if is_registry_ref(uri):
        tracking = tracking or TrackingSettings()
        name, version, digest = _registry_version(uri, expected_digest, tracking)
        path = registry.download_version(version, tracking.tracking_uri, file=MANIFEST_NAME).parent
        manifest = _checked_manifest(path, digest, uri)
        return PinnedManifest(
            f"models:/{name}/{version.version}", manifest, name, str(version.version), str(version.source)
        )
    _require_pin(uri, expected_digest, allow_unpinned, digest_flag)
    manifest = _checked_manifest(_fetch_manifest(uri), expected_digest, uri)
    return PinnedManifest(
        uri, manifest, PurePosixPath(uri.rstrip("/")).name or "model", manifest.digest[:12], uri
    )


def _fetch_manifest(uri: str) -> Path:
    """A local folder holding the manifest of the model directory at ``uri`` (or of a step's ``model/``)."""
    import tempfile

    import fsspec

    base = uri.rstrip("/")
    for candidate in (f"{base}/{MANIFEST_NAME}", f"{base}/{MODEL_SUBDIR}/{MANIFEST_NAME}"):
        if not is_remote(candidate):
            if local_path(candidate).is_file():
                return local_path(candidate).parent
            continue
        target = Path(tempfile.mkdtemp(prefix="sentimentops-manifest-"))
        try:
            fs, path = fsspec.core.url_to_fs(candidate)
            fs.get_file(path, str(target / MANIFEST_NAME))
            return target
        except FileNotFoundError:
            continue
    raise ArtifactError(f"{uri} is not a complete model directory (no {MANIFEST_NAME})")


def verify_model_files(
    uri: str,
    expected_digest: str | None = None,
    allow_unpinned: bool = False,
    tracking: TrackingSettings | None = None,
    digest_flag: str = "an expected digest",
) -> VerifiedModelFiles:
    """Fetch the model at ``uri`` and check its files against the pinned digest (see the module doc).

    ``digest_flag`` names the caller's setting for the expected digest, for the refusal message."""
    if expected_digest is not None:
        check_digest_format(expected_digest, "expected model digest")
    if is_registry_ref(uri):
        return _registry_files(uri, expected_digest, tracking or TrackingSettings())
    return _directory_files(uri, expected_digest, allow_unpinned, digest_flag)


def resolve_model(
    uri: str,
    expected_digest: str | None = None,
    device: str | None = None,
    allow_unpinned: bool = False,
    tracking: TrackingSettings | None = None,
    digest_flag: str = "an expected digest",
) -> LoadedModel:
    """The verified, loaded model at ``uri``: the one way every component reads a model."""
    return verify_model_files(uri, expected_digest, allow_unpinned, tracking, digest_flag).load(device)
