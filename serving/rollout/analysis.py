"""Canary analysis: the canary's and the stable model's serving metrics over a window, and a verdict.

A binary (negative/positive) model is checked on its positive rate; a model with other class names on its
class mix: the largest difference between canary and stable in the share of any class
(``sentiment_predictions_total`` by ``label``), with the Jensen-Shannon distance shown alongside.

The metrics are the serving contract's (docs/contracts.md): ``sentiment_requests_total``,
``sentiment_request_latency_seconds``, ``sentiment_predictions_total``,
``sentiment_prediction_confidence`` and ``sentiment_model_info``. A *selector* (PromQL label
matchers, e.g. ``revision="sentiment-predictor-00002"``) tells the canary's series from the stable
model's.

Counts over the window are ``x - (x offset W or x * 0)`` rather than ``increase(x[W])``: a canary's
series are new, and ``increase`` drops everything counted before a series' first scrape (e.g. the first
5xx of a pod). Counter resets inside the window are clamped to zero (a restarted pod under-counts).

Verdicts and the exit codes of ``analyse``: PROMOTE 0, ROLLBACK 2, HOLD 3 (errors: 1).
"""

from __future__ import annotations

import enum
import json
import math
import time
from dataclasses import asdict, dataclass, field

from components.common.settings import ComponentError
from serving.rollout.prometheus import Prometheus
from serving.rollout.settings import AnalysisSettings

REQUESTS = "sentiment_requests_total"
LATENCY_BUCKET = "sentiment_request_latency_seconds_bucket"
PREDICTIONS = "sentiment_predictions_total"
CONFIDENCE_SUM = "sentiment_prediction_confidence_sum"
CONFIDENCE_COUNT = "sentiment_prediction_confidence_count"
MODEL_INFO = "sentiment_model_info"
POSITIVE_LABEL = "positive"
BINARY_LABELS = frozenset({"negative", POSITIVE_LABEL})


class Verdict(enum.Enum):
    """What to do with the canary; the value is ``analyse``'s exit code."""

    PROMOTE = 0
    ROLLBACK = 2
    HOLD = 3


class EmptyResultError(ComponentError):
    """Prometheus has no series for a selector: a wrong selector or a target that is not scraped."""


