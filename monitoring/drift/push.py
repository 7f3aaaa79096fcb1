"""Push the drift result to a Prometheus Pushgateway (job ``sentiment_drift``, names in docs/contracts.md).

The push replaces the whole group (``PUT``), so features that were not tested in this run disappear
instead of lingering. A failed push never raises: it is returned for the caller to report.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from components.common.labels import DEFAULT_MAX_METRIC_CLASSES, OTHER_LABEL, metric_label

if TYPE_CHECKING:
    from monitoring.drift.job import DriftResult

JOB = "sentiment_drift"


def _class_mix_gauges(result: DriftResult, registry: CollectorRegistry, max_classes: int) -> None:
    """Class-mix score and verdict, the share of each class per window and each class' confidence drift,
    class names bounded like serving's (the first ``max_classes`` by id by name, the rest ``other``)."""
    mix = result.class_mix
    Gauge(
        "sentiment_drift_class_mix_score",
        "predicted-class distribution drift score (PSI or Jensen-Shannon, the cat_method)",
        registry=registry,
    ).set(mix["score"])
    Gauge("sentiment_drift_class_mix_drifted", "1 if the predicted-class mix drifted", registry=registry).set(
        1 if mix["drifted"] else 0
    )
    label_of = {name: metric_label(name, i, max_classes) for i, name in enumerate(mix["classes"])}
    share = Gauge(
        "sentiment_drift_class_share",
        "share of predictions per class name in the reference or the current window",
        ["label", "window"],
        registry=registry,
    )
    for window in ("reference", "current"):
        totals: dict[str, float] = {}
        for name, value in mix[f"{window}_shares"].items():
            totals[label_of[name]] = totals.get(label_of[name], 0.0) + value
        for label, value in totals.items():
            share.labels(label=label, window=window).set(value)
    score = Gauge(
        "sentiment_drift_class_confidence_score",
        "per predicted class: Wasserstein distance of the confidence between the windows",
        ["label"],
        registry=registry,
    )
    for name, drift in result.class_confidence.items():
        if drift["score"] is not None and label_of.get(name, OTHER_LABEL) != OTHER_LABEL:
            score.labels(label=name).set(drift["score"])


def build_registry(result: DriftResult, now: float | None = None) -> CollectorRegistry:
    """The gauges of one run (contract names, plus row counts and per-feature verdicts)."""
    registry = CollectorRegistry()
    Gauge(
        "sentiment_drift_detected", "1 if dataset drift was detected in the last run", registry=registry
    ).set(1 if result.drift_detected else 0)
    Gauge(
        "sentiment_drift_last_success_timestamp_seconds",
        "Unix time of the last completed drift run",
        registry=registry,
    ).set(now if now is not None else time.time())
    Gauge("sentiment_drift_current_rows", "payload rows compared in the last run", registry=registry).set(
        result.current_rows
    )
    Gauge(
        "sentiment_drift_malformed_lines",
        "payload log lines skipped as malformed in the last run",
        registry=registry,
    ).set(result.bad_lines)
    Gauge(
        "sentiment_drift_insufficient_data",
        "1 if the last run had too few rows to test drift",
        registry=registry,
    ).set(1 if result.status == "insufficient_data" else 0)
    if result.drift_share is not None:
        Gauge("sentiment_drift_share", "share of features that drifted", registry=registry).set(
            result.drift_share
        )
    if result.features:
        score = Gauge(
            "sentiment_drift_feature_score",
            "drift score per feature (PSI/Wasserstein distance, K-S p-value, text ROC AUC)",
            ["feature"],
            registry=registry,
        )
        drifted = Gauge(
            "sentiment_drift_feature_drifted",
            "1 if the feature's drift test failed",
            ["feature"],
            registry=registry,
        )
        for name, drift in result.features.items():
            score.labels(feature=name).set(drift.score)
            drifted.labels(feature=name).set(1 if drift.drifted else 0)
    if result.class_mix:
        _class_mix_gauges(
            result, registry, int(result.settings.get("max_metric_classes", DEFAULT_MAX_METRIC_CLASSES))
        )
    return registry


def push_metrics(url: str, result: DriftResult, timeout_s: float) -> tuple[bool, str | None]:
    """Push; ``(True, None)`` on success, ``(False, reason)`` on any failure (never raises)."""
    try:
        push_to_gateway(
            url,
            job=JOB,
            registry=build_registry(result),
            grouping_key={"model_name": result.model_name},
            timeout=timeout_s,
        )
    except Exception as exc:  # connection refused, timeout, HTTP 5xx: report, don't crash
        return False, f"{type(exc).__name__}: {exc}"
    return True, None
