"""propose / promote / rollback: the overlay edit and the registry change, applied together or not at all.

How promote stays all-or-nothing (rollback is the same, with the ``rollback_reason`` tag in place of the
alias): everything is checked first (the overlay parses, a canary is rolled out, the canary's registry
version exists and its ``source`` is the overlay's storageUri); then the changes run as one
``apply_changes`` list, each change with its undo:

1. stage: the new overlay text goes to a temporary file beside the overlay (same filesystem);
   undo: delete it.
2. registry: ``champion`` moves to the canary's version; undo: move it back to the previous champion
   (or remove it if there was none).
3. overlay: the temporary file is renamed over the overlay (``os.replace``: atomic); undo: the old text
   is written back the same way.

When a change fails, the changes already applied are undone in reverse order and the error says what failed
and what was undone: nothing changed. Only if an undo fails too does the message name what stays applied.
Every change is idempotent, so re-running promote after any failure completes it: an alias already on the
version is not moved again, and a steady overlay is not rewritten.

The commit and push that make the overlay change reach Argo CD are the caller's (the Argo workflow or a
person). Between this command and the merge, ``champion`` already names the new version; if the change
is abandoned, move the alias back by hand (docs/runbooks/canary.md).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import tempfile
from collections.abc import Callable, Sequence
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


@dataclass(frozen=True)
class Change:
    """One change of a rollout and how to take it back."""

    what: str  # names the change in an error: "cannot <what>: <reason>"
    do: Callable[[], object]
    undo: Callable[[], object]
    undone: str  # what the undo restored, for the error message


class PartiallyApplied(ComponentError):
    """A change failed and an undo failed too: the message names what stays applied."""


def apply_changes(changes: Sequence[Change], action: str) -> None:
    """Apply ``changes`` in order; when one fails, undo the applied ones in reverse and raise one clear error.

    A ``ComponentError`` says what failed and what was undone (nothing is left half-applied); if an undo
    fails too, ``PartiallyApplied`` names what stays applied and tells to run ``action`` again (every
    rollout change is idempotent). An interrupt (Ctrl-C) is undone the same way and re-raised as it is.
    """
    applied: list[Change] = []
    for change in changes:
        try:
            change.do()
        except BaseException as exc:
            undone, stuck = _undo(applied)
            if not isinstance(exc, Exception):
                raise
            # Our own errors already say what failed ("cannot move alias ..."); others get the change's name.
            failed = str(exc) if isinstance(exc, ComponentError) else f"cannot {change.what}: {_line(exc)}"
            if stuck:
                raise PartiallyApplied(
                    f"{failed}; and cannot undo: {'; '.join(stuck)}: run {action} again to finish it"
                ) from exc
            back = f"; {', '.join(undone)}" if undone else ""
            raise ComponentError(f"{failed}{back}") from exc
        applied.append(change)


def _undo(applied: list[Change]) -> tuple[list[str], list[str]]:
    """Undo ``applied`` newest first: (what was restored, what could not be, with why)."""
    undone: list[str] = []
    stuck: list[str] = []
    for change in reversed(applied):
        try:
            change.undo()
            if change.undone:
                undone.append(change.undone)
        except Exception as exc:
            stuck.append(f"{change.what} stays applied ({_line(exc)})")
    return undone, stuck


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def overlay_changes(path: Path, old: str, new: str) -> tuple[Change, Change]:
    """The two changes of an atomic overlay write: stage ``new`` beside ``path``, then rename it over."""
    staged: list[Path] = []  # the temporary file, once staged

    def stage() -> None:
        staged.append(_stage(path, new))

    def discard() -> None:
        for tmp in staged:  # after a failed rename it is still there; after a good one it is gone
            _discard(tmp)

    def restore() -> None:
        os.replace(_stage(path, old), path)

    return (
        Change(f"stage {path}", stage, discard, ""),
        Change(f"write {path}", lambda: os.replace(staged[0], path), restore, f"{path} restored"),
    )


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
        text,
        ref.version,
        ref.storage_uri,
        settings.canary_traffic_percent,
        ref.digest,
        ref.int8_accuracy_loss,
    )
    if edit.changed:
        apply_changes(overlay_changes(path, text, edit.text), "propose")
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
    stage, write = overlay_changes(path, text, edit.text)
    registry_changes: list[str] = []
    changes = [stage]
    if previous != version:
        registry_changes.append(f"alias {CHAMPION}: version {previous} -> {version}")
        changes.append(
            Change(
                f"move {CHAMPION} to version {version}",
                lambda: aliases.set_alias(settings, CHAMPION, version),
                lambda: _restore_alias(settings, CHAMPION, previous),
                f"{CHAMPION} moved back to {previous}",
            )
        )
    apply_changes([*changes, write], "promote")
    return _result("promote", path, text, edit, registry_changes)


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
    stage, write = overlay_changes(path, text, edit.text)
    tag = Change(
        f"tag version {version} with {key}",
        lambda: aliases.set_tag(settings, version, key, settings.reason),
        lambda: _restore_tag(settings, version, key, previous),
        f"tag {key} of version {version} restored",
    )
    apply_changes([stage, tag, write], "rollback")
    return _result("rollback", path, text, edit, [f"version {version}: tag {key}={settings.reason!r}"])


def _restore_alias(settings: ManifestSettings, alias: str, version: str | None) -> None:
    """Put ``alias`` back on ``version`` (remove it when there was none)."""
    if version is None:
        aliases.delete_alias(settings, alias)
    else:
        aliases.set_alias(settings, alias, version)


def _restore_tag(settings: ManifestSettings, version: str, key: str, value: str | None) -> None:
    """Put a version tag back to ``value`` (remove it when there was none)."""
    if value is None:
        aliases.delete_tag(settings, version, key)
    else:
        aliases.set_tag(settings, version, key, value)
