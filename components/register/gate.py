"""The promotion gate: promote only on enough paired evidence, refuse a challenger that is not better, hold
when the evidence cannot decide.

Every model was scored on the same rows (``evaluate`` writes the paired per-row probabilities), so each
comparison is paired: McNemar's exact test on the rows where exactly one of the two models is right
(accuracy), or a paired bootstrap of the metric's difference (any other metric, macro-F1 included). The
metric is ``gate_metric``; ``auto`` is accuracy for a binary task and macro-F1 for more classes. Predictions
are P(positive) per row (``<role>_proba``) for binary, or one column per class (``<role>_proba_<id>``).
Decision, per comparison
(challenger vs baseline, vs champion when there is one):

1. the split has fewer than ``gate_min_samples`` rows → **hold** (too little evidence either way);
2. the challenger's lead (point estimate) is below ``promotion_margin`` → **refuse**;
3. the lead is not significant (one-sided p ≥ ``gate_alpha``) → **hold**;
4. otherwise → **promote**.
Refuse wins over hold, hold over promote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from components.common.labels import as_matrix, predicted_ids

PROMOTE, REFUSE, HOLD = "promote", "refuse", "hold"
# For more than two classes f1/precision/recall are macro averages (as in ClassificationMetrics).
GATE_METRICS = ("accuracy", "f1", "precision", "recall", "macro_f1", "weighted_f1")
GateMetric = Literal["auto", "accuracy", "f1", "precision", "recall", "macro_f1", "weighted_f1"]
GateTest = Literal["auto", "mcnemar", "bootstrap", "none"]
BINARY_GATE_METRICS = ("accuracy", "f1", "precision", "recall")  # the positive-class formulas below


@dataclass
class Comparison:
    """The challenger against one other model on the same rows."""

    role: str
    delta: float  # challenger minus other (positive: challenger better)
    test: str
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    challenger_only_right: int  # McNemar's b
    other_only_right: int  # McNemar's c


@dataclass
class GateDecision:
    """Whether the challenger may be registered, and why."""

    passed: bool
    metric: str
    challenger: float
    thresholds: dict[str, float]
    reasons: list[str] = field(default_factory=list)
    outcome: str = PROMOTE
    n: int = 0
    comparisons: dict[str, Comparison] = field(default_factory=dict)


def _metric(metric: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, n: int) -> np.ndarray:
    tn = n - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "accuracy":
            return (tp + tn) / n
        if metric == "precision":
            return np.nan_to_num(tp / (tp + fp))
        if metric == "recall":
            return np.nan_to_num(tp / (tp + fn))
        return np.nan_to_num(2 * tp / (2 * tp + fp + fn))


def resolve_metric(metric: str, num_classes: int) -> str:
    """``auto`` → accuracy for two classes, macro_f1 for more; any other name is checked and kept."""
    if metric == "auto":
        return "accuracy" if num_classes <= 2 else "macro_f1"
    if metric not in GATE_METRICS:
        raise ValueError(f"gate metric must be auto or one of {', '.join(GATE_METRICS)}, got {metric!r}")
    return metric


def multiclass_metric(metric: str, y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``metric`` of class-id predictions, row-wise over a batch of resamples (2-D) or of one sample (1-D).

    precision/recall/f1 are macro averages; weighted_f1 weights each class's F1 by its true count; a class
    neither true nor predicted scores 0 (as scikit-learn's ``zero_division=0``).
    """
    y2, p2 = np.atleast_2d(y), np.atleast_2d(pred)
    if metric == "accuracy":
        values = (y2 == p2).mean(axis=1)
        return values if np.ndim(y) > 1 else values[:1]
    per_class = []
    support = []
    for c in range(num_classes):
        is_true, is_pred = y2 == c, p2 == c
        tp = (is_true & is_pred).sum(axis=1)
        fp = (~is_true & is_pred).sum(axis=1)
        fn = (is_true & ~is_pred).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            if metric == "precision":
                per_class.append(np.nan_to_num(tp / (tp + fp)))
            elif metric == "recall":
                per_class.append(np.nan_to_num(tp / (tp + fn)))
            else:
                per_class.append(np.nan_to_num(2 * tp / (2 * tp + fp + fn)))
        support.append(is_true.sum(axis=1))
    scores, weights = np.stack(per_class, axis=1), np.stack(support, axis=1)
    if metric == "weighted_f1":
        return (scores * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1)
    return scores.mean(axis=1)


