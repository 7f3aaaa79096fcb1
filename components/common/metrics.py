"""Classification metrics used by training and evaluation, so every model is scored the same way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# Slices by whitespace-token count: (name, min inclusive, max exclusive).
LENGTH_SLICES: tuple[tuple[str, int, int], ...] = (
    ("short_lt10", 0, 10),
    ("medium_10_25", 10, 25),
    ("long_ge25", 25, 10**9),
)


@dataclass
class ClassificationMetrics:
    """Scores of one model on one split."""

    accuracy: float
    f1: float
    precision: float
    recall: float
    roc_auc: float | None
    confusion_matrix: list[list[int]]
    n: int
    slices: dict[str, dict[str, float]] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The scalar metrics, for MLflow and tables."""
        values = {
            "accuracy": self.accuracy,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
        }
        if self.roc_auc is not None:
            values["roc_auc"] = self.roc_auc
        return values

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def classification_metrics(
    labels: Sequence[int],
    positive_proba: np.ndarray,
    texts: Sequence[str] | None = None,
    threshold: float = 0.5,
    word_counts: np.ndarray | None = None,
) -> ClassificationMetrics:
    """Accuracy, F1, precision, recall, ROC-AUC, confusion matrix and (with texts, or their whitespace-token
    counts when the texts were streamed) per-length-slice scores."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = np.asarray(labels, dtype=int)
    y_pred = (np.asarray(positive_proba) >= threshold).astype(int)
    roc_auc = float(roc_auc_score(y_true, positive_proba)) if len(set(y_true.tolist())) == 2 else None
    slices: dict[str, dict[str, float]] = {}
    if texts is not None:
        word_counts = np.array([len(t.split()) for t in texts])
    if word_counts is not None:
        lengths = np.asarray(word_counts)
        for name, lo, hi in LENGTH_SLICES:
            mask = (lengths >= lo) & (lengths < hi)
            if mask.any():
                slices[name] = {
                    "n": int(mask.sum()),
                    "accuracy": float(accuracy_score(y_true[mask], y_pred[mask])),
                    "f1": float(f1_score(y_true[mask], y_pred[mask], zero_division=0)),
                }
    return ClassificationMetrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1=float(f1_score(y_true, y_pred, zero_division=0)),
        precision=float(precision_score(y_true, y_pred, zero_division=0)),
        recall=float(recall_score(y_true, y_pred, zero_division=0)),
        roc_auc=roc_auc,
        confusion_matrix=confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist(),
        n=int(len(y_true)),
        slices=slices,
    )


def plot_confusion_matrix(matrix: list[list[int]], title: str, path: Path) -> None:
    """Save the confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=120)
    ax.imshow(np.asarray(matrix), cmap="Blues")
    for (row, col), value in np.ndenumerate(np.asarray(matrix)):
        ax.text(col, row, str(value), ha="center", va="center")
    ax.set_xticks([0, 1], labels=["negative", "positive"])
    ax.set_yticks([0, 1], labels=["negative", "positive"])
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
