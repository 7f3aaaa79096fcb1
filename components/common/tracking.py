"""MLflow helpers shared by the components: one run per step, lineage tags, registry look-ups."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from components.common.settings import REPO_ROOT, TrackingSettings

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
        yield run


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
