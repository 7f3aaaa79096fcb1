"""Dataset I/O for the Rotten Tomatoes polarity data: load from any source, clean, split, hash, subsample.

Canonical frame: columns ``text`` (str), ``label`` (int 0/1), ``split`` (train/validation/test).
Sources: a local CSV/parquet path, a ``gs://`` (or any fsspec) URI, a Hugging Face hub id
(``hf://cornell-movie-review-data/rotten_tomatoes`` or the bare id), or the Kaggle
"Rotten Tomatoes movies and critic reviews" CSV (``review_content`` + ``review_type`` Fresh/Rotten).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.settings import ComponentError

SPLITS = ("train", "validation", "test")
SMOKE_FRACTION = 0.009  # under 1% of the rows, for CI
HUB_DATASET_ID = "cornell-movie-review-data/rotten_tomatoes"
KAGGLE_TEXT_COLUMN = "review_content"
KAGGLE_LABEL_COLUMN = "review_type"
KAGGLE_LABELS = {"fresh": 1, "rotten": 0}
_WHITESPACE = re.compile(r"\s+")
# C0/C1 control characters other than whitespace: left over from mis-decoded cp1252 bytes.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class DataError(ComponentError):
    """The data could not be read into the canonical frame."""


@dataclass(frozen=True)
class SplitFractions:
    """Fractions for a deterministic split when the source has none (train gets the rest)."""

    validation: float = 0.1
    test: float = 0.1


@dataclass(frozen=True)
class DatasetSummary:
    """What a run used: the content hash (dataset version) and the rows per split and label."""

    dataset_hash: str
    rows: int
    split_sizes: dict[str, int]
    positive_share: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _is_hub_id(uri: str) -> bool:
    if uri.startswith("hf://"):
        return True
    has_scheme = "://" in uri
    looks_like_file = Path(uri).suffix.lower() in {".csv", ".parquet", ".pq", ".tsv"}
    return not has_scheme and not looks_like_file and uri.count("/") == 1 and not Path(uri).exists()


def _read_bytes(uri: str) -> bytes:
    import fsspec

    try:
        with fsspec.open(uri, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise DataError(f"dataset not found: {uri}") from exc
    except Exception as exc:  # network/auth errors from gcsfs et al.
        raise DataError(f"cannot read dataset {uri}: {type(exc).__name__}: {exc}") from exc


def _read_table(uri: str) -> pd.DataFrame:
    raw = _read_bytes(uri)
    if uri.lower().endswith((".parquet", ".pq")):
        return pd.read_parquet(io.BytesIO(raw))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{uri} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-encode it as UTF-8"
        ) from exc
    sep = "\t" if uri.lower().endswith(".tsv") else ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[])
    except pd.errors.ParserError as exc:
        raise DataError(f"{uri} is not a well-formed CSV: {exc}".splitlines()[0]) from exc


def _read_hub(uri: str) -> pd.DataFrame:
    import datasets

    dataset_id = uri.removeprefix("hf://")
    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as exc:  # offline, unknown id, auth
        raise DataError(f"cannot load hub dataset {dataset_id!r}: {type(exc).__name__}: {exc}") from exc
    frames = []
    for split_name, split in loaded.items():
        frame = split.to_pandas()
        frame["split"] = "validation" if split_name in {"valid", "dev"} else split_name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _from_kaggle(frame: pd.DataFrame) -> pd.DataFrame:
    labels = frame[KAGGLE_LABEL_COLUMN].astype(str).str.strip().str.lower().map(KAGGLE_LABELS)
    return pd.DataFrame({"text": frame[KAGGLE_TEXT_COLUMN], "label": labels})


def read_raw(uri: str) -> pd.DataFrame:
    """Read a source into ``text``/``label`` (+ ``split`` when present) columns without cleaning.

    Labels stay as given (strings from CSV) so that validation sees the data as it arrived.
    """
    frame = _read_hub(uri) if _is_hub_id(uri) else _read_table(uri)
    frame.columns = [str(c).strip() for c in frame.columns]
    if KAGGLE_TEXT_COLUMN in frame.columns and KAGGLE_LABEL_COLUMN in frame.columns:
        frame = _from_kaggle(frame)
    keep = [c for c in ("text", "label", "split") if c in frame.columns]
    return frame[keep].copy() if keep else frame


def normalise_text(text: str) -> str:
    """NFC-normalise, drop control characters and collapse whitespace."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def assign_splits(frame: pd.DataFrame, seed: int, fractions: SplitFractions) -> pd.DataFrame:
    """Deterministic, label-stratified split for sources that ship without one."""
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=frame.index, dtype=object)
    for _, group in frame.groupby("label", sort=True):
        order = rng.permutation(group.index.to_numpy())
        n_test = int(round(len(order) * fractions.test))
        n_val = int(round(len(order) * fractions.validation))
        split.loc[order[:n_test]] = "test"
        split.loc[order[n_test : n_test + n_val]] = "validation"
    out = frame.copy()
    out["split"] = split
    return out


