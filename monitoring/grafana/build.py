"""Build the Grafana dashboards with grafana-foundation-sdk and write them as JSON.

``make regen`` rewrites ``dashboards/*.json`` (``outputs()``) before the ConfigMaps that embed them. Every PromQL here uses metric names from docs/contracts.md, the recording rules in
``monitoring/prometheus/rules``, kube-state-metrics or the Argo Workflows controller; tests/monitoring parses
each query with promtool and checks the names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
NS = 'namespace=~"$namespace"'
Query = tuple[str, str]  # (expr, legend)


def _targets(panel: Any, queries: list[Query]) -> Any:
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(
            prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i))
        )
    return panel


def ts(title: str, unit: str, queries: list[Query], description: str = "", width: int = 12) -> Any:
    """A time series panel."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DS)
        .unit(unit)
        .span(width)
        .height(8)
        .legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
        .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE))
    )
    return _targets(panel, queries)


def st(title: str, unit: str, queries: list[Query], red_above: float | None = None, width: int = 6) -> Any:
    """A single-stat panel (last value), red above ``red_above`` when given."""
    steps = [Threshold(value=None, color="green")]
    if red_above is not None:
        steps.append(Threshold(value=red_above, color="red"))
    panel = (
        stat.Panel()
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(width)
        .height(5)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .text_mode(common.BigValueTextMode.AUTO)
        .thresholds(db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
    )
    return _targets(panel, queries)


def tbl(title: str, queries: list[Query], width: int = 24) -> Any:
    """A table of instant query results."""
    panel = table.Panel().title(title).datasource(DS).span(width).height(6).show_header(True)
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(
            prometheus.Dataquery()
            .expr(expr)
            .legend_format(legend)
            .instant()
            .format("table")
            .ref_id(chr(65 + i))
        )
    return panel


def _base(title: str, uid: str, description: str) -> Any:
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["sentimentops"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("utc")
        .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )


def _namespace_variable(metric: str) -> Any:
    return (
        db.QueryVariable("namespace")
        .label("Namespace")
        .datasource(DS)
        .query(f"label_values({metric}, namespace)")
        .include_all(True)
        .all_value(".*")
        .multi(False)
        .refresh(db.VariableRefresh.ON_TIME_RANGE_CHANGED if hasattr(db, "VariableRefresh") else 2)
    )


def serving() -> Any:
    """Traffic, latency and the SLO, errors, batch sizes, canary vs stable, payload logging."""
    rate = "$__rate_interval"
    return (
        _base(
            "Sentiment / Serving",
            "sentiment-serving",
            "Predictor traffic, latency SLO, errors, canary vs stable",
        )
        .with_variable(_namespace_variable("sentiment_requests_total"))
        .with_row(db.Row("Traffic and errors"))
        .with_panel(
            ts(
                "Requests per second by status",
                "reqps",
                [
                    (
                        f"sum by (status_code) (rate(sentiment_requests_total{{{NS}}}[{rate}]))",
                        "{{status_code}}",
                    )
                ],
            )
        )
        .with_panel(
            ts(
                "5xx ratio",
                "percentunit",
                [(f"sentiment:error_ratio:rate5m{{{NS}}}", "{{namespace}}")],
                "Alert SentimentHighErrorRate fires above 5% for 5 minutes.",
            )
        )
        .with_row(db.Row("Latency and SLO (99% of requests under 300 ms over 28 days)"))
        .with_panel(
            ts(
                "Latency percentiles",
                "s",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(sentiment_request_latency_seconds_bucket{{{NS}}}[{rate}])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.9, 0.99)
                ],
            )
        )
        .with_panel(
            ts(
                "Latency SLO burn rate (1 = budget spent exactly in 28 days)",
                "none",
                [
                    (f"sentiment:latency_slo_bad_ratio:{w}{{{NS}}} / 0.01", w.removeprefix("rate"))
                    for w in ("rate5m", "rate1h", "rate6h", "rate3d")
                ],
                "Pages at 13.44 (1h and 5m) or 5.6 (6h and 30m); tickets at 2.8 (1d) or 0.933 (3d).",
            )
        )
        .with_panel(
            st(
                "Requests under 300 ms (1h)",
                "percentunit",
                [(f"1 - max(sentiment:latency_slo_bad_ratio:rate1h{{{NS}}})", "")],
            )
        )
        .with_panel(
            st(
                "Requests under 300 ms (3d)",
                "percentunit",
                [(f"1 - max(sentiment:latency_slo_bad_ratio:rate3d{{{NS}}})", "")],
            )
        )
        .with_panel(
            st(
                "p99 latency (5m)",
                "s",
                [(f"max(sentiment:latency_seconds:p99_5m{{{NS}}})", "")],
                red_above=0.3,
            )
        )
        .with_panel(
            st(
                "Predictor targets up",
                "none",
                [('sum(up{job=~".*sentiment-predictor.*"})', "")],
            )
        )
        .with_row(db.Row("Batching"))
        .with_panel(
            ts(
                "Micro-batch size",
                "none",
                [
                    (
                        f"histogram_quantile(0.5, sum by (le) (rate(sentiment_batch_size_bucket{{{NS}}}[{rate}])))",
                        "p50",
                    ),
                    (
                        f"histogram_quantile(0.95, sum by (le) (rate(sentiment_batch_size_bucket{{{NS}}}[{rate}])))",
                        "p95",
                    ),
                    (
                        f"sum(rate(sentiment_batch_size_sum{{{NS}}}[{rate}])) / sum(rate(sentiment_batch_size_count{{{NS}}}[{rate}]))",
                        "mean",
                    ),
                ],
            )
        )
        .with_panel(
            ts(
                "Payload log records and losses per second",
                "ops",
                [
                    (f"sum(rate(sentiment_payload_log_records_total{{{NS}}}[{rate}]))", "written"),
                    (f"sum(rate(sentiment_payload_log_errors_total{{{NS}}}[{rate}]))", "lost"),
                ],
            )
        )
        .with_row(db.Row("Canary vs stable (by served model version)"))
        .with_panel(
            ts(
                "Requests per second by model version",
                "reqps",
                [(f"sentiment:version_requests:rate5m{{{NS}}}", "v{{model_version}}")],
                width=8,
            )
        )
        .with_panel(
            ts(
                "5xx ratio by model version",
                "percentunit",
                [(f"sentiment:version_error_ratio:rate5m{{{NS}}}", "v{{model_version}}")],
                width=8,
            )
        )
        .with_panel(
            ts(
                "p95 latency by model version",
                "s",
                [(f"sentiment:version_latency_seconds:p95_5m{{{NS}}}", "v{{model_version}}")],
                width=8,
            )
        )
        .with_panel(
            tbl(
                "Served models",
                [
                    (
                        f"count by (namespace, model_name, model_version, flavor, digest) (sentiment_model_info{{{NS}}})",
                        "",
                    )
                ],
            )
        )
    )


