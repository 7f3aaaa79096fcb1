"""A task's classes: an ordered tuple of names, index = class id. Binary sentiment is the default.

The label map is stored by ``validate`` next to the validated dataset (``label_map.json``) and carried in a
model's metadata as ``labels: [names...]`` (absent = binary, for models older than label maps).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from components.common.settings import ComponentError

BINARY_NAMES = ("negative", "positive")
LABEL_MAP_FILE = "label_map.json"
# Prometheus label values for classes: serving's metrics and the drift job's push bound them the same way.
OTHER_LABEL = "other"
DEFAULT_MAX_METRIC_CLASSES = 20


class LabelMapError(ComponentError):
    """The declared classes are malformed, or a label is not one of them."""


@dataclass(frozen=True)
class LabelMap:
    """The classes of a task, in id order: ``names[i]`` is the name of class ``i``."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        names = tuple(str(n).strip() for n in self.names)
        object.__setattr__(self, "names", names)
        if len(names) < 2:
            raise LabelMapError(f"a label map needs at least 2 classes, got {list(names)}")
        if any(not n for n in names):
            raise LabelMapError(f"class names must not be empty: {list(names)}")
        if len(set(names)) != len(names):
            raise LabelMapError(f"class names must be unique: {list(names)}")
        # An integer-looking name must be its own id, or "1" would mean two different classes.
        clashing = [n for i, n in enumerate(names) if _as_int(n) is not None and _as_int(n) != i]
        if clashing:
            raise LabelMapError(f"a numeric class name must equal its id (0-based): {clashing}")

    @classmethod
    def binary(cls) -> LabelMap:
        """The default task: ("negative", "positive"), ids 0 and 1."""
        return cls(BINARY_NAMES)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def is_binary(self) -> bool:
        """True for the default binary sentiment map (the one that keeps today's behaviour everywhere)."""
        return self.names == BINARY_NAMES

    def index(self, value: str | int) -> int:
        """The id of a class given by name or by id (int or integer string); LabelMapError if unknown."""
        found = self._lookup(value)
        if found is None:
            raise LabelMapError(f"label {value!r} is not one of the declared classes {list(self.names)}")
        return found

    def name(self, index: int) -> str:
        """The name of class ``index``."""
        if not 0 <= int(index) < self.num_classes:
            raise LabelMapError(f"class id {index} is outside 0..{self.num_classes - 1}")
        return self.names[int(index)]

    def _lookup(self, value: Any) -> int | None:
        if isinstance(value, str):
            text = value.strip()
            if text in self._ids:
                return self._ids[text]
            lowered = {n.lower(): i for i, n in enumerate(self.names)}
            if text.lower() in lowered:
                return lowered[text.lower()]
        number = _as_int(value)
        return number if number is not None and 0 <= number < self.num_classes else None

    @property
    def _ids(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def encode(self, labels: pd.Series) -> pd.Series:
        """Class ids (float, NaN where a label is not a declared class) of a column of names or ids."""
        uniques = pd.unique(labels.astype(object))
        mapping = {u: self._lookup(u) for u in uniques}
        ids = labels.astype(object).map(lambda v: mapping.get(v))
        return pd.to_numeric(ids, errors="coerce").astype(float)

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "num_classes": self.num_classes}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): what ``label_map.json`` holds and what its hash covers."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabelMap:
        """Parse ``label_map.json``: ``{"names": [...]}`` or a bare list of names."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LabelMapError(f"label map is not valid JSON: {exc.msg}") from exc
        names = value.get("names") if isinstance(value, dict) else value
        if not isinstance(names, list):
            raise LabelMapError('label map JSON must be {"names": [...]} or a list of names')
        return cls(tuple(str(n) for n in names))

    def sha256(self) -> str:
        """``sha256:<hex>`` of :meth:`to_json`."""
        return "sha256:" + hashlib.sha256(self.to_json().encode()).hexdigest()


def _as_int(value: Any) -> int | None:
    """``value`` as an int when it is integral (1, "1", "1.0", 1.0), else None."""
    if value is None:
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if np.isfinite(number) and number == int(number) else None


def parse_names(spec: str) -> LabelMap:
    """``"negative,positive"`` → a label map (names in id order, comma-separated)."""
    return LabelMap(tuple(n for n in (part.strip() for part in spec.split(",")) if n))


def read_label_map(uri: str) -> LabelMap:
    """Read a ``label_map.json`` from a local path or fsspec URI."""
    import fsspec

    try:
        with fsspec.open(uri, "r") as handle:
            return LabelMap.from_json(handle.read())
    except FileNotFoundError as exc:
        raise LabelMapError(f"label map not found: {uri}") from exc
    except (OSError, ValueError, ImportError) as exc:  # fsspec backends: network, auth, unknown protocol
        raise LabelMapError(f"cannot read label map {uri}: {type(exc).__name__}: {exc}") from exc


def resolve(labels: str = "", label_map: str = "") -> LabelMap:
    """The task's label map from its settings: a JSON path/URI wins, then comma-separated names, else binary."""
    if label_map.strip():
        return read_label_map(label_map.strip())
    if labels.strip():
        return parse_names(labels)
    return LabelMap.binary()


def validated_label_map(validated_dir: str) -> LabelMap:
    """The label map ``validate`` stored beside the dataset; binary when there is none (older artifacts)."""
    try:
        return read_label_map(f"{str(validated_dir).rstrip('/')}/{LABEL_MAP_FILE}")
    except LabelMapError as exc:
        if "not found" in str(exc):
            return LabelMap.binary()
        raise


def as_matrix(proba: np.ndarray) -> np.ndarray:
    """Class probabilities as an (n, k) matrix; a 1-D vector is P(positive) of a binary model → [1 - p, p]."""
    values = np.asarray(proba, dtype=float)
    if values.ndim == 1:
        return np.column_stack([1.0 - values, values])
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"probabilities must be (n,) or (n, k>=2), got shape {values.shape}")
    return values


def predicted_ids(proba: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Predicted class ids: binary (1-D, or two columns) thresholds P(positive); N classes take the argmax."""
    values = np.asarray(proba, dtype=float)
    if values.ndim == 1:
        return (values >= threshold).astype(int)
    if values.shape[1] == 2:
        return (values[:, 1] >= threshold).astype(int)
    return np.argmax(values, axis=1).astype(int)


def metric_label(name: str, index: int, max_classes: int = DEFAULT_MAX_METRIC_CLASSES) -> str:
    """The Prometheus label value of class ``index`` (named ``name``): the name for the first
    ``max_classes`` classes by id, ``other`` beyond, so a task with many classes cannot explode the series."""
    return name if index < max_classes else OTHER_LABEL
