"""Prometheus metrics of the predictor. The names are a contract (docs/contracts.md): do not rename."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

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
POSITIVE_PROB = Histogram(
    "sentiment_positive_probability", "Positive-class probability", buckets=PROB_BUCKETS
)
INPUT_LENGTH = Histogram("sentiment_input_length_chars", "Input text length", buckets=LENGTH_BUCKETS)
MODEL_INFO = Gauge(
    "sentiment_model_info",
    "The served model (value 1) and the precision it runs at (fp32, int8-dynamic, fp16, fp64)",
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

_PREDICTION_CHILDREN = {name: PREDICTIONS.labels(label=name) for name in LABELS}


def observe_predictions(texts: Sequence[str], probs: np.ndarray) -> None:
    """Record the distribution metrics of one request's predictions."""
    for text, prob in zip(texts, probs.tolist(), strict=True):
        _PREDICTION_CHILDREN[LABELS[int(prob >= 0.5)]].inc()
        CONFIDENCE.observe(max(prob, 1.0 - prob))
        POSITIVE_PROB.observe(prob)
        INPUT_LENGTH.observe(len(text))
