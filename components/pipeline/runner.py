"""Run ``workflows.spec.STEPS`` in dependency order, each as ``python -m <component>``, like the Argo pods do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from components.common.settings import (
    ENV_PREFIX,
    REPO_ROOT,
    ComponentError,
    GateFailed,
    GateHeld,
    TrackingSettings,
)
from components.common.tracking import git_commit, step_run
from workflows.spec import STEPS, Step, topological_order


@dataclass
class StepOutcome:
    name: str
    exit_code: int
    seconds: float


@dataclass
class PipelineResult:
    pipeline_id: str
    parent_run_id: str | None
    steps: list[StepOutcome] = field(default_factory=list)
    held_at: str | None = None  # a gate that could not decide (exit 3): the run ends there, nothing promoted

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def _run_step(step: Step, values: dict[str, str], env: dict[str, str]) -> StepOutcome:
    command = [sys.executable, "-m", step.module, *step.argv(values)]
    print(f"\n=== {step.name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, check=False)
    return StepOutcome(step.name, proc.returncode, time.perf_counter() - started)


SMOKE_SUFFIX = "-smoke"


def is_smoke(values: dict[str, str]) -> bool:
    return str(values.get("smoke", "false")).strip().lower() in {"1", "true", "yes"}


def smoke_tracking(tracking: TrackingSettings) -> TrackingSettings:
    """Where a smoke run is tracked: its own experiment and registered model, never the real ones; with the
    embedded default store, its own SQLite store too (``mlruns/smoke/``)."""
    default_uri = TrackingSettings.model_fields["tracking_uri"].default
    uri = tracking.tracking_uri
    if uri == default_uri:
        uri = f"sqlite:///{REPO_ROOT / 'mlruns' / 'smoke' / 'mlflow.db'}"

    def suffixed(name: str) -> str:
        return name if name.endswith(SMOKE_SUFFIX) else name + SMOKE_SUFFIX

    return tracking.model_copy(
        update={
            "tracking_uri": uri,
            "experiment": suffixed(tracking.experiment),
            "registered_model": suffixed(tracking.registered_model),
        }
    )


def task_tracking(values: dict[str, str], tracking: TrackingSettings) -> TrackingSettings:
    """Tracking for this run: the task's registry name when given ('' = SENTIMENTOPS_REGISTERED_MODEL), then
    the smoke run's own experiment and model."""
    if values.get("registered_model"):
        tracking = tracking.model_copy(update={"registered_model": values["registered_model"]})
    return smoke_tracking(tracking) if is_smoke(values) else tracking


def run_pipeline(
    values: dict[str, str], tracking: TrackingSettings, steps: tuple[Step, ...] = STEPS
) -> PipelineResult:
    """Run every step; stop at the first failure with the step's name and exit code, or at a hold (exit 3)."""
    if not values.get("dataset_uri"):
        raise ComponentError("dataset_uri is required")
    tracking = task_tracking(values, tracking)
    pipeline_id = tracking.pipeline_id or f"local-{uuid.uuid4().hex[:8]}"
    Path(values["artifacts_root"]).mkdir(parents=True, exist_ok=True)
    with step_run(tracking, "pipeline", {"pipeline_id": pipeline_id}) as parent:
        import mlflow

        mlflow.log_params(values)
        env = {
            **os.environ,
            f"{ENV_PREFIX}TRACKING_URI": tracking.tracking_uri,
            f"{ENV_PREFIX}EXPERIMENT": tracking.experiment,
            f"{ENV_PREFIX}REGISTERED_MODEL": tracking.registered_model,
            f"{ENV_PREFIX}PARENT_RUN_ID": parent.info.run_id,
            f"{ENV_PREFIX}PIPELINE_ID": pipeline_id,
            "GIT_COMMIT": values.get("git_revision")
            if values.get("git_revision") not in (None, "", "unknown")
            else git_commit(),
        }
        result = PipelineResult(pipeline_id, parent.info.run_id)
        for step in topological_order(steps):
            outcome = _run_step(step, values, env)
            result.steps.append(outcome)
            mlflow.log_metric(f"step_seconds_{step.name.replace('-', '_')}", outcome.seconds)
            if outcome.exit_code == GateHeld.exit_code:
                mlflow.set_tag("outcome", f"held at {step.name}")
                result.held_at = step.name
                return result
            if outcome.exit_code in step.gate_exit_codes:
                mlflow.set_tag("outcome", f"gate refused at {step.name}")
                raise GateFailed(
                    f"pipeline stopped: the {step.name} gate refused (exit {outcome.exit_code}); see its message above"
                )
            if outcome.exit_code != 0:
                mlflow.set_tag("outcome", f"failed at {step.name}")
                raise ComponentError(
                    f"pipeline stopped: step {step.name} failed with exit code {outcome.exit_code}"
                )
        mlflow.set_tag("outcome", "succeeded")
    return result
