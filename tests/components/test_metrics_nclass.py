"""N-class metrics and the promotion gate on them: hand-checkable values on a small 4-class matrix, binary
scores unchanged, macro-F1 as the auto gate metric of a multi-class task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common.labels import as_matrix
from components.common.metrics import classification_metrics, plot_confusion_matrix
from components.register.gate import compare, decide_paired, multiclass_metric, resolve_metric

NAMES = ["amazon-negative", "amazon-positive", "imdb-negative", "imdb-positive"]
Y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
PRED = np.array([0, 1, 1, 1, 2, 0, 3, 3])


def _onehotish(pred: np.ndarray, k: int = 4, top: float = 0.7) -> np.ndarray:
    proba = np.full((len(pred), k), (1 - top) / (k - 1))
    proba[np.arange(len(pred)), pred] = top
    return proba


def test_four_class_scores_by_hand() -> None:
    m = classification_metrics(Y, _onehotish(PRED), texts=["a b"] * 8, class_names=NAMES)
    assert m.confusion_matrix == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 2]]
    assert m.accuracy == 0.75
    # Per class (P, R, F1): 0 (1/2, 1/2, 1/2), 1 (2/3, 1, 4/5), 2 (1, 1/2, 2/3), 3 (1, 1, 1).
    assert m.per_class["amazon-positive"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3 + 1) / 4) == m.f1
    assert m.weighted_f1 == pytest.approx(m.macro_f1)  # every class has 2 rows
    assert m.precision == pytest.approx((0.5 + 2 / 3 + 1 + 1) / 4) and m.recall == pytest.approx(0.75)
    # One-vs-rest AUC with scores 0.7/0.1: 8/12, 11/12, 9/12 and 12/12 (ties count 1/2).
    assert m.roc_auc == pytest.approx((8 + 11 + 9 + 12) / 48)
    headline = m.headline()
    assert headline["macro_f1"] == m.macro_f1 and headline["recall_imdb-negative"] == 0.5
    assert headline["precision_amazon-negative"] == 0.5 and m.slices["short_lt10"]["f1"] == m.macro_f1
    assert m.labels == NAMES and m.num_classes == 4


def test_auc_is_none_when_a_class_is_missing_from_the_truth() -> None:
    m = classification_metrics(Y[:6], _onehotish(PRED[:6]))
    assert m.roc_auc is None and m.labels == ["0", "1", "2", "3"]


def test_binary_scores_are_unchanged_by_the_matrix_form() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    vector, matrix = classification_metrics(y, p), classification_metrics(y, as_matrix(p))
    assert list(vector.headline()) == ["accuracy", "f1", "precision", "recall", "roc_auc"]
    assert vector.headline() == matrix.headline() and vector.confusion_matrix == matrix.confusion_matrix
    from sklearn.metrics import f1_score

    predicted = (p >= 0.5).astype(int)
    assert vector.f1 == f1_score(y, predicted)  # the positive class's F1, as always
    assert vector.macro_f1 == pytest.approx(f1_score(y, predicted, average="macro"))


def test_confusion_png_for_four_classes(tmp_path: Path) -> None:
    m = classification_metrics(Y, _onehotish(PRED), class_names=NAMES)
    plot_confusion_matrix(m.confusion_matrix, "challenger", tmp_path / "cm4.png", m.labels)
    plot_confusion_matrix([[3, 1], [0, 4]], "binary", tmp_path / "cm2.png")
    from PIL import Image

    four, two = Image.open(tmp_path / "cm4.png"), Image.open(tmp_path / "cm2.png")
    assert four.format == two.format == "PNG" and four.size[0] > two.size[0]


def test_macro_f1_of_resamples_matches_scikit_learn() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(3)
    y, pred = rng.integers(0, 4, (5, 200)), rng.integers(0, 4, (5, 200))
    batch = multiclass_metric("macro_f1", y, pred, 4)
    expected = [
        f1_score(y[i], pred[i], average="macro", labels=[0, 1, 2, 3], zero_division=0) for i in range(5)
    ]
    assert batch == pytest.approx(expected)
    weighted = multiclass_metric("weighted_f1", y[0], pred[0], 4)[0]
    assert weighted == pytest.approx(f1_score(y[0], pred[0], average="weighted", zero_division=0))
    assert resolve_metric("auto", 2) == "accuracy" and resolve_metric("auto", 4) == "macro_f1"
    with pytest.raises(ValueError, match="gate metric"):
        resolve_metric("auc", 4)


def _paired4(n: int, base_right: float, gains: int, losses: int, seed: int = 1) -> pd.DataFrame:
    """Paired 4-class predictions: the challenger fixes ``gains`` of the baseline's errors, breaks ``losses``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    right = rng.random(n) < base_right
    other = np.where(right, y, (y + rng.integers(1, 4, n)) % 4)
    challenger = other.copy()
    fixed = rng.choice(np.flatnonzero(~right), gains, replace=False)
    broken = rng.choice(np.flatnonzero(right), losses, replace=False)
    challenger[fixed] = y[fixed]
    challenger[broken] = (y[broken] + 1) % 4
    frame = pd.DataFrame({"label": y})
    for role, pred in (("baseline", other), ("challenger", challenger)):
        for c, column in enumerate(_onehotish(pred).T):
            frame[f"{role}_proba_{c}"] = column
    return frame