def clean(frame: pd.DataFrame, seed: int = 42, fractions: SplitFractions | None = None) -> pd.DataFrame:
    """Canonical frame: normalised text, int labels, no empty or duplicate texts, a split for every row.

    Duplicates are dropped keeping the first occurrence, except texts seen with both labels: those are
    ambiguous and dropped entirely.
    """
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise DataError(f"missing required column(s): {', '.join(sorted(missing))}")
    out = frame.copy()
    out["text"] = out["text"].fillna("").astype(str).map(normalise_text)
    out["label"] = pd.to_numeric(out["label"], errors="coerce")
    out = out[(out["text"] != "") & out["label"].isin([0, 1])]
    out["label"] = out["label"].astype(int)
    conflicting = out.groupby("text")["label"].nunique()
    out = out[~out["text"].isin(conflicting[conflicting > 1].index)]
    out = out.drop_duplicates(subset="text", keep="first")
    if "split" in out.columns:
        out["split"] = out["split"].astype(str).str.strip().str.lower().replace({"valid": "validation"})
        out = out[out["split"].isin(SPLITS)]
    else:
        out = assign_splits(out, seed, fractions or SplitFractions())
    return out[["text", "label", "split"]].reset_index(drop=True)


def dataset_hash(frame: pd.DataFrame) -> str:
    """Content hash of the exact rows used (order included): the dataset version recorded in MLflow."""
    digest = hashlib.sha256()
    for text, label, split in frame[["text", "label", "split"]].itertuples(index=False):
        digest.update(f"{split}\t{label}\t{text}\n".encode())
    return "sha256:" + digest.hexdigest()


def summarise(frame: pd.DataFrame) -> DatasetSummary:
    """Hash and per-split counts of a canonical frame."""
    sizes = {name: int((frame["split"] == name).sum()) for name in SPLITS}
    return DatasetSummary(
        dataset_hash=dataset_hash(frame),
        rows=len(frame),
        split_sizes=sizes,
        positive_share=float(frame["label"].mean()) if len(frame) else 0.0,
    )


def smoke_subset(frame: pd.DataFrame, fraction: float = SMOKE_FRACTION, seed: int = 42) -> pd.DataFrame:
    """Stratified (by split and label) sample of under 1% of the rows, at least 4 per stratum."""
    parts = []
    for _, group in frame.groupby(["split", "label"], sort=True):
        n = max(4, int(len(group) * fraction))
        parts.append(group.sample(n=min(n, len(group)), random_state=seed))
    return pd.concat(parts).sort_index().reset_index(drop=True)


def load_split(path: str | Path, split: str) -> pd.DataFrame:
    """Read one split of a validated dataset artifact (the parquet written by ``validate``)."""
    frame = read_validated(path)
    return frame[frame["split"] == split].reset_index(drop=True)


def read_validated(path: str | Path) -> pd.DataFrame:
    """Read the validated, canonical dataset artifact."""
    import fsspec

    try:
        with fsspec.open(str(path), "rb") as handle:
            return pd.read_parquet(handle)
    except FileNotFoundError as exc:
        raise DataError(f"validated dataset not found: {path} (run validate first)") from exc


def write_validated(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the canonical frame as parquet, atomically for local paths."""
    from components.common.artifacts import atomic_write_bytes

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())
