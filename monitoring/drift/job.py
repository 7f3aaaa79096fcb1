"""The drift job: read a window of payload logs, compare with the reference, write the report, push metrics.

Steps: logs of ``[end - window_hours, end)`` for one model version -> features (``features.py``) ->
Evidently 0.7 ``ValueDrift`` per feature (PSI / K-S / Wasserstein, configurable) and a text content drift
test (domain classifier on a sample) -> ``report.html``, ``text_report.html`` and ``summary.json`` next to
the logs -> metrics to the Pushgateway. With fewer rows than ``min_rows`` the result is
``insufficient_data`` (no drift claimed either way). A failed push is reported in the summary and in
``DriftResult.push_error``; the outputs are written before the push is attempted.
"""

from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common import data
from components.common.artifacts import atomic_write_bytes, atomic_write_json
from components.common.model_source import verify_model_files
from components.common.settings import ComponentError
from monitoring.drift import features
from monitoring.drift.logs import parse_ts, read_window
from monitoring.drift.push import push_metrics
from monitoring.drift.reference import resolve_reference
from monitoring.drift.settings import DriftSettings

log = logging.getLogger(__name__)
STATUS_OK = "ok"
STATUS_INSUFFICIENT = "insufficient_data"
DEFAULT_TEXT_THRESHOLD = 0.55


@dataclass
class FeatureDrift:
    """One feature's test: method, threshold, score and verdict, plus the means on both sides."""

    method: str
    threshold: float | None
    score: float
    drifted: bool
    reference_mean: float | None = None
    current_mean: float | None = None


@dataclass
class DriftResult:
    """What the job found; ``summary.json`` is this object as JSON."""

    status: str
    model_name: str
    model_version: str | None
    window_start: str
    window_end: str
    current_rows: int
    reference_rows: int
    drift_detected: bool = False
    drift_share: float | None = None
    features: dict[str, FeatureDrift] = field(default_factory=dict)
    prediction: dict[str, float] = field(default_factory=dict)
    class_mix: dict[str, Any] = field(default_factory=dict)
    class_confidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    other_versions: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    bad_line_reasons: dict[str, int] = field(default_factory=dict)
    rows_capped: bool = False
    files_read: int = 0
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    output_uri: str = ""
    seconds: float = 0.0
    pushed: bool | None = None
    push_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reference:
    """Reference rows as features, plus the dataset facts recorded in the summary."""

    frame: pd.DataFrame
    vocabulary: features.Vocabulary
    dataset_hash: str | None


