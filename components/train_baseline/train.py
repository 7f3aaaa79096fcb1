"""Fit the TF-IDF + LogisticRegression baseline on the validated dataset and save it with skops.

Memory stays bounded at any data size: by default the 1-2 grams are hashed into ``n_features`` columns
(no vocabulary is built), the matrix is sparse float32 from start to end, and the classifier's size does
not grow with the data. ``--vectorizer vocabulary`` keeps a fitted vocabulary bounded by ``max_features``
and ``min_df`` instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from components.common.artifacts import staging_dir
from components.common.data import read_summary, read_validated
from components.common.labels import validated_label_map
from components.common.metrics import classification_metrics
from components.common.models import save_tfidf
from components.common.results import TrainResult, model_dir_of
from components.common.settings import ComponentError, TrackingSettings
from components.common.tracking import git_commit


class BaselineSettings(TrackingSettings):
    """Hyperparameters and paths of the baseline."""

    validated_dir: str = Field("artifacts/validated", description="output folder of validate")
    output_dir: str = Field("artifacts/baseline", description="where the model directory is written")
    vectorizer: Literal["hashing", "vocabulary"] = Field(
        "hashing",
        description="hashing: no vocabulary, fixed memory; vocabulary: fitted, bounded by max_features",
    )
    n_features: int = Field(2**20, ge=2**10, description="hashing: number of hashed columns")
    ngram_max: int = 2
    min_df: int = Field(2, ge=1, description="vocabulary: drop n-grams seen in fewer documents")
    max_features: int = Field(500_000, ge=1, description="vocabulary: keep at most this many n-grams")
    sublinear_tf: bool = True
    c: float = Field(4.0, description="inverse regularisation strength of LogisticRegression")
    max_iter: int = 1000
    seed: int = 42
    class_weight: Literal["none", "balanced"] = Field(
        "none", description="balanced: weight each class inversely to its share of the train split"
    )
    track: bool = True


HYPERPARAMETERS = {
    "vectorizer",
    "n_features",
    "ngram_max",
    "min_df",
    "max_features",
    "sublinear_tf",
    "c",
    "max_iter",
    "seed",
    "class_weight",
}


def build_pipeline(settings: BaselineSettings) -> Any:
    """The unfitted scikit-learn pipeline: sparse float32 features, then LogisticRegression."""
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    ngrams = (1, settings.ngram_max)
    if settings.vectorizer == "hashing":
        features = [
            (
                "hashing",
                HashingVectorizer(
                    ngram_range=ngrams,
                    n_features=settings.n_features,
                    alternate_sign=False,
                    norm=None,
                    dtype=np.float32,
                ),
            ),
            ("tfidf", TfidfTransformer(sublinear_tf=settings.sublinear_tf)),
        ]
    else:
        features = [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=ngrams,
                    min_df=settings.min_df,
                    max_features=settings.max_features,
                    sublinear_tf=settings.sublinear_tf,
                    dtype=np.float32,
                ),
            )
        ]
    # One multinomial (softmax) model over the class ids 0..k-1; with two classes the same binary model as ever.
    classifier = LogisticRegression(
        C=settings.c,
        max_iter=settings.max_iter,
        random_state=settings.seed,
        class_weight=None if settings.class_weight == "none" else settings.class_weight,
    )
    return Pipeline([*features, ("clf", classifier)])


def fit_pipeline(pipeline: Any, texts: list[str], labels: Any) -> Any:
    """Fit the pipeline. With hashing, columns no training text hashed into get idf 0: an unseen n-gram then
    adds nothing (not even to the L2 norm), as with a fitted vocabulary, instead of diluting the seen ones."""
    import numpy as np

    if "hashing" not in pipeline.named_steps:
        return pipeline.fit(texts, labels)
    hashing, tfidf, clf = (pipeline.named_steps[name] for name in ("hashing", "tfidf", "clf"))
    counts = hashing.transform(texts)
    tfidf.fit(counts)
    seen = np.bincount(counts.indices, minlength=counts.shape[1]) > 0
    tfidf.idf_ = np.where(seen, tfidf.idf_, 0.0)
    weighted = tfidf.transform(counts)
    del counts  # the raw counts are not needed once weighted: peak memory is one matrix, not two
    clf.fit(weighted, labels)
    return pipeline


def train_baseline(settings: BaselineSettings, run_id: str | None = None) -> TrainResult:
    """Fit on the train split, score on validation, and publish the model directory atomically."""
    dataset_path = f"{settings.validated_dir.rstrip('/')}/dataset.parquet"
    frame = read_validated(dataset_path)
    summary = read_summary(settings.validated_dir)
    train = frame[frame["split"] == "train"]
    validation = frame[frame["split"] == "validation"]
    del frame
    label_map = validated_label_map(settings.validated_dir)
    pipeline = build_pipeline(settings)
    started = time.perf_counter()
    fit_pipeline(pipeline, train["text"].tolist(), train["label"].to_numpy())
    seconds = time.perf_counter() - started
    fitted = [int(c) for c in pipeline.named_steps["clf"].classes_]
    if fitted != list(range(label_map.num_classes)):  # a class missing from train would shift the columns
        raise ComponentError(
            f"the train split has class ids {fitted}, the label map declares {label_map.num_classes}"
            f" classes {list(label_map.names)}"
        )
    proba = pipeline.predict_proba(validation["text"].tolist())
    val_metrics = classification_metrics(
        validation["label"].tolist(), proba, class_names=label_map.names
    ).headline()
    metadata = {
        "labels": list(label_map.names),
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
