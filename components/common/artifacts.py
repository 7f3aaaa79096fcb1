"""Artifact plumbing: atomic writes, sha256 manifests, and local/remote (fsspec) directory transfer.

A model directory is complete only when its ``manifest.json`` exists: it is written last and lists the
sha256 of every file, so a half-written model is never mistaken for a finished one, and a tampered file
is refused at load.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.common.settings import ComponentError

MANIFEST_NAME = "manifest.json"


class ArtifactError(ComponentError):
    """An artifact is missing, incomplete or fails its integrity check."""


def is_remote(uri: str | Path) -> bool:
    """True for fsspec URIs such as ``gs://``; local paths and ``file://`` are not remote."""
    text = str(uri)
    return "://" in text and not text.startswith("file://")


def local_path(uri: str | Path) -> Path:
    return Path(str(uri).removeprefix("file://"))


def atomic_write_bytes(uri: str | Path, payload: bytes) -> None:
    """Write a file so that readers see either the old content or the new, never a torn one."""
    if is_remote(uri):
        import fsspec

        with fsspec.open(str(uri), "wb") as handle:  # object stores publish on close
            handle.write(payload)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(uri: str | Path, data: Any) -> None:
    atomic_write_bytes(uri, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Manifest:
    """What a model directory holds: its flavour, files with sha256, and lineage."""

    flavor: str
    files: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """One sha256 over all file hashes: the model's identity, recorded at registration."""
        joined = "\n".join(f"{name}:{sha}" for name, sha in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "digest": self.digest}


def write_manifest(model_dir: Path, flavor: str, metadata: dict[str, Any]) -> Manifest:
    """Hash every file under ``model_dir`` and write the manifest last (marks the model complete)."""
    files = {
        str(p.relative_to(model_dir)): sha256_file(p)
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    manifest = Manifest(flavor=flavor, files=files, metadata=metadata)
    atomic_write_json(model_dir / MANIFEST_NAME, manifest.to_dict())
    return manifest


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        raise ArtifactError(f"{model_dir} is not a complete model directory (no {MANIFEST_NAME})")
    try:
        data = json.loads(path.read_text())
        return Manifest(flavor=data["flavor"], files=data["files"], metadata=data.get("metadata", {}))
    except (json.JSONDecodeError, KeyError) as exc:
        raise ArtifactError(f"{path} is not a valid manifest: {exc}") from exc


def verify_manifest(model_dir: Path, expected_digest: str | None = None) -> Manifest:
    """Check every listed file's sha256 (and optionally the manifest digest) before anything is loaded."""
    manifest = read_manifest(model_dir)
    for name, expected in manifest.files.items():
        path = model_dir / name
        if not path.is_file():
            raise ArtifactError(f"model file missing: {path}")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(f"sha256 mismatch for {path}: expected {expected[:12]}…, got {actual[:12]}…")
    if expected_digest is not None and manifest.digest != expected_digest:
        raise ArtifactError(
            f"model digest {manifest.digest[:12]}… does not match the registered {expected_digest[:12]}…"
        )
    return manifest


@contextmanager
def staging_dir(final_uri: str | Path) -> Iterator[Path]:
    """Build a directory in a temporary place, then publish it to ``final_uri`` only on success."""
    if is_remote(final_uri):
        with tempfile.TemporaryDirectory(prefix="sentimentops-") as tmp:
            yield Path(tmp)
            upload_dir(Path(tmp), str(final_uri))
        return
    final = local_path(final_uri)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.staging-"))
    try:
        yield tmp
        if final.exists():
            backup = final.with_name(f".{final.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            final.rename(backup)
            tmp.rename(final)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def upload_dir(src: Path, dest_uri: str, last: str = MANIFEST_NAME) -> None:
    """Copy a local directory to an fsspec URI; ``last`` (the completion marker) goes last, so readers never
    see a partial directory as finished."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(dest_uri)
    files = sorted(p for p in src.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == last)
    for path in files:
        fs.put_file(str(path), f"{root.rstrip('/')}/{path.relative_to(src).as_posix()}")


def fetch_dir(uri: str | Path, cache_root: Path | None = None) -> Path:
    """Return a local directory for ``uri``: local paths as they are, remote ones downloaded into a cache."""
    if not is_remote(uri):
        path = local_path(uri)
        if not path.is_dir():
            raise ArtifactError(f"artifact directory not found: {path}")
        return path
    import fsspec

    fs, root = fsspec.core.url_to_fs(str(uri))
    target = (cache_root or Path(tempfile.mkdtemp(prefix="sentimentops-fetch-"))) / hashlib.sha256(
        str(uri).encode()
    ).hexdigest()[:16]
    try:
        fs.get(root.rstrip("/") + "/", str(target), recursive=True)
    except FileNotFoundError as exc:
        raise ArtifactError(f"artifact not found: {uri}") from exc
    return target
