"""MLflow model-registry helpers: a side-effect-free reading client, aliases, versions, downloads.

Loading a registered model goes through ``components.common.model_source.resolve_model``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.common.artifacts import ArtifactError
from components.common.settings import TrackingSettings

CHAMPION = "champion"
CHALLENGER = "challenger"
DIGEST_TAG = "model_digest"


class ModelNotFoundError(ArtifactError):
    """The registry has no such model, alias or version (or there is no registry at all yet)."""


def _local_store(uri: str) -> Path | None:
    """The file or folder of a local tracking store (``sqlite:///``, ``file:``), else None."""
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///"))
    if uri.startswith("file:"):
        return Path(uri.removeprefix("file://").removeprefix("file:"))
    return None


def read_client(settings: TrackingSettings) -> Any:
    """An MlflowClient for reading the registry, with no side effect: it never calls ``configure()``, so it
    creates no experiment, folder or database (a reader needs read access only)."""
    from mlflow import MlflowClient

    import components.common.tracking  # noqa: F401  (bounded MLflow HTTP timeouts)

    uri = settings.tracking_uri
    store = _local_store(uri)
    if store is not None and not store.exists():
        # MLflow would create an empty store here; a reader reports the missing one instead.
        raise ModelNotFoundError(f"no MLflow tracking store at {uri}: nothing is registered there")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def write_client(settings: TrackingSettings) -> Any:
    """An MlflowClient for the steps that write (register, pipeline tracking): ``configure()`` first, which
    creates the local store and the experiment when missing."""
    from mlflow import MlflowClient

    from components.common.tracking import configure

    configure(settings)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _unless_missing(call: Callable[[], Any]) -> Any | None:
    """``call()``, or None when MLflow answers that the model, alias or version does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise


def version_by_alias(mlflow_client: Any, name: str, alias: str) -> Any | None:
    """The model version holding ``alias``, or None when the model or alias does not exist."""
    return _unless_missing(lambda: mlflow_client.get_model_version_by_alias(name, alias))


def get_version(mlflow_client: Any, name: str, version: str) -> Any | None:
    """Version ``version`` of ``name``, or None when it does not exist."""
    return _unless_missing(lambda: mlflow_client.get_model_version(name, version))


def versions_with_digest(mlflow_client: Any, name: str, digest: str) -> list[Any]:
    """Existing versions of ``name`` registered from a model with this manifest digest."""
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow_client.search_model_versions(f"name = '{name}' and tag.{DIGEST_TAG} = '{digest}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))


def download_version(version: Any, tracking_uri: str, dst: Path | None = None, file: str = "") -> Path:
    """Download a version's model directory (or just one ``file`` of it, e.g. its manifest);
    ``model_source`` verifies it against the version's digest."""
    import mlflow

    target = dst or Path(tempfile.mkdtemp(prefix=f"sentimentops-v{version.version}-"))
    source = f"{str(version.source).rstrip('/')}/{file}" if file else version.source
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(target), tracking_uri=tracking_uri
            )
        )
    except Exception as exc:  # MlflowException, OSError from the artifact store
        raise ArtifactError(
            f"cannot download model version {version.version} from {version.source}: {exc}"
        ) from exc