def window_bounds(settings: DriftSettings, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``[end - window_hours, end)`` in UTC."""
    end = parse_ts(settings.window_end) if settings.window_end else (now or datetime.now(UTC))
    return end - timedelta(hours=settings.window_hours), end


def _read_reference_table(uri: str) -> pd.DataFrame:
    lower = uri.lower()
    if lower.endswith((".parquet", ".pq")):
        frame = data.read_validated(uri)
    elif lower.endswith((".csv", ".tsv")) or data._is_hub_id(uri):
        frame = data.clean(data.read_raw(uri))
    else:
        frame = data.read_validated(f"{uri.rstrip('/')}/dataset.parquet")
    if "text" not in frame.columns:
        raise ComponentError(f"reference {uri} has no text column")
    return frame


def load_reference(settings: DriftSettings, class_names: tuple[str, ...] | None = None) -> Reference:
    """The reference features: vocabulary from the training split, rows from ``reference_split``.

    Predictions come from the table's ``probability`` (binary) or ``probabilities`` ({name: p} or its JSON)
    column when present, else from ``model_uri``; ``class_names`` (in id order, from the payload logs)
    name the columns of a model's (n, k) output.
    """
    table = _read_reference_table(settings.reference_uri)
    has_split = "split" in table.columns
    vocab_rows = table[table["split"] == "train"] if has_split else table
    if vocab_rows.empty:
        raise ComponentError(f"reference {settings.reference_uri} has no training rows for the vocabulary")
    vocabulary = features.Vocabulary(vocab_rows["text"])
    if has_split and settings.reference_split != "all":
        rows = table[table["split"] == settings.reference_split]
    else:
        rows = table
    if rows.empty:
        raise ComponentError(f"reference split {settings.reference_split!r} is empty")
    texts = rows["text"].astype(str).tolist()
    probabilities: np.ndarray | features.Predictions | None = None
    if "probability" in rows.columns:
        probabilities = rows["probability"].to_numpy(dtype=float)
    elif "probabilities" in rows.columns:
        probabilities = _predictions_column(rows["probabilities"])
    dataset_hash = data.dataset_hash(table) if {"label", "split"} <= set(table.columns) else None
    if probabilities is None and settings.model_uri:
        proba, model_names = _reference_predictions(settings, texts, dataset_hash)
        probabilities = _model_predictions(proba, model_names or class_names)
    leave_one_out = not has_split or settings.reference_split in ("train", "all")
    frame = features.build_features(texts, probabilities, vocabulary, leave_one_out=leave_one_out)
    return Reference(frame=frame, vocabulary=vocabulary, dataset_hash=dataset_hash)


def _predictions_column(column: pd.Series) -> features.Predictions:
    """A reference ``probabilities`` column ({name: p} per row, or that as JSON) as predictions."""
    try:
        rows = [json.loads(v) if isinstance(v, str | bytes) else dict(v) for v in column]
        return features.Predictions.from_dicts(rows)
    except (ValueError, TypeError) as exc:
        raise ComponentError(
            f"reference probabilities column is not {{class name: probability}}: {exc}"
        ) from None


def _model_predictions(
    proba: np.ndarray, class_names: tuple[str, ...] | None
) -> np.ndarray | features.Predictions:
    """A model's output as predictions: 1-D P(positive) (binary), or (n, k) columns in class-id order named by
    ``class_names`` (the model's own labels; the payload logs' names for caches written before them)."""
    if proba.ndim == 1:
        return proba
    names = class_names if class_names and len(class_names) == proba.shape[1] else None
    if names is None and proba.shape[1] == 2:
        names = features.BINARY_LABELS
    if names is None:
        raise ComponentError(
            f"the reference model has {proba.shape[1]} classes but the payload logs name {class_names}"
        )
    return features.Predictions.from_matrix(names, proba)


def _reference_predictions(
    settings: DriftSettings, texts: list[str], dataset_hash: str | None
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """The model's probabilities on the reference texts (binary 1-D P(positive), or (n, k) with the model's
    class names), cached per (model digest, texts).

    A transformer on CPU takes minutes for the training split; the hourly CronJob computes them once per
    model version: ``<log_root>/<model_name>/drift/reference-cache/<model digest>-<texts hash>.parquet``.
    """
    import hashlib

    # Verified now (the cache key is the digest); loaded only when the cache misses.
    files = verify_model_files(
        settings.model_uri or "",
        expected_digest=settings.model_digest,
        allow_unpinned=settings.allow_unpinned_model,
        digest_flag="--model-digest",
    )
    digest = files.digest[:16]
    texts_hash = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cache = f"{settings.log_root.rstrip('/')}/{settings.model_name}/drift/reference-cache/{digest}-{texts_hash}.parquet"
    try:
        cached = data.read_validated(cache)
        if cached["text"].tolist() == texts:
            if "probability" in cached.columns:
                return cached["probability"].to_numpy(dtype=float), None
            names = tuple(json.loads(cached["class_names"].iloc[0])) if "class_names" in cached else None
            return np.array([json.loads(v) for v in cached["probabilities"]], dtype=float), names
    except Exception:  # absent or unreadable cache: recompute
        log.info("no usable reference prediction cache at %s", cache)
    model = files.load().model
    probabilities = np.asarray(model.predict_proba(texts), dtype=float)
    labels = model.labels
    if labels.is_binary:  # P(positive), as binary references always were (and their caches hold)
        probabilities = probabilities[:, 1]
    try:
        column = (
            {"probability": probabilities}
            if probabilities.ndim == 1
            else {
                "probabilities": [json.dumps(row) for row in probabilities.tolist()],
                "class_names": json.dumps(list(labels.names)),
            }
        )
        data.write_validated(pd.DataFrame({"text": texts, **column}), cache)
    except Exception as exc:  # a read-only sink must not fail the run
        log.warning("cannot write reference prediction cache %s: %s", cache, exc)
    return probabilities, None if labels.is_binary else labels.names


def _evidently_scores(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    columns: dict[str, tuple[str | None, float | None]],
    numerical: list[str],
    categorical: list[str],
    text: list[str],
) -> tuple[dict[str, FeatureDrift], Any]:
    """Run one Evidently report of ``ValueDrift`` metrics; per column (score, FAIL status) from it."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    definition = DataDefinition(
        numerical_columns=numerical or None,
        categorical_columns=categorical or None,
        text_columns=text or None,
    )
    metrics: list[Any] = [
        ValueDrift(column=name, method=method, threshold=threshold)
        for name, (method, threshold) in columns.items()
    ]
    if len(columns) > 1:
        metrics.append(DriftedColumnsCount(columns=list(columns)))
    keep = list(columns)
    snapshot = Report(metrics, include_tests=True).run(
        Dataset.from_pandas(current[keep], data_definition=definition),
        Dataset.from_pandas(reference[keep], data_definition=definition),
    )
    raw = snapshot.dict()
    statuses = {
        test["metric_config"]["params"].get("column"): test["status"]
        for test in raw["tests"]
        if test["metric_config"]["params"].get("type", "").endswith("ValueDrift")
    }
    out: dict[str, FeatureDrift] = {}
    for metric in raw["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        name = config["column"]
        out[name] = FeatureDrift(
            method=str(config.get("method")),
            threshold=config.get("threshold"),
            score=float(metric["value"]),
            drifted=statuses.get(name) == "FAIL",
        )
    return out, snapshot


def _insufficient_html(result: DriftResult) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift: insufficient data</title></head>"
        f"<body><h1>Drift report: insufficient data</h1><p>{html.escape(result.reason)}</p>"
        f"<pre>{html.escape(json.dumps(result.to_dict(), indent=2, default=str))}</pre></body></html>"
    )


