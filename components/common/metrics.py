"""Classification metrics used by training and evaluation, so every model is scored the same way.

Binary (a 1-D P(positive) vector, or two columns): accuracy and the positive class's F1/precision/recall,
ROC-AUC, as always. N classes (an (n, k) probability matrix, columns in class-id order): accuracy, macro and
weighted F1, per-class precision/recall, the k × k confusion matrix and one-vs-rest ROC-AUC (macro).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.common.labels import BINARY_NAMES, as_matrix, predicted_ids

# Slices by whitespace-token count: (name, min inclusive, max exclusive).
LENGTH_SLICES: tuple[tuple[str, int, int], ...] = (
    ("short_lt10", 0, 10),
    ("medium_10_25", 10, 25),
    ("long_ge25", 25, 10**9),
)


@dataclass
class ClassificationMetrics:
    """Scores of one model on one split.

    Binary: ``f1``/``precision``/``recall`` are the positive class's. N > 2 classes: they are macro averages,
    and ``roc_auc`` is the macro one-vs-rest AUC.
    """

    accuracy: float
    f1: float
    precision: float
    recall: float
    roc_auc: float | None
    confusion_matrix: list[list[int]]
    n: int
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    macro_f1: float | None = None
    weighted_f1: float | None = None
    labels: list[str] = field(default_factory=lambda: list(BINARY_NAMES))
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.confusion_matrix)

    def headline(self) -> dict[str, float]:
        """The scalar metrics, for MLflow and tables (binary: the same names as always)."""
        values = {
            "accuracy": self.accuracy,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
        }
        if self.roc_auc is not None:
            values["roc_auc"] = self.roc_auc
        if self.num_classes > 2:
            values["macro_f1"] = float(self.macro_f1 or 0.0)
            values["weighted_f1"] = float(self.weighted_f1 or 0.0)
            for name, scores in self.per_class.items():
                values[f"precision_{name}"] = scores["precision"]
                values[f"recall_{name}"] = scores["recall"]
        return values

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def classification_metrics(
    labels: Sequence[int],
    positive_proba: np.ndarray,
    texts: Sequence[str] | None = None,
    threshold: float = 0.5,
    word_counts: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> ClassificationMetrics:
    """Accuracy, F1, precision, recall, ROC-AUC, confusion matrix and (with texts, or their whitespace-token
    counts when the texts were streamed) per-length-slice scores.

    ``positive_proba``: P(positive) (n,) for binary, or an (n, k) class-probability matrix; a two-column
    matrix is scored exactly as its column 1. ``class_names`` default to negative/positive or the ids.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    matrix = as_matrix(positive_proba)
    if matrix.shape[1] > 2:
        return _multiclass_metrics(labels, matrix, texts, word_counts, class_names)
    positive_proba = matrix[:, 1]
    y_true = np.asarray(labels, dtype=int)
    y_pred = (np.asarray(positive_proba) >= threshold).astype(int)
    roc_auc = float(roc_auc_score(y_true, positive_proba)) if len(set(y_true.tolist())) == 2 else None
    slices = _length_slices(
        y_true, y_pred, texts, word_counts, lambda t, p: float(f1_score(t, p, zero_division=0))
    )
    names = list(class_names) if class_names is not None else list(BINARY_NAMES)
    precisions, recalls, f1s, support = _per_class(y_true, y_pred, 2)
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1=float(f1_score(y_true, y_pred, zero_division=0)),
        precision=float(precision_score(y_true, y_pred, zero_division=0)),
        recall=float(recall_score(y_true, y_pred, zero_division=0)),
        roc_auc=roc_auc,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
        n=int(len(y_true)),
        slices=slices,
        macro_f1=float(np.mean(f1s)),
        weighted_f1=_weighted(f1s, support),
        labels=names,
        per_class=_per_class_dict(names, precisions, recalls, f1s, support),
    )


def _length_slices(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    texts: Sequence[str] | None,
    word_counts: np.ndarray | None,
    f1: Callable[[np.ndarray, np.ndarray], float],
) -> dict[str, dict[str, float]]:
    """Rows, accuracy and ``f1`` per :data:`LENGTH_SLICES` slice (by whitespace tokens), when lengths are known."""
    slices: dict[str, dict[str, float]] = {}
    if texts is not None:
        word_counts = np.array([len(t.split()) for t in texts])
    if word_counts is None:
        return slices
    lengths = np.asarray(word_counts)
    for name, lo, hi in LENGTH_SLICES:
        mask = (lengths >= lo) & (lengths < hi)
        if mask.any():
            slices[name] = {
                "n": int(mask.sum()),
                "accuracy": float(np.mean(y_true[mask] == y_pred[mask])),
                "f1": f1(y_true[mask], y_pred[mask]),
            }
    return slices


