"""Fit the TF-IDF + LogisticRegression baseline on the validated dataset and save it with skops."""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field

from components.common import data as datalib
from components.common.artifacts import staging_dir
from components.common.metrics import classification_metrics
from components.common.models import save_tfidf
from components.common.results import TrainResult, model_dir_of
from components.common.settings import TrackingSettings
from components.common.tracking import git_commit


class BaselineSettings(TrackingSettings):
    """Hyperparameters and paths of the baseline."""

    validated_dir: str = Field("artifacts/validated", description="output folder of validate")
    output_dir: str = Field("artifacts/baseline", description="where the model directory is written")
    ngram_max: int = 2
    min_df: int = 1
    max_features: int | None = None
    sublinear_tf: bool = True
    c: float = Field(4.0, description="inverse regularisation strength of LogisticRegression")
    max_iter: int = 2000
    seed: int = 42
    track: bool = True


HYPERPARAMETERS = {"ngram_max", "min_df", "max_features", "sublinear_tf", "c", "max_iter", "seed"}


def train_baseline(settings: BaselineSettings, run_id: str | None = None) -> TrainResult:
    """Fit on the train split, score on validation, and publish the model directory atomically."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    dataset_path = f"{settings.validated_dir.rstrip('/')}/dataset.parquet"
    frame = datalib.read_validated(dataset_path)
    summary = datalib.summarise(frame)
    train = frame[frame["split"] == "train"]
    validation = frame[frame["split"] == "validation"]
    pipeline = Pipeline(
        [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=(1, settings.ngram_max),
                    min_df=settings.min_df,
                    max_features=settings.max_features,
                    sublinear_tf=settings.sublinear_tf,
                ),
            ),
            ("clf", LogisticRegression(C=settings.c, max_iter=settings.max_iter, random_state=settings.seed)),
        ]
    )
    started = time.perf_counter()
    pipeline.fit(train["text"].tolist(), train["label"].to_numpy())
    seconds = time.perf_counter() - started
    proba = pipeline.predict_proba(validation["text"].tolist())[:, 1]
    val_metrics = classification_metrics(validation["label"].tolist(), proba).headline()
    metadata = {
        "dataset_hash": summary.dataset_hash,
        "git_commit": git_commit(),
        "run_id": run_id,
        "params": settings.model_dump(include=HYPERPARAMETERS),
        "validation_metrics": val_metrics,
    }
    with staging_dir(model_dir_of(settings.output_dir)) as tmp:
        save_tfidf(pipeline, Path(tmp), metadata)
    return TrainResult(
        output_dir=settings.output_dir,
        flavor="tfidf",
        dataset_hash=summary.dataset_hash,
        validation_metrics=val_metrics,
        train_seconds=seconds,
        train_samples_per_second=len(train) / seconds if seconds else 0.0,
        run_id=run_id,
    )
