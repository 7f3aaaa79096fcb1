"""Publish a registered version's drift reference where the drift CronJob reads it.

The drift job compares a window of payload logs with the data the served version was trained on. It
finds that data at ``<drift_reference_root>/<version>/`` (``dataset.parquet``, the validated dataset,
and ``model.json``, the version's artifact URI and digest for the reference predictions), the layout
``monitoring.drift`` resolves from its ``{model_version}`` placeholder. Files are written so that
readers see all of a version's reference or none: ``model.json`` goes last.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.common.artifacts import atomic_write_bytes, atomic_write_json

REFERENCE_DATASET = "dataset.parquet"
REFERENCE_MODEL = "model.json"


@dataclass(frozen=True)
class PublishedReference:
    """Where a version's drift reference went."""

    uri: str
    version: str


def reference_uri(root: str, version: str) -> str:
    """The folder of one version's reference (what ``{model_version}`` expands to in the drift job)."""
    return f"{root.rstrip('/')}/{version}"


def publish_reference(
    validated_dir: str, root: str, version: str, model_uri: str, digest: str
) -> PublishedReference:
    """Copy the validated dataset and the model's URI and digest under ``<root>/<version>/``."""
    import fsspec

    source = f"{validated_dir.rstrip('/')}/{REFERENCE_DATASET}"
    with fsspec.open(source, "rb") as handle:
        payload = handle.read()
    target = reference_uri(root, version)
    atomic_write_bytes(f"{target}/{REFERENCE_DATASET}", payload)
    atomic_write_json(
        f"{target}/{REFERENCE_MODEL}", {"model_uri": model_uri, "digest": digest, "version": version}
    )
    return PublishedReference(target, version)