def _bootstrap_classes(
    metric: str,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    num_classes: int,
    samples: int,
    seed: int,
    alpha: float,
) -> tuple[float, float, float]:
    """Paired bootstrap of metric(a) - metric(b) for class-id predictions (any number of classes)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    deltas = []
    chunk = max(1, min(samples, 2_000_000 // max(n * num_classes, 1)))
    for start in range(0, samples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, samples - start), n))
        yy = y[idx]
        deltas.append(
            multiclass_metric(metric, yy, a[idx], num_classes)
            - multiclass_metric(metric, yy, b[idx], num_classes)
        )
    d = np.concatenate(deltas)
    p = float((np.sum(d <= 0) + 1) / (len(d) + 1))
    return p, float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha))


def _bootstrap(
    metric: str, y: np.ndarray, a: np.ndarray, b: np.ndarray, samples: int, seed: int, alpha: float
) -> tuple[float, float, float]:
    """Paired bootstrap of metric(a) - metric(b): (one-sided p for "no lead", alpha and 1 - alpha quantiles)."""
    rng = np.random.default_rng(seed)
    n = len(y)
    deltas = []
    chunk = max(1, min(samples, 2_000_000 // max(n, 1)))
    for start in range(0, samples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, samples - start), n))
        yy, aa, bb = y[idx], a[idx], b[idx]
        values = []
        for pred in (aa, bb):
            tp = (pred & yy).sum(axis=1)
            fp = (pred & ~yy).sum(axis=1)
            fn = (~pred & yy).sum(axis=1)
            values.append(_metric(metric, tp, fp, fn, n))
        deltas.append(values[0] - values[1])
    d = np.concatenate(deltas)
    p = float((np.sum(d <= 0) + 1) / (len(d) + 1))
    return p, float(np.quantile(d, alpha)), float(np.quantile(d, 1 - alpha))


def compare(
    role: str,
    metric: str,
    labels: np.ndarray,
    challenger_proba: np.ndarray,
    other_proba: np.ndarray,
    delta: float,
    test: GateTest,
    bootstrap_samples: int = 2000,
    seed: int = 42,
    alpha: float = 0.05,
) -> Comparison:
    """Paired significance of the challenger's lead over one model.

    Probabilities: P(positive) vectors (binary) or (n, k) class-probability matrices. The interval is
    two-sided at 1 - 2 * alpha, so its lower bound is above 0 exactly when the one-sided test at ``alpha``
    finds the lead significant (up to the normal approximation used for McNemar's interval).
    """
    from statistics import NormalDist

    from scipy.stats import binomtest

    k = max(as_matrix(challenger_proba).shape[1], as_matrix(other_proba).shape[1])
    y_ids = np.asarray(labels).astype(int)
    a_ids, b_ids = predicted_ids(challenger_proba), predicted_ids(other_proba)
    y, a, b = y_ids.astype(bool), a_ids.astype(bool), b_ids.astype(bool)  # the binary formulas' view
    a_right, b_right = a_ids == y_ids, b_ids == y_ids
    only_a, only_b = int(np.sum(a_right & ~b_right)), int(np.sum(b_right & ~a_right))
    kind = ("mcnemar" if metric == "accuracy" else "bootstrap") if test == "auto" else test
    p = low = high = None
    if kind == "mcnemar":
        if metric != "accuracy":
            raise ValueError(f"McNemar's test compares accuracy, not {metric}; use the bootstrap")
        discordant = only_a + only_b
        p = float(binomtest(only_a, discordant, 0.5, alternative="greater").pvalue) if discordant else 1.0
        n = len(y)
        spread = NormalDist().inv_cdf(1 - alpha) * np.sqrt(max(discordant / n - delta**2, 0.0) / n)
        low, high = delta - spread, delta + spread
    elif kind == "bootstrap" and k == 2 and metric in BINARY_GATE_METRICS:
        p, low, high = _bootstrap(metric, y, a, b, bootstrap_samples, seed, alpha)
    elif kind == "bootstrap":
        p, low, high = _bootstrap_classes(metric, y_ids, a_ids, b_ids, k, bootstrap_samples, seed, alpha)
    return Comparison(role, delta, kind, p, low, high, only_a, only_b)


def decide_paired(
    metrics: dict[str, dict[str, Any]],
    predictions: Any,
    metric: str,
    margin: float,
    *,
    test: GateTest = "auto",
    alpha: float = 0.05,
    min_samples: int = 500,
    bootstrap_samples: int = 2000,
    seed: int = 42,
) -> GateDecision:
    """Apply the gate to the evaluated models (``metrics[role]``) and their paired predictions.

    ``metric`` may be ``auto`` (by the number of classes). A metric missing from ``metrics[role]`` (e.g.
    macro_f1 of a binary model, whose headline does not carry it) is computed from the predictions.
    """
    k = num_classes(predictions) if predictions is not None else 2
    metric = resolve_metric(metric, k)
    if any(metric not in metrics[role] for role in metrics) and predictions is None:
        raise ValueError(
            f"gate metric {metric} is not among the evaluated metrics and there are no predictions"
        )
    metrics = {
        role: values if metric in values else {**values, metric: _point(metric, predictions, role, k)}
        for role, values in metrics.items()
    }
    challenger = float(metrics["challenger"][metric])
    n = len(predictions) if predictions is not None else 0
    decision = GateDecision(passed=False, metric=metric, challenger=challenger, thresholds={}, n=n)
    refused: list[str] = []
    held: list[str] = []
    if n < min_samples:
        held.append(
            f"the {n}-row evaluation split is below gate_min_samples {min_samples}: too little evidence"
        )
    for role in ("baseline", "champion"):
        if role not in metrics:
            continue
        other = float(metrics[role][metric])
        decision.thresholds[role] = other + margin
        delta = challenger - other
        if delta < margin:
            refused.append(f"{metric} {challenger:.4f} < {role} {other:.4f} + margin {margin}")
            continue
        if n < min_samples or test == "none":
            continue
        found = compare(
            role,
            metric,
            predictions["label"].to_numpy(),
            role_proba(predictions, "challenger"),
            role_proba(predictions, role),
            delta,
            test,
            bootstrap_samples,
            seed,
            alpha,
        )
        decision.comparisons[role] = found
        if found.p_value is not None and found.p_value >= alpha:
            held.append(
                f"the lead over {role} ({metric} {challenger:.4f} vs {other:.4f}, {delta:+.4f}) is not significant: "
                f"{found.test} p={found.p_value:.3g} >= alpha {alpha} on n={n} "
                f"(challenger alone right on {found.challenger_only_right}, {role} alone on {found.other_only_right})"
            )
    if n < min_samples:
        refused = []  # too few rows to refuse with confidence either
    decision.outcome = REFUSE if refused else HOLD if held else PROMOTE
    decision.reasons = refused or held
    decision.passed = decision.outcome == PROMOTE
    return decision


def role_proba(predictions: Any, role: str) -> np.ndarray:
    """One model's paired probabilities: ``<role>_proba`` (binary P(positive)) or ``<role>_proba_<id>``."""
    if f"{role}_proba" in predictions.columns:
        return predictions[f"{role}_proba"].to_numpy()
    columns = sorted(
        (c for c in predictions.columns if c.startswith(f"{role}_proba_") and c.rsplit("_", 1)[1].isdigit()),
        key=lambda c: int(c.rsplit("_", 1)[1]),
    )
    if not columns:
        raise ValueError(f"no paired predictions for {role} (expected {role}_proba or {role}_proba_<id>)")
    return predictions[columns].to_numpy()


def num_classes(predictions: Any) -> int:
    """The number of classes of the paired predictions (2 for the binary ``<role>_proba`` layout)."""
    return as_matrix(role_proba(predictions, "challenger")).shape[1]


def _point(metric: str, predictions: Any, role: str, k: int) -> float:
    y = predictions["label"].to_numpy().astype(int)
    return float(multiclass_metric(metric, y, predicted_ids(role_proba(predictions, role)), k)[0])
