"""The canary-analysis WorkflowTemplate's steps (``workflows/canary.py`` generates it), one function each.

- ``canary-analyse``: analyse the canary revision against the stable one; PROMOTE and ROLLBACK become the
  outputs ``verdict`` and ``reason`` (exit 0), HOLD exits 3 (the workflow retries it), errors exit 1.
- ``canary-apply``: on a checkout of the GitOps repository, ``promote`` or ``rollback`` (which also move
  the registry alias / tag the reason); outputs ``changed``, ``overlay`` (the new file) and ``version``.
- ``canary-push``: clone the base branch, commit the new overlay on ``rollout/<env>/<verdict>-<workflow>``
  and push it (``push`` false: commit only).

Outputs are files in ``output_dir``, one per Argo output parameter. The workflow passes every parameter as
a ``SENTIMENTOPS_*`` environment variable, so no value is ever parsed as shell or as a flag.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from components.common.settings import ComponentError
from serving.rollout import actions, analysis
from serving.rollout.settings import CanaryAnalysisSettings, CanaryApplySettings, CanaryPushSettings

GIT_AUTHOR = ("sentimentops canary-analysis", "canary-analysis@sentimentops.invalid")


def write_outputs(output_dir: str, values: dict[str, str]) -> None:
    """One file per output parameter (Argo reads them with ``valueFrom.path``)."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (folder / name).write_text(value, encoding="utf-8")


def analyse_revisions(settings: CanaryAnalysisSettings) -> analysis.Decision:
    """Analyse the canary revision against the stable one; PROMOTE/ROLLBACK are written as outputs."""
    if settings.canary_revision == settings.stable_revision:
        raise ComponentError(
            f"no canary rolled out: the latest revision {settings.canary_revision} is the rolled-out one"
        )
    decision = analysis.analyse(settings)
    write_outputs(settings.output_dir, {"decision.json": decision.to_json() + "\n"})
    if settings.decision_file:
        Path(settings.decision_file).write_text(decision.to_json() + "\n", encoding="utf-8")
    if decision.verdict is not analysis.Verdict.HOLD:
        reason = "; ".join(decision.reasons)
        write_outputs(settings.output_dir, {"verdict": decision.verdict.name.lower(), "reason": reason})
    return decision


def apply_verdict(settings: CanaryApplySettings) -> actions.RolloutResult:
    """``promote`` or ``rollback`` the overlay (and the registry); outputs what the push step needs."""
    if settings.verdict == "promote":
        result = actions.promote(settings)
    else:
        reason = f"canary analysis: {settings.reason}" if settings.reason else "canary analysis"
        result = actions.rollback(settings.model_copy(update={"reason": reason}))
    write_outputs(
        settings.output_dir,
        {
            "changed": "true" if result.changed else "false",
            "overlay": result.path.read_text(encoding="utf-8"),
            "version": result.after.model_version or "",
        },
    )
    return result


def _git(settings: CanaryPushSettings, *args: str, cwd: Path | None = None, timeout: float = 30) -> str:
    """Run git; a failure is one readable line (git's last message), never a traceback."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=True
        )
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ComponentError(f"git {args[0]} failed (exit {exc.returncode}): {last}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ComponentError(f"git {args[0]} timed out after {timeout:.0f}s") from exc
    return out.stdout


def _install_ssh_key(source: str, target: str) -> None:
    """Copy the mounted key to a 0600 file in a 0700 folder: ssh refuses a group-readable key."""
    path = Path(target)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(source, path)
    os.chmod(path, 0o600)


def push_change(settings: CanaryPushSettings) -> str:
    """Commit the new overlay on the rollout branch (and push it); returns the branch name."""
    if settings.ssh_key:
        _install_ssh_key(settings.ssh_key, settings.ssh_key_copy)
    branch = f"rollout/{settings.environment}/{settings.verdict}-{settings.workflow_name}"
    repo = Path(settings.clone_dir)
    timeout = settings.git_timeout_s
    clone = ["clone", "--quiet", "--depth", "1", "--branch", settings.git_base_branch]
    _git(settings, *clone, "--", settings.git_repo, str(repo), timeout=timeout)
    target = repo / settings.overlay / actions.OVERLAY_FILE
    if not target.is_file():
        raise ComponentError(f"{settings.overlay}/{actions.OVERLAY_FILE} is not in {settings.git_repo}")
    _git(settings, "config", "user.name", GIT_AUTHOR[0], cwd=repo)
    _git(settings, "config", "user.email", GIT_AUTHOR[1], cwd=repo)
    _git(settings, "checkout", "--quiet", "-b", branch, cwd=repo)
    target.write_text(settings.overlay_text.rstrip("\n") + "\n", encoding="utf-8")
    subject = (
        f"rollout({settings.environment}): {settings.verdict} canary (serving version {settings.version})"
    )
    body = [m for m in (settings.reason, f"Workflow: {settings.workflow_name}") if m]
    messages = [arg for text in body for arg in ("-m", text)]
    _git(settings, "commit", "--quiet", "-a", "-m", subject, *messages, cwd=repo)
    print(_git(settings, "show", "--stat", "HEAD", cwd=repo), end="")
    if settings.push:
        _git(settings, "push", "--quiet", "origin", branch, cwd=repo, timeout=timeout)
        print(f"pushed {branch} to {settings.git_repo}")
    else:
        print(f"push=false: {branch} committed in {repo}, not pushed")
    return branch
