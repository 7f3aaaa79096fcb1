"""MLflow helpers shared by the components: one run per step, lineage tags, registry look-ups.

``step_cli`` is every component's command line: parse the settings, run the step inside its MLflow
run (``run_tracked_step``), finish, and turn an expected failure into one line and an exit code.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from components.common.settings import (
    REPO_ROOT,
    ComponentError,
    TrackingSettings,
    add_settings_arguments,
    run_cli,
    settings_from_args,
)

if TYPE_CHECKING:
    from components.common.results import TrainResult

# Network calls to a tracking server must never hang a pipeline step forever.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")


def git_commit() -> str:
    """The source revision: ``GIT_COMMIT`` (set by the image build / Argo) or the local checkout's HEAD."""
    if commit := os.environ.get("GIT_COMMIT"):
        return commit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def configure(settings: TrackingSettings) -> None:
    """Point MLflow at the configured server (creating the local SQLite folder when embedded)."""
    import mlflow

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(settings.experiment) is None:
        artifact_location = None
        if uri.startswith("sqlite:///"):
            artifact_location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
        try:
            mlflow.create_experiment(settings.experiment, artifact_location=artifact_location)
        except mlflow.exceptions.MlflowException:
            pass  # created concurrently by another step
    mlflow.set_experiment(settings.experiment)


@contextmanager
def step_run(settings: TrackingSettings, step: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """Start an MLflow run for one pipeline step, nested under the pipeline's parent run when given."""
    import mlflow

    configure(settings)
    run_tags = {"step": step, "git_commit": git_commit(), **(tags or {})}
    if settings.pipeline_id:
        run_tags["pipeline_id"] = settings.pipeline_id
    if settings.parent_run_id:
        run_tags["mlflow.parentRunId"] = settings.parent_run_id
    with mlflow.start_run(run_name=step, tags=run_tags) as run:
        try:
            yield run
        except BaseException as exc:
            # The run ends FAILED (mlflow's context manager); the tag says why, in the CLI's own words.
            mlflow.set_tag(ERROR_TAG, error_line(exc))
            raise


MODEL_ARTIFACT_PATH = "model"


def log_model_dir(model_dir: str, dataset_hash: str, dataset_uri: str) -> str:
    """Log a finished model directory (local or gs://) and its dataset version to the active run.

    Returns the run's artifact URI of the model: the ``source`` of the registered version.
    """
    import mlflow

    from components.common.artifacts import fetch_dir

    mlflow.set_tag("dataset_hash", dataset_hash)
    mlflow.log_artifacts(str(fetch_dir(model_dir)), MODEL_ARTIFACT_PATH)
    try:
        import pandas as pd

        dataset = mlflow.data.from_pandas(
            pd.DataFrame({"dataset_hash": [dataset_hash]}),
            source=dataset_uri,
            name="rotten_tomatoes",
            digest=dataset_hash.removeprefix("sha256:")[:36],
        )
        mlflow.log_input(dataset, context="training")
    except Exception:  # dataset lineage is best-effort metadata; the hash tag above is the record of truth
        pass
    return mlflow.get_artifact_uri(MODEL_ARTIFACT_PATH)


ERROR_TAG = "error"
_MAX_TAG_CHARS = 5000  # MLflow's tag value limit is 8000; a longer reason is cut, not refused


def error_line(exc: BaseException) -> str:
    """The one line a failed step reports: ``<prefix>: <reason>`` (what ``run_cli`` prints)."""
    if isinstance(exc, ComponentError):
        line = f"{exc.prefix}: {exc}"
    elif isinstance(exc, KeyboardInterrupt):
        line = "error: interrupted"
    else:
        first = str(exc).strip().splitlines()
        line = f"error: {type(exc).__name__}" + (f": {first[0]}" if first else "")
    return line[:_MAX_TAG_CHARS]


S = TypeVar("S", bound=TrackingSettings)
R = TypeVar("R")


def _no_tags(_settings: Any) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class TrackedStep(Generic[S, R]):
    """One component step: what it runs, what its MLflow run records, and how it finishes.

    ``work`` runs inside the run; ``record`` logs its result there (``None``: the step has no run, as
    register and batch-score, whose record is the registry and the output file). ``finish`` runs after
    the run closes, tracked or not: it writes the step's outputs, prints its summary, and raises a
    ``ComponentError`` for an outcome the caller must see as an exit code (a refused gate).
    """

    name: str  # the run name and its ``step`` tag
    settings_cls: type[S]
    work: Callable[[S], R]
    finish: Callable[[S, R], None]
    record: Callable[[S, R], None] | None = None
    params: Collection[str] = ()  # settings fields logged before ``work``: a failed run still shows them
    tags: Callable[[S], Mapping[str, str]] = _no_tags  # set when the run starts


def active_run_id() -> str | None:
    """The id of the MLflow run a step is running in, ``None`` when it is not tracked."""
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run else None


def run_tracked_step(step: TrackedStep[S, R], settings: S) -> R:
    """Run ``step.work`` in its own MLflow run (when it has one and ``settings.track``), logging its
    params first and its result last; a failure ends the run FAILED with the error tag, then propagates."""
    if step.record is None or not getattr(settings, "track", True):
        result = step.work(settings)
    else:
        import mlflow

        with step_run(settings, step.name, dict(step.tags(settings))):
            if step.params:
                mlflow.log_params(settings.model_dump(include=set(step.params)))
            result = step.work(settings)
            step.record(settings, result)
    step.finish(settings, result)
    return result


def step_cli(
    step: TrackedStep[Any, Any], description: str | None
) -> tuple[Callable[[], argparse.ArgumentParser], Callable[[Sequence[str] | None], None]]:
    """A component's command line as ``(build_parser, main)``: one ``--flag`` per setting (unset flags
    fall back to ``SENTIMENTOPS_*`` env vars, then defaults); ``main`` runs the tracked step and turns an
    expected failure into one line on stderr and the error's exit code."""

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=step.name, description=description, allow_abbrev=False)
        add_settings_arguments(parser, step.settings_cls)
        return parser

    def main(argv: Sequence[str] | None = None) -> None:
        run_cli(
            lambda: run_tracked_step(
                step, settings_from_args(step.settings_cls, build_parser().parse_args(argv))
            )
        )

    return build_parser, main


