"""Prometheus metrics of the predictor. The names are a contract (docs/contracts.md): do not rename."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from components.common.labels import DEFAULT_MAX_METRIC_CLASSES, as_matrix, metric_label, predicted_ids
from components.common.models import LABELS

disable_created_metrics()  # no *_created series: less noise per scrape

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
PROB_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
CONFIDENCE_BUCKETS = (0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LENGTH_BUCKETS = (10, 25, 50, 100, 200, 400, 800, 1600, 3200)

REQUESTS = Counter(
    "sentiment_requests", "Prediction requests by endpoint and HTTP status", ["endpoint", "status_code"]
)
LATENCY = Histogram(
    "sentiment_request_latency_seconds", "Prediction request latency", ["endpoint"], buckets=LATENCY_BUCKETS
)
BATCH_SIZE = Histogram("sentiment_batch_size", "Texts per model call (micro-batch)", buckets=BATCH_BUCKETS)
PREDICTIONS = Counter("sentiment_predictions", "Predictions by label name", ["label"])
CONFIDENCE = Histogram("sentiment_prediction_confidence", "Max-class probability", buckets=CONFIDENCE_BUCKETS)
CLASS_CONFIDENCE = Histogram(
    "sentiment_class_confidence",
    "Max-class probability by predicted class name (bounded: see metric_label)",
    ["label"],
    buckets=CONFIDENCE_BUCKETS,
)
POSITIVE_PROB = Histogram(
    "sentiment_positive_probability", "Positive-class probability", buckets=PROB_BUCKETS
)
INPUT_LENGTH = Histogram("sentiment_input_length_chars", "Input text length", buckets=LENGTH_BUCKETS)
MODEL_INFO = Gauge(
    "sentiment_model_info",
    "The served model (value 1) and the precision it runs at (fp32, int8-dynamic, fp16, fp64; an ensemble"
    " joins its members' with +)",
    ["model_name", "model_version", "flavor", "digest", "precision"],
)
PAYLOAD_LOG_ERRORS = Counter(
    "sentiment_payload_log_errors", "Payload records lost: failed sink writes or buffer overflow"
)
PAYLOAD_LOG_OVERFLOW = Counter(
    "sentiment_payload_log_overflow",
    "Payload records dropped because the buffer was full (record or byte cap)",
)
PAYLOAD_LOG_BUFFER_BYTES = Gauge(
    "sentiment_payload_log_buffer_bytes", "Bytes of payload records buffered, not yet written"
)
PAYLOAD_LOG_RECORDS = Counter("sentiment_payload_log_records", "Payload records written to the sink")


def class_matrix(
    probs: np.ndarray | Sequence[float] | Sequence[Sequence[float]], names: Sequence[str] = LABELS
) -> tuple[tuple[str, ...], np.ndarray]:
    """Per-request outputs as (class names, probability matrix (n, k)); the one place where today's binary
    engine output (1-D positive-class probabilities) becomes the N-class shape."""
    proba = np.asarray(probs, dtype=float)
    if proba.ndim == 1:
        if tuple(names) != LABELS:
            raise ValueError(f"1-D probabilities are binary {LABELS}, not {tuple(names)}")
        proba = as_matrix(proba)
    if proba.ndim != 2 or proba.shape[1] != len(names):
        raise ValueError(f"probabilities of shape {proba.shape} do not match {len(names)} class names")
    return tuple(names), proba


def predicted_classes(names: tuple[str, ...], proba: np.ndarray) -> np.ndarray:
    """The predicted class id per row of an (n, len(names)) matrix, by the rule every component uses
    (``labels.predicted_ids``: two classes threshold P(class 1) at 0.5, a tie going to class 1; N classes
    take the argmax), so the served ``label``, the metrics, the payload log and the drift job agree."""
    if len(proba) == 0:
        return np.zeros(0, dtype=int)
    if proba.shape[1] != len(names):
        raise ValueError(f"{proba.shape[1]} class probabilities for {len(names)} classes")
    return predicted_ids(proba)


class _ClassSeries:
    """The pre-created metric children of one class set (so every class shows up with 0 from the start)."""

    def __init__(self, names: tuple[str, ...], max_classes: int) -> None:
        self.names = names
        labels = [metric_label(name, i, max_classes) for i, name in enumerate(names)]
        self.predictions = [PREDICTIONS.labels(label=label) for label in labels]
        self.confidence = [CLASS_CONFIDENCE.labels(label=label) for label in labels]


_series: dict[tuple[tuple[str, ...], int], _ClassSeries] = {}


def class_series(
    names: Sequence[str] = LABELS, max_classes: int = DEFAULT_MAX_METRIC_CLASSES
) -> _ClassSeries:
    """The (cached) metric children of a class set; call at load time to expose every class at 0."""
    key = (tuple(names), max_classes)
    if key not in _series:
        _series[key] = _ClassSeries(key[0], max_classes)
    return _series[key]


class_series()  # binary: "negative"/"positive" exist at 0 before the first request, as before


def observe_predictions(
    texts: Sequence[str],
    probs: np.ndarray | Sequence[float],
    names: Sequence[str] = LABELS,
    max_classes: int = DEFAULT_MAX_METRIC_CLASSES,
) -> None:
    """Record the distribution metrics of one request's predictions (``probs``: (n, k), or binary 1-D)."""
    names, proba = class_matrix(probs, names)
    series = class_series(names, max_classes)
    predicted = predicted_classes(names, proba).tolist()
    confidence = proba.max(axis=1).tolist() if len(proba) else []
    binary = names == LABELS
    for text, index, conf, row in zip(texts, predicted, confidence, proba[:, -1].tolist(), strict=True):
        series.predictions[index].inc()
        series.confidence[index].observe(conf)
        CONFIDENCE.observe(conf)
        if binary:  # the positive-probability histogram exists for binary sentiment only
            POSITIVE_PROB.observe(row)
        INPUT_LENGTH.observe(len(text))
