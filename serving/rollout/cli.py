"""``python -m serving.rollout {propose,analyse,promote,rollback,canary-*}``: argument parsing and printing.

Exit codes:
  propose / promote / rollback: 0 done (or nothing to do: re-running is a no-op), 1 error (nothing written).
  analyse: 0 PROMOTE, 2 ROLLBACK, 3 HOLD (too few requests or no data yet: analyse again later), 1 error
  (Prometheus unreachable or failing, no series for a selector, bad settings).
  canary-analyse / canary-apply / canary-push (the canary-analysis workflow's steps, ``workflow_steps``):
  0 done (canary-analyse: PROMOTE or ROLLBACK, written as outputs), 3 HOLD (canary-analyse), 1 error.
Any other code is a crash. Errors are one line on stderr: ``error: <reason>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.common.settings import add_settings_arguments, run_cli, settings_from_args
from serving.rollout import actions, analysis, workflow_steps
from serving.rollout.settings import (
    AnalysisSettings,
    CanaryAnalysisSettings,
    CanaryApplySettings,
    CanaryPushSettings,
    ManifestSettings,
    ProposeSettings,
    RollbackSettings,
)

COMMANDS: dict[str, tuple[type, str]] = {
    "propose": (ProposeSettings, "roll the registry's challenger out as a canary (overlay edit)"),
    "analyse": (AnalysisSettings, "compare canary and stable in Prometheus: promote, hold or rollback"),
    "promote": (ManifestSettings, "canary to 100%% and registry alias champion to its version"),
    "rollback": (RollbackSettings, "back to the stable model; reason tagged on the canary's version"),
    "canary-analyse": (CanaryAnalysisSettings, "workflow step: analyse two revisions, verdict as outputs"),
    "canary-apply": (CanaryApplySettings, "workflow step: promote or rollback, the new overlay as outputs"),
    "canary-push": (CanaryPushSettings, "workflow step: commit the new overlay on a branch and push it"),
}


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per action, one flag per settings field."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.rollout",
        description="GitOps canary rollout of the sentiment predictor (docs/runbooks/canary.md).",
        epilog="exit codes: 0 done / PROMOTE, 1 error, 2 ROLLBACK, 3 HOLD (analyse)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (settings_cls, help_text) in COMMANDS.items():
        add_settings_arguments(sub.add_parser(name, help=help_text, description=help_text), settings_cls)
    return parser


def _print_result(result: actions.RolloutResult) -> None:
    print(f"{result.action}: {result.message}")
    for change in result.registry_changes:
        print(f"registry: {change}")
    if result.changed:
        print(f"wrote {result.path}")
        print(result.diff, end="")
    else:
        print(f"{result.path} unchanged")


def _main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings_cls, _ = COMMANDS[args.command]
    settings = settings_from_args(settings_cls, args)
    if args.command == "analyse":
        decision = analysis.analyse(settings)
        print(analysis.render(decision))
        if settings.decision_file:
            Path(settings.decision_file).write_text(decision.to_json() + "\n", encoding="utf-8")
        sys.exit(decision.exit_code)
    if args.command == "canary-analyse":
        decision = workflow_steps.analyse_revisions(settings)
        print(analysis.render(decision))
        # A verdict ends the step with 0 (its outputs carry it); HOLD stays 3, which the workflow retries.
        sys.exit(decision.exit_code if decision.verdict is analysis.Verdict.HOLD else 0)
    if args.command == "canary-push":
        workflow_steps.push_change(settings)
        return
    if args.command == "canary-apply":
        _print_result(workflow_steps.apply_verdict(settings))
        return
    run = {"propose": actions.propose, "promote": actions.promote, "rollback": actions.rollback}
    _print_result(run[args.command](settings))


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected failures become ``error: <reason>`` and exit code 1."""
    run_cli(lambda: _main(argv))
