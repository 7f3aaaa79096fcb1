"""Text descriptors and prediction features, computed here (offline) rather than by Evidently's NLTK ones.

- ``length_chars``, ``word_count``: size of the input.
- ``oov_rate``: share of a text's tokens absent from the training vocabulary. For the reference rows, which
  *are* the training data, a token counts as out-of-vocabulary when no other training text contains it
  (leave-one-out): otherwise the reference OOV rate would be 0 by construction and any live traffic would
  look drifted.
- ``non_ascii_share``: share of characters outside ASCII (encoding problems, other languages, emoji).
- ``probability`` (positive class; binary tasks only), ``confidence`` (max-class probability),
  ``predicted_label`` (the predicted class name: the class mix).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.common.labels import predicted_ids

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
DESCRIPTORS = ("length_chars", "word_count", "oov_rate", "non_ascii_share")
PREDICTION_FEATURES = ("probability", "confidence")
CATEGORICAL_FEATURES = ("predicted_label",)
TEXT_FEATURE = "text"
BINARY_LABELS = ("negative", "positive")


@dataclass(frozen=True)
class Predictions:
    """Per-row predictions as monitoring sees them: class name, max-class probability, and P(positive)
    for a binary task (None otherwise)."""

    label: np.ndarray
    confidence: np.ndarray
    probability: np.ndarray | None = None

    @classmethod
    def from_binary(cls, probabilities: Sequence[float] | np.ndarray) -> Predictions:
        """Binary sentiment: P(positive) per row (>= 0.5 is positive, as serving labels it)."""
        proba = np.asarray(probabilities, dtype=float)
        label = np.where(proba >= 0.5, BINARY_LABELS[1], BINARY_LABELS[0]).astype(object)
        return cls(label, np.maximum(proba, 1.0 - proba), proba)

    @classmethod
    def from_matrix(cls, names: Sequence[str], proba: np.ndarray) -> Predictions:
        """(n, k) class probabilities in ``names`` order; binary names keep the binary features."""
        proba = np.asarray(proba, dtype=float)
        if proba.ndim != 2 or proba.shape[1] != len(names):
            raise ValueError(f"probabilities of shape {proba.shape} do not match {len(names)} class names")
        if tuple(names) == BINARY_LABELS:
            return cls.from_binary(proba[:, 1])
        label = np.asarray(names, dtype=object)[predicted_ids(proba)] if len(proba) else np.zeros(0, object)
        return cls(label, proba.max(axis=1) if len(proba) else np.zeros(0))

    @classmethod
    def from_dicts(cls, rows: Iterable[Mapping[str, float]]) -> Predictions:
        """Rows of {class name: probability} (payload log ``probabilities``, a reference column)."""
        rows = list(rows)
        names = list(dict.fromkeys(name for row in rows for name in row))
        proba = np.array([[float(row.get(name, 0.0)) for name in names] for row in rows], dtype=float)
        return cls.from_matrix(tuple(names), proba.reshape(len(rows), len(names)))


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (the same rule for the vocabulary and for live texts)."""
    return TOKEN.findall(text.lower())


class Vocabulary:
    """Training vocabulary with document frequencies (for leave-one-out OOV on the training texts)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.document_frequency: Counter[str] = Counter()
        for text in texts:
            self.document_frequency.update(set(tokenize(text)))

    def __len__(self) -> int:
        return len(self.document_frequency)

    def oov_rate(self, texts: Sequence[str], leave_one_out: bool = False) -> np.ndarray:
        """Per text, the share of tokens not in the vocabulary (0 for a text without tokens).

        With ``leave_one_out`` the texts must be the vocabulary's own texts: a token seen in only one
        document (this one) counts as out-of-vocabulary.
        """
        floor = 1 if leave_one_out else 0
        df = self.document_frequency
        out = np.zeros(len(texts), dtype=float)
        for i, text in enumerate(texts):
            tokens = tokenize(text)
            if tokens:
                out[i] = sum(1 for t in tokens if df.get(t, 0) <= floor) / len(tokens)
        return out


def non_ascii_share(texts: pd.Series) -> np.ndarray:
    """Per text, the share of characters with a code point above 127."""
    lengths = texts.str.len().to_numpy(dtype=float)
    non_ascii = texts.str.count(r"[^\x00-\x7f]").to_numpy(dtype=float)
    return np.divide(non_ascii, lengths, out=np.zeros_like(lengths), where=lengths > 0)


def build_features(
    texts: Sequence[str],
    probabilities: Sequence[float] | np.ndarray | Predictions | None,
    vocabulary: Vocabulary,
    leave_one_out: bool = False,
) -> pd.DataFrame:
    """One row per text: descriptors, prediction features (when predictions are known) and the text.

    ``probabilities``: binary P(positive) per row, or ``Predictions`` for any number of classes.
    """
    series = pd.Series(list(texts), dtype=object).astype(str)
    frame = pd.DataFrame(
        {
            "length_chars": series.str.len().astype(float),
            "word_count": series.str.split().str.len().fillna(0).astype(float),
            "oov_rate": vocabulary.oov_rate(series.tolist(), leave_one_out=leave_one_out),
            "non_ascii_share": non_ascii_share(series),
        }
    )
    if probabilities is not None:
        predictions = (
            probabilities
            if isinstance(probabilities, Predictions)
            else Predictions.from_binary(probabilities)
        )
        if predictions.probability is not None:
            frame["probability"] = predictions.probability
        frame["confidence"] = predictions.confidence
        frame["predicted_label"] = predictions.label
    frame[TEXT_FEATURE] = series
    return frame
