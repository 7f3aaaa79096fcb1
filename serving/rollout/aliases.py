"""The MLflow registry side of a rollout: resolve the challenger, move ``champion``, record a rollback.

Reads go through ``registry.read_client`` (no side effect); only alias and tag changes use the writing
client. Uses the shared helpers in ``components.common.registry``; MLflow's HTTP calls are bounded by
``MLFLOW_HTTP_REQUEST_TIMEOUT`` / ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` (set in components.common.tracking).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from components.common import registry
from components.common.artifacts import ArtifactError, check_digest_format
from components.common.settings import ComponentError, TrackingSettings
from components.evaluate.int8 import INT8_LOSS_TAG

ROLLBACK_REASON_TAG = "rollback_reason"
T = TypeVar("T")


class RegistryError(ComponentError):
    """The registry could not be read or changed, or it lacks what the rollout needs."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version and where its model directory is."""

    name: str
    version: str
    storage_uri: str
    digest: str | None
    int8_accuracy_loss: str | None = None  # evaluate's recorded int8 validation loss (points), if any


def _client(settings: TrackingSettings, write: bool = False) -> Any:
    try:
        return registry.write_client(settings) if write else registry.read_client(settings)
    except Exception as exc:  # MlflowException, connection errors, bad URI
        raise RegistryError(
            f"cannot reach the MLflow registry at {settings.tracking_uri}: {_line(exc)}"
        ) from exc


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _ref(name: str, version: Any) -> ModelRef:
    return ModelRef(
        name=name,
        version=str(version.version),
        storage_uri=str(version.source),
        digest=(version.tags or {}).get(registry.DIGEST_TAG),
        int8_accuracy_loss=_int8_loss((version.tags or {}).get(INT8_LOSS_TAG)),
    )


def _int8_loss(tag: str | None) -> str | None:
    """The tag as a number's text, or None when absent or not a finite number (then fp32 is served)."""
    try:
        value = float(tag) if tag is not None else None
    except ValueError:
        return None
    return None if value is None or not math.isfinite(value) else repr(value)


def resolve_alias(settings: TrackingSettings, alias: str, schemes: tuple[str, ...]) -> ModelRef:
    """The version holding ``alias`` and its artifact URI (the version's ``source``).

    The URI must use one of ``schemes`` (what KServe's storage initializer can fetch: an
    ``mlflow-artifacts:`` or ``runs:/`` URI would not load in the cluster).
    """
    name = settings.registered_model
    version = _call(
        settings,
        f"cannot read alias {alias!r} of model {name!r}",
        lambda client: registry.version_by_alias(client, name, alias),
    )
    if version is None:
        raise RegistryError(f"registered model {name!r} has no version with alias {alias!r}")
    ref = _ref(name, version)
    check_storage_uri(ref, schemes)
    if not ref.digest:
        raise RegistryError(
            f"version {ref.version} of {name!r} has no {registry.DIGEST_TAG!r} tag: nothing to pin the "
            "deployment to; refusing to roll it out"
        )
    try:
        check_digest_format(ref.digest, f"version {ref.version}'s {registry.DIGEST_TAG}")
    except ArtifactError as exc:
        raise RegistryError(str(exc)) from exc
    return ref


def check_storage_uri(ref: ModelRef, schemes: tuple[str, ...]) -> None:
    """The version's source must be a plain ``<scheme>://<bucket>/<path>`` URI with an allowed scheme
    (``gs`` by default: an ``https`` URL, a ``runs:/`` or ``mlflow-artifacts:`` URI is refused)."""
    uri = ref.storage_uri
    parsed = urlparse(uri)
    problem = None
    if parsed.scheme not in schemes:
        problem = f"scheme {parsed.scheme or 'none'!r} is not allowed (allowed: {', '.join(schemes)})"
    elif not parsed.netloc or "@" in parsed.netloc or ":" in parsed.netloc:
        problem = "it names no plain bucket"
    elif parsed.query or parsed.fragment or parsed.params:
        problem = "it carries a query, fragment or parameters"
    elif any(part in ("", ".", "..") for part in parsed.path.strip("/").split("/")) or not parsed.path.strip(
        "/"
    ):
        problem = "its path is empty or holds '.', '..' or '//'"
    elif any(c.isspace() or not c.isprintable() for c in uri):
        problem = "it holds whitespace or control characters"
    if problem:
        raise RegistryError(
            f"version {ref.version} of {ref.name!r} has source {uri!r}: {problem}; refusing to roll it out"
        )


def _call(settings: TrackingSettings, failure: str, action: Callable[[Any], T], write: bool = False) -> T:
    """``action(client)``, any MLflow or connection error reported as ``<failure>: <first line>``."""
    client = _client(settings, write)
    try:
        return action(client)
    except Exception as exc:
        raise RegistryError(f"{failure}: {_line(exc)}") from exc


def get_version(settings: TrackingSettings, version: str) -> ModelRef:
    """One version of the registered model (an error when it does not exist)."""
    name = settings.registered_model
    found = _call(
        settings,
        f"cannot read version {version} of model {name!r}",
        lambda client: client.get_model_version(name, version),
    )
    return _ref(name, found)


def alias_version(settings: TrackingSettings, alias: str) -> str | None:
    """The version number holding ``alias``, or None."""
    name = settings.registered_model
    version = _call(
        settings,
        f"cannot read alias {alias!r}",
        lambda client: registry.version_by_alias(client, name, alias),
    )
    return None if version is None else str(version.version)


def set_alias(settings: TrackingSettings, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``."""
    name = settings.registered_model
    _call(
        settings,
        f"cannot move alias {alias!r} to version {version}",
        lambda client: client.set_registered_model_alias(name, alias, version),
        write=True,
    )


def get_tag(settings: TrackingSettings, version: str, key: str) -> str | None:
    """A model-version tag, or None."""
    name = settings.registered_model
    found = _call(
        settings, f"cannot read version {version}", lambda client: client.get_model_version(name, version)
    )
    return dict(found.tags or {}).get(key)


def set_tag(settings: TrackingSettings, version: str, key: str, value: str) -> None:
    """Set a model-version tag."""
    name = settings.registered_model
    _call(
        settings,
        f"cannot tag version {version} with {key}",
        lambda client: client.set_model_version_tag(name, version, key, value),
        write=True,
    )


def delete_tag(settings: TrackingSettings, version: str, key: str) -> None:
    """Remove a model-version tag (used to undo a rollback whose manifest could not be written)."""
    name = settings.registered_model
    _call(
        settings,
        f"cannot remove tag {key} from version {version}",
        lambda client: client.delete_model_version_tag(name, version, key),
        write=True,
    )


def delete_alias(settings: TrackingSettings, alias: str) -> None:
    """Remove ``alias`` (used to undo a promote when there was no champion before)."""
    name = settings.registered_model
    _call(
        settings,
        f"cannot remove alias {alias!r}",
        lambda client: client.delete_registered_model_alias(name, alias),
        write=True,
    )