def _per_class(
    y_true: np.ndarray, y_pred: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of every class id 0..k-1 (0 where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(k)), zero_division=0
    )
    return precision, recall, f1, support


def _weighted(values: np.ndarray, support: np.ndarray) -> float:
    return float(np.average(values, weights=support)) if support.sum() else 0.0


def _per_class_dict(
    names: list[str], precision: np.ndarray, recall: np.ndarray, f1: np.ndarray, support: np.ndarray
) -> dict[str, dict[str, float]]:
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }


def macro_f1(labels: Sequence[int], predicted: Sequence[int], num_classes: int) -> float:
    """Unweighted mean F1 over class ids 0..num_classes-1 (a class never true nor predicted scores 0)."""
    return float(np.mean(_per_class(np.asarray(labels), np.asarray(predicted), num_classes)[2]))


def _multiclass_metrics(
    labels: Sequence[int],
    proba: np.ndarray,
    texts: Sequence[str] | None,
    word_counts: np.ndarray | None,
    class_names: Sequence[str] | None,
) -> ClassificationMetrics:
    """The N-class scores: accuracy, macro/weighted F1, per class, k × k confusion matrix, OvR ROC-AUC."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    k = proba.shape[1]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for {k} probability columns")
    y_true = np.asarray(labels, dtype=int)
    y_pred = predicted_ids(proba)
    precision, recall, f1, support = _per_class(y_true, y_pred, k)
    roc_auc = None
    if len(y_true) and len(set(y_true.tolist())) == k:  # OvR AUC needs every class among the true labels
        rows = proba
        if not np.allclose(proba.sum(axis=1), 1.0):  # scikit-learn wants rows summing to 1; rescaling rows
            rows = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)  # that do would break ties
        roc_auc = float(
            roc_auc_score(y_true, rows, multi_class="ovr", average="macro", labels=list(range(k)))
        )
    slices = _length_slices(y_true, y_pred, texts, word_counts, lambda t, p: macro_f1(t, p, k))
    return ClassificationMetrics(
        accuracy=float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        f1=float(np.mean(f1)),
        precision=float(np.mean(precision)),
        recall=float(np.mean(recall)),
        roc_auc=roc_auc,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=list(range(k))).tolist(),
        n=int(len(y_true)),
        slices=slices,
        macro_f1=float(np.mean(f1)),
        weighted_f1=_weighted(f1, support),
        labels=names,
        per_class=_per_class_dict(names, precision, recall, f1, support),
    )


def plot_confusion_matrix(
    matrix: list[list[int]], title: str, path: Path, class_names: Sequence[str] | None = None
) -> None:
    """Save the k × k confusion matrix (rows true, columns predicted) as a PNG, axes labelled by class name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(matrix)
    k = values.shape[0]
    names: list[Any] = (
        list(class_names)
        if class_names is not None
        else (list(BINARY_NAMES) if k == 2 else [str(i) for i in range(k)])
    )
    size = (3.6, 3.2) if k == 2 else (1.6 + 0.9 * k, 1.2 + 0.8 * k)
    fig, ax = plt.subplots(figsize=size, dpi=120)
    ax.imshow(values, cmap="Blues")
    for (row, col), value in np.ndenumerate(values):
        ax.text(col, row, str(value), ha="center", va="center")
    ax.set_xticks(
        list(range(k)), labels=names, rotation=0 if k == 2 else 45, ha="center" if k == 2 else "right"
    )
    ax.set_yticks(list(range(k)), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def format_table(rows: dict[str, dict[str, float]], columns: Sequence[str]) -> str:
    """A plain-text table: one row per model, one column per metric."""
    width = max([len("model"), *map(len, rows)]) + 2
    cell = max([11, *(len(c) + 2 for c in columns)])
    lines = ["model".ljust(width) + "".join(c.rjust(cell) for c in columns)]
    for name, values in rows.items():
        cells = "".join(
            (f"{values[c]:.4f}" if isinstance(values.get(c), float) else str(values.get(c, "-"))).rjust(cell)
            for c in columns
        )
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)
