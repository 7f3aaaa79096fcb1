"""propose / promote / rollback: the overlay edit and the registry change, applied together or not at all.

How promote stays all-or-nothing (rollback is the same, with the ``rollback_reason`` tag in place of the
alias):

1. Everything is checked first: the overlay parses, a canary is rolled out, the canary's registry
   version exists and its ``source`` is the overlay's storageUri.
2. The new overlay text is written to a temporary file beside the overlay (same filesystem).
3. The registry changes (``champion`` moves to the canary's version). If that fails, the temporary file
   is deleted: nothing changed.
4. The temporary file is renamed over the overlay (``os.replace``: atomic). If that fails, the alias is
   moved back to the previous champion (or removed if there was none): nothing changed. Only if that
   undo fails too is the error message explicit that the registry moved and the file did not.
5. Both steps are idempotent, so re-running promote after any failure completes it: an alias already
   on the version is not moved again, and a steady overlay is not rewritten.

The commit and push that make the overlay change reach Argo CD are the caller's (the Argo workflow or a
person). Between this command and the merge, ``champion`` already names the new version; if the change
is abandoned, move the alias back by hand (docs/runbooks/canary.md).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from components.common.registry import CHALLENGER, CHAMPION
from components.common.settings import ComponentError
from serving.rollout import aliases, manifest
from serving.rollout.manifest import Edit, ManifestState
from serving.rollout.settings import ManifestSettings, ProposeSettings, RollbackSettings

OVERLAY_FILE = "inferenceservice.yaml"


@dataclass(frozen=True)
class RolloutResult:
    """What a command did: the overlay file, whether it changed, and what changed in the registry."""

    action: str
    path: Path
    changed: bool
    message: str
    before: ManifestState
    after: ManifestState
    registry_changes: tuple[str, ...] = field(default_factory=tuple)
    diff: str = ""


def overlay_file(settings: ManifestSettings) -> Path:
    """The InferenceService patch of the configured overlay."""
    path = Path(settings.overlay) / OVERLAY_FILE
    if not path.is_file():
        raise ComponentError(f"overlay file {path} does not exist")
    return path


def _stage(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` (same mode), flushed to disk."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def _result(action: str, path: Path, text: str, edit: Edit, changes: list[str]) -> RolloutResult:
    diff = "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True), edit.text.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )
    return RolloutResult(
        action, path, edit.changed, edit.message, edit.before, edit.after, tuple(changes), diff
    )


def propose(settings: ProposeSettings) -> RolloutResult:
    """Roll the registry's ``challenger`` out as the canary (an overlay edit only)."""
    path = overlay_file(settings)
    text = path.read_text(encoding="utf-8")
    manifest.read_state(text)  # a broken overlay is reported before the registry is asked
    ref = aliases.resolve_alias(settings, CHALLENGER, settings.scheme_list())
    assert ref.digest is not None  # resolve_alias refuses a version without one
    edit = manifest.with_canary(
        text, ref.version, ref.storage_uri, settings.canary_traffic_percent, ref.digest
    )
    if edit.changed:
        os.replace(_stage(path, edit.text), path)
    return _result("propose", path, text, edit, [])


def _canary_version(settings: ManifestSettings, state: ManifestState) -> str:
    """The canary's registry version, checked against the overlay's storageUri and pinned digest."""
    if state.model_version is None:
        raise ComponentError(f"overlay has no {manifest.MODEL_VERSION} annotation")
    ref = aliases.get_version(settings, state.model_version)
    if ref.storage_uri != state.storage_uri:
        raise ComponentError(
            f"overlay storageUri {state.storage_uri} is not the source of version {ref.version} "
            f"({ref.storage_uri}): fix the overlay by hand (docs/runbooks/canary.md)"
        )
    if not ref.digest or ref.digest != state.model_digest:
        raise ComponentError(
            f"overlay pins digest {state.model_digest} but version {ref.version} is registered with "
            f"{ref.digest}: fix the overlay by hand (docs/runbooks/canary.md)"
        )
    return ref.version


def promote(settings: ManifestSettings) -> RolloutResult:
    """The canary takes all traffic and becomes ``champion`` (both or neither; see the module doc)."""
    path = overlay_file(settings)
    text = path.read_text(encoding="utf-8")
    edit = manifest.promoted(text)
    if not edit.changed:
        return _result("promote", path, text, edit, [])
    version = _canary_version(settings, edit.before)
    previous = aliases.alias_version(settings, CHAMPION)
    tmp = _stage(path, edit.text)
    changes: list[str] = []
    try:
        if previous != version:
            aliases.set_alias(settings, CHAMPION, version)
            changes.append(f"alias {CHAMPION}: version {previous} -> {version}")
    except BaseException:
        _discard(tmp)
        raise
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        if not changes:
            raise ComponentError(f"cannot write {path}: {exc}") from exc
        try:
            if previous is None:
                aliases.delete_alias(settings, CHAMPION)
            else:
                aliases.set_alias(settings, CHAMPION, previous)
        except aliases.RegistryError as undo:
            raise ComponentError(
                f"cannot write {path} ({exc}) and cannot move {CHAMPION} back to {previous} ({undo}): "
                "the registry is promoted, the overlay is not; run promote again"
            ) from exc
        raise ComponentError(f"cannot write {path}: {exc}; {CHAMPION} moved back to {previous}") from exc
    return _result("promote", path, text, edit, changes)


def rollback(settings: RollbackSettings) -> RolloutResult:
    """The stable model takes all traffic again; the canary's version gets a ``rollback_reason`` tag."""
    path = overlay_file(settings)
    text = path.read_text(encoding="utf-8")
    edit = manifest.rolled_back(text)
    if not edit.changed:
        return _result("rollback", path, text, edit, [])
    version = _canary_version(settings, edit.before)
    if aliases.alias_version(settings, CHAMPION) == version:
        raise ComponentError(
            f"{CHAMPION} already points at the canary's version {version} (a promote was half-applied): "
            f"run promote to finish it, or move {CHAMPION} back first"
        )
    key = aliases.ROLLBACK_REASON_TAG
    previous = aliases.get_tag(settings, version, key)
    tmp = _stage(path, edit.text)
    try:
        aliases.set_tag(settings, version, key, settings.reason)
    except BaseException:
        _discard(tmp)
        raise
    try:
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        with contextlib.suppress(aliases.RegistryError):
            if previous is None:
                aliases.delete_tag(settings, version, key)
            else:
                aliases.set_tag(settings, version, key, previous)
        raise ComponentError(f"cannot write {path}: {exc}") from exc
    return _result("rollback", path, text, edit, [f"version {version}: tag {key}={settings.reason!r}"])