def _metrics4(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    return {
        role: classification_metrics(
            frame["label"], frame[[f"{role}_proba_{c}" for c in range(4)]].to_numpy()
        ).headline()
        for role in ("baseline", "challenger")
    }


def test_auto_gate_uses_macro_f1_with_the_bootstrap_for_four_classes() -> None:
    clear = _paired4(2000, 0.7, gains=150, losses=20)
    noisy = _paired4(2000, 0.7, gains=70, losses=60)
    worse = _paired4(2000, 0.7, gains=20, losses=80)
    for frame, outcome in ((clear, "promote"), (noisy, "hold"), (worse, "refuse")):
        decision = decide_paired(_metrics4(frame), frame, "auto", 0.0, bootstrap_samples=500)
        assert decision.metric == "macro_f1" and decision.outcome == outcome, decision.reasons
        if outcome != "refuse":
            assert decision.comparisons["baseline"].test == "bootstrap"
    # Accuracy stays McNemar's, on the rows where exactly one model is right, for any number of classes.
    decision = decide_paired(_metrics4(clear), clear, "accuracy", 0.0)
    found = decision.comparisons["baseline"]
    assert decision.outcome == "promote" and found.test == "mcnemar"
    assert (found.challenger_only_right, found.other_only_right) == (150, 20)


def test_binary_gate_defaults_to_accuracy_and_can_use_macro_f1() -> None:
    y = np.array([1, 0] * 400)
    other = np.where(np.arange(800) % 5 == 0, 1 - y, y).astype(float)  # right on 80%
    challenger = y.astype(float)
    challenger[:8] = 1 - y[:8]
    frame = pd.DataFrame({"label": y, "baseline_proba": other, "challenger_proba": challenger})
    metrics = {
        r: classification_metrics(y, frame[f"{r}_proba"]).headline() for r in ("baseline", "challenger")
    }
    auto = decide_paired(metrics, frame, "auto", 0.0)
    assert auto.metric == "accuracy" and auto.comparisons["baseline"].test == "mcnemar"
    macro = decide_paired(metrics, frame, "macro_f1", 0.0, bootstrap_samples=300)
    assert macro.metric == "macro_f1" and macro.outcome == "promote"
    assert macro.challenger == pytest.approx(classification_metrics(y, challenger).macro_f1)
    found = compare("baseline", "macro_f1", y, challenger, other, macro.challenger - 0.8, "auto", 300)
    assert found.test == "bootstrap" and found.p_value < 0.05
