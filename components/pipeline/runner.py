"""Run ``workflows.spec.STEPS`` in dependency order, each as ``python -m <component>``, like the Argo pods do:
a step starts once the steps it depends on have finished, beside any other step that is ready."""

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
    seconds: float = 0.0  # wall time: steps whose inputs are ready run side by side, as in the Argo DAG


@dataclass
class _RunningStep:
    step: Step
    process: subprocess.Popen[bytes]
    started: float


def _start_step(step: Step, values: dict[str, str], env: dict[str, str], beside: list[str]) -> _RunningStep:
    command = [sys.executable, "-m", step.module, *step.argv(values)]
    alongside = f" (alongside {', '.join(beside)})" if beside else ""
    print(f"\n=== {step.name}{alongside}: {' '.join(command[1:])}", flush=True)
    return _RunningStep(step, subprocess.Popen(command, env=env), time.perf_counter())


def _wait_any(
    running: dict[str, _RunningStep], poll_seconds: float = 0.2
) -> tuple[_RunningStep, StepOutcome]:
    """Block until one running step exits; its outcome."""
    while True:
        for name, item in running.items():
            code = item.process.poll()
            if code is not None:
                del running[name]
                return item, StepOutcome(name, code, time.perf_counter() - item.started)
        time.sleep(poll_seconds)


def _stop_all(running: dict[str, _RunningStep], grace_seconds: float = 30.0) -> None:
    """Terminate the steps still running (a sibling failed): SIGTERM, then SIGKILL after ``grace_seconds``."""
    for item in running.values():
        item.process.terminate()
    for item in running.values():
        try:
            item.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            item.process.kill()
            item.process.wait()
    running.clear()


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
    values: dict[str, str],
    tracking: TrackingSettings,
    steps: tuple[Step, ...] = STEPS,
    max_parallel_steps: int = 2,
) -> PipelineResult:
    """Run every step, up to ``max_parallel_steps`` of those whose dependencies are done at a time (the Argo DAG
    runs train-baseline beside finetune too); stop at the first failure with the step's name and exit code, or
    at a hold (exit 3)."""
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
        started = time.perf_counter()
        pending = topological_order(steps)
        running: dict[str, _RunningStep] = {}
        done: set[str] = set()
        try:
            while pending or running:
                for step in [s for s in pending if set(s.depends) <= done]:
                    if len(running) >= max(1, max_parallel_steps):
                        break
                    running[step.name] = _start_step(step, values, env, list(running))
                    pending.remove(step)
                finished, outcome = _wait_any(running)
                step = finished.step
                result.steps.append(outcome)
                result.seconds = time.perf_counter() - started
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
                done.add(step.name)
        finally:
            _stop_all(running)  # a sibling of a failed, refused or held step never runs on unattended
        mlflow.set_tag("outcome", "succeeded")
    return result
