"""The promotion gate: promote only on enough paired evidence, refuse a challenger that is not better, hold
when the evidence cannot decide.

Every model was scored on the same rows (``evaluate`` writes the paired per-row probabilities), so each
comparison is paired: McNemar's exact test on the rows where exactly one of the two models is right
(accuracy), or a paired bootstrap of the metric's difference (any other metric). Decision, per comparison
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

PROMOTE, REFUSE, HOLD = "promote", "refuse", "hold"
GATE_METRICS = ("accuracy", "f1", "precision", "recall")
GateTest = Literal["auto", "mcnemar", "bootstrap", "none"]


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

    The interval is two-sided at 1 - 2 * alpha, so its lower bound is above 0 exactly when the one-sided
    test at ``alpha`` finds the lead significant (up to the normal approximation used for McNemar's interval).
    """
    from statistics import NormalDist

    from scipy.stats import binomtest

    y = np.asarray(labels).astype(bool)
    a, b = np.asarray(challenger_proba) >= 0.5, np.asarray(other_proba) >= 0.5
    a_right, b_right = a == y, b == y
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
    elif kind == "bootstrap":
        p, low, high = _bootstrap(metric, y, a, b, bootstrap_samples, seed, alpha)
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
    """Apply the gate to the evaluated models (``metrics[role]``) and their paired predictions."""
    if metric not in GATE_METRICS:
        raise ValueError(f"gate metric must be one of {', '.join(GATE_METRICS)}, got {metric!r}")
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
            predictions["challenger_proba"].to_numpy(),
            predictions[f"{role}_proba"].to_numpy(),
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