@dataclass(frozen=True)
class TrackMetrics:
    """One side (canary or stable) of the comparison, over the analysis window."""

    selector: str
    model_versions: tuple[str, ...]
    requests: float
    errors: float
    p95_s: float | None
    p99_s: float | None
    predictions: float
    positive: float
    confidence_sum: float
    confidence_count: float
    class_counts: dict[str, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        """5xx responses / requests."""
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def positive_rate(self) -> float | None:
        """Share of predictions labelled positive."""
        return self.positive / self.predictions if self.predictions > 0 else None

    @property
    def class_shares(self) -> dict[str, float] | None:
        """Share of predictions per class label (classes never predicted left out)."""
        total = sum(self.class_counts.values())
        if total <= 0:
            return None
        return {label: n / total for label, n in self.class_counts.items() if n > 0}

    @property
    def mean_confidence(self) -> float | None:
        """Mean max-class probability."""
        return self.confidence_sum / self.confidence_count if self.confidence_count > 0 else None


@dataclass(frozen=True)
class Check:
    """One row of the evidence table; ``passed`` is None when there is no data to judge."""

    name: str
    stable: float | None
    canary: float | None
    limit: str
    passed: bool | None
    unit: str = ""


@dataclass(frozen=True)
class Decision:
    """The verdict, why, and the evidence."""

    verdict: Verdict
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    canary: TrackMetrics
    stable: TrackMetrics
    window: str
    evaluated_at: float
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """What ``analyse`` exits with."""
        return self.verdict.value

    def to_json(self) -> str:
        """Machine-readable decision (``--decision-file``; read by the Argo workflow)."""
        data = asdict(self)
        data["verdict"] = self.verdict.name.lower()
        data["reason"] = "; ".join(self.reasons)
        return json.dumps(data, indent=2, sort_keys=True)


def _count(metric: str, selector: str, window: str) -> str:
    """Per-series growth of a counter over ``window``, counting new series from zero."""
    series = f"{metric}{{{selector}}}"
    return f"clamp_min({series} - ({series} offset {window} or {series} * 0), 0)"


def queries(selector: str, window: str) -> dict[str, str]:
    """The PromQL of every figure of one track (pure; shown by ``analyse --show-queries``)."""
    errors = f'{selector},status_code=~"5.."'
    positive = f'{selector},label="{POSITIVE_LABEL}"'
    return {
        "requests": f"sum({_count(REQUESTS, selector, window)})",
        "errors": f"sum({_count(REQUESTS, errors, window)})",
        "p95_s": f"histogram_quantile(0.95, sum by (le) ({_count(LATENCY_BUCKET, selector, window)}))",
        "p99_s": f"histogram_quantile(0.99, sum by (le) ({_count(LATENCY_BUCKET, selector, window)}))",
        "predictions": f"sum({_count(PREDICTIONS, selector, window)})",
        "positive": f"sum({_count(PREDICTIONS, positive, window)})",
        "confidence_sum": f"sum({_count(CONFIDENCE_SUM, selector, window)})",
        "confidence_count": f"sum({_count(CONFIDENCE_COUNT, selector, window)})",
        "class_counts": f"sum by (label) ({_count(PREDICTIONS, selector, window)})",
    }


def collect(prometheus: Prometheus, selector: str, window: str, at: float) -> TrackMetrics:
    """Query one track's figures at time ``at``; an error when nothing matches the selector at all."""
    info = prometheus.query(f"{MODEL_INFO}{{{selector}}}", at)
    if not info:
        raise EmptyResultError(
            f"no {MODEL_INFO} series match {{{selector}}}: wrong selector, or the pods are not scraped"
        )
    versions = tuple(sorted({s.labels.get("model_version", "?") for s in info}))
    promql = queries(selector, window)
    by_class = {s.labels.get("label", "?"): s.value for s in prometheus.query(promql.pop("class_counts"), at)}
    values = {name: prometheus.scalar(query, at) for name, query in promql.items()}

    def count(name: str) -> float:
        return values[name] or 0.0

    return TrackMetrics(
        selector=selector,
        model_versions=versions,
        requests=count("requests"),
        errors=count("errors"),
        p95_s=values["p95_s"],
        p99_s=values["p99_s"],
        predictions=count("predictions"),
        positive=count("positive"),
        confidence_sum=count("confidence_sum"),
        confidence_count=count("confidence_count"),
        class_counts={k: v for k, v in by_class.items() if not math.isnan(v)},
    )


def _latency_check(
    name: str, stable: float | None, canary: float | None, abs_limit: float, s: AnalysisSettings
) -> Check:
    limit = (
        abs_limit if stable is None else min(abs_limit, stable * s.max_latency_ratio + s.latency_tolerance_s)
    )
    passed = None if canary is None else canary <= limit
    text = (
        f"<= {limit:.3f} (min of {abs_limit:g}, stable x{s.max_latency_ratio:g} + {s.latency_tolerance_s:g})"
    )
    return Check(name, stable, canary, text, passed, "s")


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def is_multiclass(canary: TrackMetrics, stable: TrackMetrics) -> bool:
    """True when either track predicted a class other than negative/positive (binary sentiment)."""
    predicted = {k for track in (canary, stable) for k, v in track.class_counts.items() if v > 0}
    return bool(predicted - BINARY_LABELS)


def _class_mix_check(canary: TrackMetrics, stable: TrackMetrics, s: AnalysisSettings) -> Check:
    """The largest |canary - stable| share of any class (stable/canary columns: that class' shares)."""
    limit = f"|canary - stable| share of every class <= {s.max_class_mix_shift:g}"
    c_shares, s_shares = canary.class_shares, stable.class_shares
    if c_shares is None or s_shares is None:
        return Check("class mix shift", None, None, limit, None)
    labels = sorted(set(c_shares) | set(s_shares))
    c = [c_shares.get(k, 0.0) for k in labels]
    st = [s_shares.get(k, 0.0) for k in labels]
    worst = max(range(len(labels)), key=lambda i: (abs(c[i] - st[i]), labels[i]))
    shift = abs(c[worst] - st[worst])
    mid = [(a + b) / 2 for a, b in zip(c, st, strict=True)]

    def kl(p: list[float]) -> float:
        return sum(a * math.log2(a / m) for a, m in zip(p, mid, strict=True) if a > 0)

    js = math.sqrt(max((kl(c) + kl(st)) / 2, 0.0))
    text = f"{limit} (largest: {labels[worst]!r} {shift:.4f}; Jensen-Shannon distance {js:.4f})"
    return Check("class mix shift", st[worst], c[worst], text, shift <= s.max_class_mix_shift)


def checks(canary: TrackMetrics, stable: TrackMetrics, s: AnalysisSettings) -> tuple[Check, ...]:
    """Every threshold comparison (pure)."""
    c_err, s_err = canary.error_rate, stable.error_rate
    err_increase = _diff(c_err, s_err)
    pos_shift = _diff(canary.positive_rate, stable.positive_rate)
    conf_shift = _diff(canary.mean_confidence, stable.mean_confidence)

    def within(value: float | None, limit: float) -> bool | None:
        return None if value is None else abs(value) <= limit

    return (
        Check(
            "5xx error rate",
            s_err,
            c_err,
            f"<= {s.max_error_rate:g}",
            None if c_err is None else c_err <= s.max_error_rate,
        ),
        Check(
            "5xx rate increase",
            None,
            err_increase,
            f"<= {s.max_error_rate_increase:g}",
            None if err_increase is None else err_increase <= s.max_error_rate_increase,
        ),
        _latency_check("p95 latency", stable.p95_s, canary.p95_s, s.max_p95_latency_s, s),
        _latency_check("p99 latency", stable.p99_s, canary.p99_s, s.max_p99_latency_s, s),
        _class_mix_check(canary, stable, s)
        if is_multiclass(canary, stable)
        else Check(
            "positive rate shift",
            stable.positive_rate,
            canary.positive_rate,
            f"|canary - stable| <= {s.max_positive_rate_shift:g}",
            within(pos_shift, s.max_positive_rate_shift),
        ),
        Check(
            "mean confidence shift",
            stable.mean_confidence,
            canary.mean_confidence,
            f"|canary - stable| <= {s.max_confidence_shift:g}",
            within(conf_shift, s.max_confidence_shift),
        ),
    )


def decide(canary: TrackMetrics, stable: TrackMetrics, s: AnalysisSettings, at: float = 0.0) -> Decision:
    """HOLD below the minimum request count; ROLLBACK if any check fails; PROMOTE if all pass."""
    rows = checks(canary, stable, s)
    thresholds = {
        k: v
        for k, v in s.model_dump().items()
        if k.startswith(("max_", "min_", "latency_")) and isinstance(v, int | float)
    }

    def result(verdict: Verdict, reasons: list[str]) -> Decision:
        return Decision(verdict, tuple(reasons), rows, canary, stable, s.analysis_window, at, thresholds)

    few = [
        f"{name} served {track.requests:.0f} requests < {s.min_requests} in {s.analysis_window}"
        for name, track in (("canary", canary), ("stable", stable))
        if track.requests < s.min_requests
    ]
    if few:
        return result(Verdict.HOLD, few)
    failed = [f"{c.name}: canary {_fmt(c.canary, c.unit)} not {c.limit}" for c in rows if c.passed is False]
    if failed:
        return result(Verdict.ROLLBACK, failed)
    missing = [f"{c.name}: no data" for c in rows if c.passed is None]
    if missing:
        return result(Verdict.HOLD, missing)
    return result(Verdict.PROMOTE, ["all checks passed"])


def analyse(s: AnalysisSettings, at: float | None = None) -> Decision:
    """Query Prometheus for both tracks and decide."""
    prometheus = Prometheus(s.prometheus_url, s.prometheus_timeout_s)
    at = time.time() if at is None else at
    canary = collect(prometheus, s.canary_selector, s.analysis_window, at)
    stable = collect(prometheus, s.stable_selector, s.analysis_window, at)
    return decide(canary, stable, s, at)


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}{unit}"


def render(decision: Decision) -> str:
    """The evidence table and verdict, for people (CI logs, the runbook)."""
    header = ("check", "stable", "canary", "limit", "result")
    rows: list[tuple[str, ...]] = [
        ("requests", f"{decision.stable.requests:.0f}", f"{decision.canary.requests:.0f}", "", ""),
        (
            "model version",
            ",".join(decision.stable.model_versions),
            ",".join(decision.canary.model_versions),
            "",
            "",
        ),
    ]
    for c in decision.checks:
        result = {True: "ok", False: "FAIL", None: "no data"}[c.passed]
        rows.append((c.name, _fmt(c.stable, c.unit), _fmt(c.canary, c.unit), c.limit, result))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(
        f"window {decision.window}; canary {{{decision.canary.selector}}}; stable {{{decision.stable.selector}}}"
    )
    lines.append(
        f"verdict: {decision.verdict.name} (exit {decision.exit_code}): {'; '.join(decision.reasons)}"
    )
    return "\n".join(lines)