def quality() -> Any:
    """Live prediction distribution and the drift job's verdicts."""
    rate = "$__rate_interval"
    drift = 'job="sentiment_drift"'
    return (
        _base(
            "Sentiment / Model quality and drift",
            "sentiment-quality",
            "Prediction distribution from the predictor, drift results pushed by the drift CronJob",
        )
        .with_variable(_namespace_variable("sentiment_predictions_total"))
        .with_row(db.Row("Drift job (Evidently, hourly over a 24h window)"))
        .with_panel(
            st("Drift detected", "none", [(f"max(sentiment_drift_detected{{{drift}}})", "")], red_above=0.5)
        )
        .with_panel(
            st(
                "Share of drifted features",
                "percentunit",
                [(f"max(sentiment_drift_share{{{drift}}})", "")],
                0.5,
            )
        )
        .with_panel(
            st(
                "Since last successful run",
                "s",
                [(f"time() - max(sentiment_drift_last_success_timestamp_seconds{{{drift}}})", "")],
                red_above=3 * 3600,
            )
        )
        .with_panel(
            st(
                "Rows compared (last run)",
                "none",
                [(f"max(sentiment_drift_current_rows{{{drift}}})", "")],
            )
        )
        .with_panel(
            ts(
                "Drift score per feature",
                "none",
                [(f"max by (feature) (sentiment_drift_feature_score{{{drift}}})", "{{feature}}")],
                "PSI / Wasserstein: higher = more drift; K-S: p-value (lower = more drift); text: domain classifier ROC AUC.",
            )
        )
        .with_panel(
            ts(
                "Drifted features (1 = test failed)",
                "none",
                [(f"max by (feature) (sentiment_drift_feature_drifted{{{drift}}})", "{{feature}}")],
            )
        )
        .with_panel(
            ts(
                "Class-mix drift (predicted-class distribution)",
                "none",
                [
                    (f"max(sentiment_drift_class_mix_score{{{drift}}})", "score (PSI / Jensen-Shannon)"),
                    (f"max(sentiment_drift_class_mix_drifted{{{drift}}})", "drifted (1 = test failed)"),
                ],
                "The predicted-class mix of the window against the reference, any number of classes.",
            )
        )
        .with_panel(
            ts(
                "Class share: reference vs current window",
                "percentunit",
                [
                    (
                        f"max by (label, window) (sentiment_drift_class_share{{{drift}}})",
                        "{{label}} ({{window}})",
                    )
                ],
            )
        )
        .with_panel(
            ts(
                "Confidence drift per class",
                "none",
                [(f"max by (label) (sentiment_drift_class_confidence_score{{{drift}}})", "{{label}}")],
                "Wasserstein distance between the windows' confidence of the rows predicted as each class.",
            )
        )
        .with_row(db.Row("Live predictions"))
        .with_panel(
            ts(
                "Prediction share by class",
                "percentunit",
                [
                    (
                        f"sum by (label) (rate(sentiment_predictions_total{{{NS}}}[{rate}])) / scalar(sum(rate(sentiment_predictions_total{{{NS}}}[{rate}])))",
                        "{{label}}",
                    )
                ],
                "Class names as served; beyond max_metric_classes classes, the rest count as 'other'.",
            )
        )
        .with_panel(
            ts(
                "Mean confidence by predicted class",
                "percentunit",
                [
                    (
                        f"sum by (label) (rate(sentiment_class_confidence_sum{{{NS}}}[{rate}])) / sum by (label) (rate(sentiment_class_confidence_count{{{NS}}}[{rate}]))",
                        "{{label}}",
                    )
                ],
            )
        )
        .with_panel(
            ts(
                "Positive prediction rate",
                "percentunit",
                [
                    (
                        f'sum(rate(sentiment_predictions_total{{label="positive",{NS}}}[{rate}])) / sum(rate(sentiment_predictions_total{{{NS}}}[{rate}]))',
                        "positive rate",
                    )
                ],
            )
        )
        .with_panel(
            ts(
                "Mean confidence (max-class probability)",
                "percentunit",
                [
                    (
                        f"sum(rate(sentiment_prediction_confidence_sum{{{NS}}}[{rate}])) / sum(rate(sentiment_prediction_confidence_count{{{NS}}}[{rate}]))",
                        "mean confidence",
                    ),
                    (
                        f'sum(rate(sentiment_prediction_confidence_bucket{{le="0.6",{NS}}}[{rate}])) / sum(rate(sentiment_prediction_confidence_count{{{NS}}}[{rate}]))',
                        "share under 0.6",
                    ),
                ],
            )
        )
        .with_panel(
            ts(
                "Positive-class probability quantiles",
                "percentunit",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(sentiment_positive_probability_bucket{{{NS}}}[{rate}])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.1, 0.5, 0.9)
                ],
            )
        )
        .with_panel(
            ts(
                "Input length (characters)",
                "none",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(sentiment_input_length_chars_bucket{{{NS}}}[{rate}])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95)
                ],
            )
        )
    )