class _TrainingSettings(Protocol):
    validated_dir: str


def record_training(settings: _TrainingSettings, result: TrainResult) -> None:
    """Log a training step's result to its run: precision, validation metrics, timing, the model folder
    (whose run artifact URI becomes the result's ``model_artifact_uri``, the registered version's source)."""
    import mlflow

    mlflow.log_param("precision_used", result.precision)
    mlflow.log_metrics({f"val_{k}": v for k, v in result.validation_metrics.items()})
    mlflow.log_metrics(
        {"train_seconds": result.train_seconds, "train_samples_per_second": result.train_samples_per_second}
    )
    result.model_artifact_uri = log_model_dir(result.model_dir, result.dataset_hash, settings.validated_dir)


def training_step(
    name: str,
    settings_cls: type[S],
    train: Callable[..., TrainResult],
    params: Collection[str],
    flavor: str,
    summary: Callable[[TrainResult], str],
) -> TrackedStep[S, TrainResult]:
    """A training step: ``train(settings, run_id=...)`` in its run, its hyperparameters logged first, the
    result recorded (``record_training``) and written beside the model, then ``summary`` printed."""

    def finish(_settings: S, result: TrainResult) -> None:
        result.write()  # after the record: it carries the run's model artifact URI
        print(summary(result))

    return TrackedStep(
        name,
        settings_cls,
        work=lambda settings: train(settings, run_id=active_run_id()),
        record=record_training,
        finish=finish,
        params=params,
        tags=lambda _settings: {"flavor": flavor},
    )
