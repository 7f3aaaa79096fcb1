"""Which reference a drift run compares with: the data the served version was trained on.

``reference_uri`` may name one folder for every version, or hold ``{model_version}``: then it is the
folder ``register --drift-reference-root`` publishes per registered version
(``components/register/reference.py``: ``dataset.parquet`` and ``model.json``), expanded with the version
that served the window. ``model.json`` also supplies the model for the reference predictions, and the
registry digest it must hash to, when ``model_uri`` is not set.
"""

from __future__ import annotations

import json

from components.common.settings import ComponentError
from monitoring.drift.settings import DriftSettings

VERSION_PLACEHOLDER = "{model_version}"


def resolve_reference(settings: DriftSettings, version: str | None) -> DriftSettings:
    """``settings`` with the reference (and, when unset, the model) of ``version`` filled in."""
    if VERSION_PLACEHOLDER not in settings.reference_uri:
        return settings
    if version is None:
        raise ComponentError(
            f"reference {settings.reference_uri} needs a model version, and the window has none"
        )
    uri = settings.reference_uri.replace(VERSION_PLACEHOLDER, version)
    update: dict[str, str] = {"reference_uri": uri}
    if settings.model_uri is None:
        import fsspec

        try:
            with fsspec.open(f"{uri.rstrip('/')}/model.json", "r") as handle:
                published = json.load(handle)
            update["model_uri"] = str(published["model_uri"])
            if settings.model_digest is None:
                update["model_digest"] = str(published["digest"])
        except (OSError, KeyError, ValueError) as exc:
            raise ComponentError(f"no drift reference for model version {version!r} at {uri}: {exc}") from exc
    return settings.model_copy(update=update)