def pipeline() -> Any:
    """Retraining workflow runs (Argo Workflows controller) and drift CronJob runs (kube-state-metrics)."""
    wf = 'name="sentiment-retrain"'
    return (
        _base(
            "Sentiment / Pipeline runs",
            "sentiment-pipeline",
            "sentiment-retrain workflows (Argo Workflows >= 3.6 metrics) and the drift CronJob",
        )
        .with_row(db.Row("Retraining workflow (WorkflowTemplate sentiment-retrain)"))
        .with_panel(
            ts(
                "Workflows entering each phase (per hour)",
                "none",
                [
                    (
                        f"sum by (phase) (increase(argo_workflows_workflowtemplate_triggered_total{{{wf}}}[1h]))",
                        "{{phase}}",
                    )
                ],
            )
        )
        .with_panel(
            ts(
                "Workflow runtime",
                "s",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) (rate(argo_workflows_workflowtemplate_runtime_bucket{{{wf}}}[1d])))",
                        f"p{int(q * 100)}",
                    )
                    for q in (0.5, 0.95)
                ],
            )
        )
        .with_panel(
            st(
                "Failed or errored (24h)",
                "none",
                [
                    (
                        f'sum(increase(argo_workflows_workflowtemplate_triggered_total{{{wf},phase=~"Failed|Error"}}[1d]))',
                        "",
                    )
                ],
                red_above=0.5,
            )
        )
        .with_panel(
            st(
                "Succeeded (7d)",
                "none",
                [
                    (
                        f'sum(increase(argo_workflows_workflowtemplate_triggered_total{{{wf},phase="Succeeded"}}[7d]))',
                        "",
                    )
                ],
            )
        )
        .with_row(db.Row("Drift CronJob (kube-state-metrics)"))
        .with_panel(
            ts(
                "Drift jobs succeeded / failed",
                "none",
                [
                    ('sum(kube_job_status_succeeded{job_name=~"sentimentops-drift-.*"})', "succeeded"),
                    ('sum(kube_job_status_failed{job_name=~"sentimentops-drift-.*"})', "failed"),
                ],
            )
        )
        .with_panel(
            st(
                "Since last successful drift Job",
                "s",
                [('time() - max(kube_cronjob_status_last_successful_time{cronjob="sentiment-drift"})', "")],
                red_above=3 * 3600,
            )
        )
    )


DASHBOARDS = {"sentiment-serving": serving, "sentiment-quality": quality, "sentiment-pipeline": pipeline}


def encode(obj: Any) -> dict[str, Any]:
    """A built SDK object as plain JSON data."""
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(obj))


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Unique panel ids (the builder leaves them unset), top to bottom."""
    for i, panel in enumerate(data.get("panels", []), start=1):
        panel["id"] = i
    return data


def round_trip(data: dict[str, Any]) -> dict[str, Any]:
    """Decode with the SDK's dashboard model and encode again (what the validation test compares)."""
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    return encode(Dashboard.from_json(data))


def render(name: str) -> str:
    """The dashboard JSON text as written to disk: the SDK round-trip's fixpoint (defaults made explicit)."""
    data = round_trip(normalise(encode(DASHBOARDS[name]().build())))
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def outputs() -> dict[Path, str]:
    """Dashboard file -> its JSON text (``infra.regen`` writes or checks them)."""
    return {DASHBOARDS_DIR / f"{name}.json": render(name) for name in DASHBOARDS}
