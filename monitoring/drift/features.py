"""Text descriptors and prediction features, computed here (offline) rather than by Evidently's NLTK ones.

- ``length_chars``, ``word_count``: size of the input.
- ``oov_rate``: share of a text's tokens absent from the training vocabulary. For the reference rows, which
  *are* the training data, a token counts as out-of-vocabulary when no other training text contains it
  (leave-one-out): otherwise the reference OOV rate would be 0 by construction and any live traffic would
  look drifted.
- ``non_ascii_share``: share of characters outside ASCII (encoding problems, other languages, emoji).
- ``probability`` (positive class), ``confidence`` (max-class probability), ``predicted_label``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
DESCRIPTORS = ("length_chars", "word_count", "oov_rate", "non_ascii_share")
PREDICTION_FEATURES = ("probability", "confidence")
CATEGORICAL_FEATURES = ("predicted_label",)
TEXT_FEATURE = "text"


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
    probabilities: Sequence[float] | np.ndarray | None,
    vocabulary: Vocabulary,
    leave_one_out: bool = False,
) -> pd.DataFrame:
    """One row per text: descriptors, prediction features (when probabilities are known) and the text."""
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
        proba = np.asarray(probabilities, dtype=float)
        frame["probability"] = proba
        frame["confidence"] = np.maximum(proba, 1.0 - proba)
        frame["predicted_label"] = np.where(proba >= 0.5, "positive", "negative")
    frame[TEXT_FEATURE] = series
    return frame
