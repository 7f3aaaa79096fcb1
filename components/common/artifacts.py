"""Artifact plumbing: atomic writes, sha256 manifests, and local/remote (fsspec) directory transfer.

A model directory is complete only when its ``manifest.json`` exists: it is written last and lists the
sha256 of every file, so a half-written model is never mistaken for a finished one, and a tampered file
is refused at load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
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


def atomic_write_chunks(uri: str | Path, chunks: Iterable[bytes], fsync: bool = True) -> None:
    """Publish ``chunks`` as one file so that readers see either the old content or the new, never a torn
    one: local by temporary file + rename (``fsync`` first unless the caller trades durability for
    latency), remote on close (object stores publish whole objects)."""
    if is_remote(uri):
        import fsspec

        with fsspec.open(str(uri), "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(uri: str | Path, payload: bytes) -> None:
    """Write a file so that readers see either the old content or the new, never a torn one."""
    atomic_write_chunks(uri, (payload,))


def atomic_write_json(uri: str | Path, data: Any) -> None:
    atomic_write_bytes(uri, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}$")
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists a few dozen files; anything bigger is not ours


def check_digest_format(digest: str, what: str = "model digest") -> str:
    """``digest`` when it is 64 lowercase hex characters (a sha256), else ArtifactError."""
    if not isinstance(digest, str) or not DIGEST_PATTERN.match(digest):
        raise ArtifactError(
            f"{what} must be 64 lowercase hex characters (a sha256), got {str(digest)[:80]!r}"
        )
    return digest


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


@dataclass
class Manifest:
    """What a model directory holds: its flavour, files with sha256, and lineage."""

    flavor: str
    files: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """One sha256 over the flavour, the metadata and every file hash: the model's identity, recorded
        at registration. Nothing the loader reads from ``manifest.json`` is outside it."""
        lines = [f"flavor:{self.flavor}", f"metadata:{_canonical_json(self.metadata)}"]
        lines += [f"{name}:{sha}" for name, sha in sorted(self.files.items())]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "digest": self.digest}


def _walk_files(model_dir: Path) -> dict[str, Path]:
    """Every regular file under ``model_dir`` by POSIX relative path; symlinks and special files refused."""
    out: dict[str, Path] = {}
    for root, dirs, names in os.walk(model_dir, followlinks=False):
        base = Path(root)
        for name in dirs + names:
            path = base / name
            rel = path.relative_to(model_dir).as_posix()
            if path.is_symlink():
                raise ArtifactError(f"model directory {model_dir} holds a symlink: {rel}")
            if name in names and not path.is_file():
                raise ArtifactError(f"model directory {model_dir} holds a special file: {rel}")
            if name in names:
                out[rel] = path
    return out


def write_manifest(model_dir: Path, flavor: str, metadata: dict[str, Any]) -> Manifest:
    """Hash every file under ``model_dir`` and write the manifest last (marks the model complete)."""
    files = {
        rel: sha256_file(path) for rel, path in sorted(_walk_files(model_dir).items()) if rel != MANIFEST_NAME
    }
    # Round-trip the metadata through JSON so the digest is the one a reader recomputes from the file.
    metadata = json.loads(_canonical_json(metadata))
    manifest = Manifest(flavor=flavor, files=files, metadata=metadata)
    atomic_write_json(model_dir / MANIFEST_NAME, manifest.to_dict())
    return manifest


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_NAME
    if not path.is_file() or path.is_symlink():
        raise ArtifactError(f"{model_dir} is not a complete model directory (no {MANIFEST_NAME})")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(path.read_bytes())
        manifest = Manifest(flavor=data["flavor"], files=data["files"], metadata=data.get("metadata", {}))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path} is not a valid manifest: {exc}") from exc
    if (
        not isinstance(manifest.flavor, str)
        or not isinstance(manifest.files, dict)
        or not isinstance(manifest.metadata, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest.files.items())
    ):
        raise ArtifactError(f"{path} is not a valid manifest: wrong field types")
    return manifest


def verify_manifest(model_dir: Path, expected_digest: str | None = None) -> Manifest:
    """The integrity check that runs before anything in ``model_dir`` is loaded.

    - the files present are exactly the files the manifest lists (an unlisted file is refused: a
      loader may read files it was not told about), with no symlinks or special files;
    - every file's sha256 is the listed one;
    - with ``expected_digest`` (the registry's ``model_digest``, pinned in the deployment), the digest
      recomputed from the verified manifest must equal it: a manifest rewritten to match tampered files
      is refused, because the manifest alone is not trusted.
    """
    if expected_digest is not None:
        check_digest_format(expected_digest, "expected model digest")
    manifest = read_manifest(model_dir)
    present = _walk_files(model_dir)
    present.pop(MANIFEST_NAME, None)
    unlisted = sorted(set(present) - set(manifest.files))
    if unlisted:
        shown = ", ".join(unlisted[:5])
        raise ArtifactError(f"model directory {model_dir} holds files its manifest does not list: {shown}")
    for name, expected in manifest.files.items():
        if name not in present:
            raise ArtifactError(f"model file missing: {model_dir / name}")
        actual = sha256_file(present[name])
        if actual != expected:
            raise ArtifactError(
                f"sha256 mismatch for {model_dir / name}: expected {expected[:12]}…, got {actual[:12]}…"
            )
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
    # By relative path: an ensemble's members have manifest.json files of their own, uploaded before its own.
    files.sort(key=lambda p: p.relative_to(src).as_posix() == last)
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
