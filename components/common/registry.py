"""MLflow model-registry helpers: resolve aliases, download versions safely, find versions by digest."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from components.common.artifacts import ArtifactError
from components.common.settings import TrackingSettings

CHAMPION = "champion"
CHALLENGER = "challenger"
DIGEST_TAG = "model_digest"


def client(settings: TrackingSettings) -> Any:
    """An MlflowClient for the configured tracking URI (registry on the same store)."""
    from mlflow import MlflowClient

    from components.common.tracking import configure

    configure(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def version_by_alias(mlflow_client: Any, name: str, alias: str) -> Any | None:
    """The model version holding ``alias``, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise


def versions_with_digest(mlflow_client: Any, name: str, digest: str) -> list[Any]:
    """Existing versions of ``name`` registered from a model with this manifest digest."""
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow_client.search_model_versions(f"name = '{name}' and tag.{DIGEST_TAG} = '{digest}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))


def download_version(version: Any, dst: Path | None = None) -> Path:
    """Download a version's model directory; the caller verifies it with ``load_model(..., expected_digest)``."""
    import mlflow

    target = dst or Path(tempfile.mkdtemp(prefix=f"sentimentops-v{version.version}-"))
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(target)))
    except Exception as exc:  # MlflowException, OSError from the artifact store
        raise ArtifactError(
            f"cannot download model version {version.version} from {version.source}: {exc}"
        ) from exc


def parse_model_uri(uri: str) -> tuple[str, str]:
    """Split ``models:/<name>@<alias>`` into (name, alias)."""
    body = uri.removeprefix("models:/")
    if "@" not in body:
        raise ArtifactError(f"expected models:/<name>@<alias>, got {uri!r}")
    name, alias = body.split("@", 1)
    return name, alias


def load_verified(version: Any, device: str | None = None) -> Any:
    """Download a model version and load it only if its files hash to the version's recorded
    ``model_digest`` (required: a version without one is refused, never loaded unchecked)."""
    from components.common.artifacts import check_digest_format
    from components.common.models import load_model

    digest = (version.tags or {}).get(DIGEST_TAG)
    if not digest:
        raise ArtifactError(f"model version {version.version} has no {DIGEST_TAG!r} tag; refusing to load it")
    check_digest_format(digest, f"model version {version.version}'s {DIGEST_TAG}")
    return load_model(download_version(version), expected_digest=digest, device=device)


def load_by_alias(
    settings: TrackingSettings, name: str, alias: str, device: str | None = None
) -> tuple[Any, Any]:
    """Download and load the version holding ``alias`` after checking its recorded digest: (model, version)."""
    mlflow_client = client(settings)
    version = version_by_alias(mlflow_client, name, alias)
    if version is None:
        raise ArtifactError(f"registered model {name!r} has no version with alias {alias!r}")
    return load_verified(version, device=device), version
