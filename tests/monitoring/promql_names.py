"""Metric names referenced by a PromQL expression (a small tokenizer, enough for our own queries).

Strings, label matchers ``{...}``, grouping clauses ``by (...)``, ``on (...)`` etc., durations and numbers
are removed; what remains that is not a function, keyword or aggregation is a metric (or recording rule) name.
"""

from __future__ import annotations

import re

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan",
}  # fmt: skip
KNOWN_METRICS = {
    # docs/contracts.md: serving (counters get _total, histograms _bucket/_sum/_count)
    "sentiment_requests_total",
    "sentiment_predictions_total",
    "sentiment_payload_log_errors_total",
    "sentiment_payload_log_records_total",
    "sentiment_model_info",
    *(
        f"{h}_{suffix}"
        for h in (
            "sentiment_request_latency_seconds",
            "sentiment_batch_size",
            "sentiment_prediction_confidence",
            "sentiment_positive_probability",
            "sentiment_input_length_chars",
            "sentiment_class_confidence",
        )
        for suffix in ("bucket", "sum", "count")
    ),
    # docs/contracts.md: drift Pushgateway job, plus the two extra gauges monitoring/drift/push.py adds
    "sentiment_drift_share",
    "sentiment_drift_detected",
    "sentiment_drift_feature_score",
    "sentiment_drift_last_success_timestamp_seconds",
    "sentiment_drift_feature_drifted",
    "sentiment_drift_current_rows",
    "sentiment_drift_insufficient_data",
    "sentiment_drift_class_mix_score",
    "sentiment_drift_class_mix_drifted",
    "sentiment_drift_class_share",
    "sentiment_drift_class_confidence_score",
    # standard: Prometheus, kube-state-metrics, Argo Workflows >= 3.6 controller
    "up",
    "kube_job_status_failed",
    "kube_job_status_succeeded",
    "kube_job_status_start_time",
    "kube_cronjob_status_last_successful_time",
    "argo_workflows_workflowtemplate_triggered_total",
    "argo_workflows_workflowtemplate_runtime_bucket",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names