def default_output_uri(settings: DriftSettings, end: datetime) -> str:
    """``<log_root>/<model_name>/drift/<end>``: next to the logs it describes."""
    return f"{settings.log_root.rstrip('/')}/{settings.model_name}/drift/{end:%Y-%m-%dT%H-%M-%SZ}"


def run_drift(settings: DriftSettings, now: datetime | None = None) -> DriftResult:
    """Run the whole job; returns the result after writing the outputs and attempting the push."""
    started = time.perf_counter()
    start, end = window_bounds(settings, now)
    output_uri = (settings.output_uri or default_output_uri(settings, end)).rstrip("/")
    window = read_window(
        settings.log_root, settings.model_name, start, end, settings.max_line_bytes, settings.max_rows
    )
    current_all = window.frame
    version = settings.model_version
    if version is None and window.versions:
        version = max(window.versions, key=lambda v: (window.versions[v], v))
    current = current_all[current_all["model_version"] == version] if version is not None else current_all
    if len(current) >= settings.min_rows:
        settings = resolve_reference(settings, version)
    result = DriftResult(
        status=STATUS_OK,
        model_name=settings.model_name,
        model_version=version,
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        current_rows=len(current),
        reference_rows=0,
        other_versions={v: n for v, n in window.versions.items() if v != version},
        bad_lines=window.bad_lines,
        bad_line_reasons=window.bad_reasons,
        rows_capped=window.rows_capped,
        files_read=window.files,
        settings=settings.model_dump(),
        output_uri=output_uri,
    )
    if window.bad_lines:
        result.warnings.append(f"{window.bad_lines} malformed log line(s) skipped: {window.bad_reasons}")
    if window.rows_capped:
        result.warnings.append(f"more than {settings.max_rows} rows in the window: the rest was not read")
    snapshots: dict[str, Any] = {}
    if len(current) < settings.min_rows:
        result.status = STATUS_INSUFFICIENT
        result.reason = (
            f"{len(current)} row(s) for model version {version!r} in the window "
            f"[{start.isoformat()}, {end.isoformat()}); at least {settings.min_rows} needed"
        )
    else:
        snapshots = _compare(settings, current, result)
    result.seconds = round(time.perf_counter() - started, 3)
    _write_outputs(output_uri, result, snapshots)
    if settings.pushgateway_url:
        result.pushed, result.push_error = push_metrics(
            settings.pushgateway_url, result, settings.push_timeout_s
        )
        atomic_write_json(f"{output_uri}/summary.json", result.to_dict())
    return result


def _compare(settings: DriftSettings, current_logs: pd.DataFrame, result: DriftResult) -> dict[str, Any]:
    class_names = _class_names(current_logs)
    reference = load_reference(settings, class_names)
    ref = reference.frame
    vocabulary = reference.vocabulary
    result.reference_rows = len(ref)
    result.settings["vocabulary_size"] = len(vocabulary)
    if reference.dataset_hash:
        result.settings["reference_dataset_hash"] = reference.dataset_hash
    cur = features.build_features(current_logs["text"].tolist(), _log_predictions(current_logs), vocabulary)
    methods, thresholds = settings.methods(), settings.thresholds()
    numerical = list(features.DESCRIPTORS)
    categorical: list[str] = []
    if "predicted_label" in ref.columns:
        # P(positive) exists for binary tasks only; confidence and the class mix for any task
        numerical += [f for f in features.PREDICTION_FEATURES if f in ref.columns and f in cur.columns]
        categorical += list(features.CATEGORICAL_FEATURES)
        if "probability" in numerical:
            result.prediction = {
                "current_positive_rate": float((cur["probability"] >= 0.5).mean()),
                "reference_positive_rate": float((ref["probability"] >= 0.5).mean()),
            }
        result.prediction |= {
            "current_mean_confidence": float(cur["confidence"].mean()),
            "reference_mean_confidence": float(ref["confidence"].mean()),
        }
    else:
        result.warnings.append("reference has no predictions (no probability column, no model_uri)")
    unknown = (set(methods) | set(thresholds)) - set(numerical + categorical + [features.TEXT_FEATURE])
    if unknown:
        raise ComponentError(f"unknown feature(s) in feature_methods/feature_thresholds: {sorted(unknown)}")
    columns: dict[str, tuple[str | None, float | None]] = {}
    for name in numerical:
        columns[name] = (methods.get(name, settings.num_method), thresholds.get(name, settings.threshold))
    for name in categorical:
        columns[name] = (
            methods.get(name, settings.cat_method),
            thresholds.get(name, settings.class_mix_threshold),
        )
    scores, main_snapshot = _evidently_scores(cur, ref, columns, numerical, categorical, [])
    text_threshold = thresholds.get(features.TEXT_FEATURE, settings.text_threshold or DEFAULT_TEXT_THRESHOLD)
    n_text = settings.max_text_rows
    text_scores, text_snapshot = _evidently_scores(
        cur.sample(n=min(n_text, len(cur)), random_state=settings.seed),
        ref.sample(n=min(n_text, len(ref)), random_state=settings.seed),
        {features.TEXT_FEATURE: (None, text_threshold)},
        [],
        [],
        [features.TEXT_FEATURE],
    )
    scores.update(text_scores)
    for name, drift in scores.items():
        if name in numerical:
            drift.reference_mean = float(ref[name].mean())
            drift.current_mean = float(cur[name].mean())
    result.features = scores
    if "predicted_label" in scores:
        result.class_mix = _class_mix(scores["predicted_label"], cur, ref, class_names)
        result.class_confidence = _class_confidence(settings, cur, ref)
        if result.class_mix["drifted"]:
            result.warnings.append(f"the predicted-class mix drifted: {result.class_mix['score']:.4f}")
    result.drift_share = sum(d.drifted for d in scores.values()) / len(scores)
    result.drift_detected = result.drift_share >= settings.drift_share
    return {"report.html": main_snapshot, "text_report.html": text_snapshot}


def _class_names(logs: pd.DataFrame) -> tuple[str, ...]:
    """The task's class names in id order, as the payload records name them."""
    pairs = logs[["class_index", "label"]].drop_duplicates().sort_values(["class_index", "label"])
    return tuple(dict.fromkeys(pairs["label"].astype(str)))


def _log_predictions(logs: pd.DataFrame) -> np.ndarray | features.Predictions:
    """Payload rows as predictions: binary rows (all with P(positive)) exactly as before N-class support."""
    probability = logs["probability"].to_numpy(dtype=float)
    labels = set(logs["label"].astype(str))
    if labels <= set(features.BINARY_LABELS) and not np.isnan(probability).any():
        return probability
    return features.Predictions(
        logs["label"].astype(str).to_numpy(dtype=object), logs["confidence"].to_numpy(dtype=float)
    )


def _shares(labels: pd.Series, names: list[str]) -> dict[str, float]:
    counts = labels.astype(str).value_counts()
    return {name: round(float(counts.get(name, 0)) / max(len(labels), 1), 6) for name in names}


def _class_mix(
    drift: FeatureDrift, cur: pd.DataFrame, ref: pd.DataFrame, class_names: tuple[str, ...]
) -> dict[str, Any]:
    """The predicted-class distribution test (the ``predicted_label`` feature) with both windows' shares."""
    seen = set(cur["predicted_label"].astype(str)) | set(ref["predicted_label"].astype(str))
    names = list(class_names) + sorted(seen - set(class_names))
    current, reference = _shares(cur["predicted_label"], names), _shares(ref["predicted_label"], names)
    return {
        "method": drift.method,
        "threshold": drift.threshold,
        "score": drift.score,
        "drifted": drift.drifted,
        "classes": names,
        "current_shares": current,
        "reference_shares": reference,
        "max_share_shift": max(abs(current[n] - reference[n]) for n in names) if names else 0.0,
    }


def _class_confidence(
    settings: DriftSettings, cur: pd.DataFrame, ref: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Per predicted class, the Wasserstein distance between the two windows' confidence distributions
    (classes with fewer than ``min_class_rows`` rows on a side are reported without a verdict)."""
    from scipy.stats import wasserstein_distance

    out: dict[str, dict[str, Any]] = {}
    cur_groups = dict(tuple(cur.groupby(cur["predicted_label"].astype(str))["confidence"]))
    ref_groups = dict(tuple(ref.groupby(ref["predicted_label"].astype(str))["confidence"]))
    for name in sorted(set(cur_groups) | set(ref_groups)):
        c, r = cur_groups.get(name, pd.Series(dtype=float)), ref_groups.get(name, pd.Series(dtype=float))
        enough = min(len(c), len(r)) >= settings.min_class_rows
        score = float(wasserstein_distance(c, r)) if enough else None
        out[name] = {
            "current_rows": len(c),
            "reference_rows": len(r),
            "current_mean": float(c.mean()) if len(c) else None,
            "reference_mean": float(r.mean()) if len(r) else None,
            "score": score,
            "threshold": settings.class_confidence_threshold,
            "drifted": None if score is None else score > settings.class_confidence_threshold,
        }
    return out


def _write_outputs(output_uri: str, result: DriftResult, snapshots: dict[str, Any]) -> None:
    """HTML report(s) first, then ``summary.json`` (the file a reader waits for), each atomically."""
    import tempfile

    if not snapshots:
        atomic_write_bytes(f"{output_uri}/report.html", _insufficient_html(result).encode("utf-8"))
    for name, snapshot in snapshots.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            snapshot.save_html(str(path))
            atomic_write_bytes(f"{output_uri}/{name}", path.read_bytes())
    atomic_write_json(f"{output_uri}/summary.json", result.to_dict())
