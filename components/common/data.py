"""Dataset I/O for text classification (default: Rotten Tomatoes polarity): load, clean, split, hash, subsample.

Canonical frame: columns ``text`` (str), ``label`` (int class id, 0/1 for binary sentiment), ``split``
(train/validation/test). Source labels may be class ids or class names of the task's label map.
Sources: a local CSV/parquet path, a ``gs://`` (or any fsspec) URI, a Hugging Face hub id
(``hf://cornell-movie-review-data/rotten_tomatoes`` or the bare id), or the Kaggle
"Rotten Tomatoes movies and critic reviews" CSV (``review_content`` + ``review_type`` Fresh/Rotten).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common.labels import LabelMap
from components.common.settings import ComponentError

SPLITS = ("train", "validation", "test")
SMOKE_FRACTION = 0.009  # under 1% of the rows, for CI
PARQUET_ROW_GROUP = 65_536
# Arrow's reader threads on a Python file object can outlive the interpreter: ~1 exit in 4 then aborted with
# "terminate called without an active exception" (pyarrow 25, measured). Read on the calling thread.
PARQUET_READ = {"use_threads": False, "pre_buffer": False}
HUB_DATASET_ID = "cornell-movie-review-data/rotten_tomatoes"
KAGGLE_TEXT_COLUMN = "review_content"
KAGGLE_LABEL_COLUMN = "review_type"
KAGGLE_LABELS = {"fresh": 1, "rotten": 0}
KAGGLE_GROUP_COLUMN = "rotten_tomatoes_link"
KAGGLE_SCORE_COLUMN = "review_score"
# Where the Kaggle loader takes the label from: the Fresh/Rotten type (binary) or the critic's score (5 classes).
KAGGLE_LABEL_SOURCES = ("review_type", "review_score")
# Fine-grained classes from ``review_score``: the score normalised to 0..1, bucket = ceil(5 * score), 0 → 1.
KAGGLE_SCORE_CLASSES = ("score-1", "score-2", "score-3", "score-4", "score-5")
# Letter grades on a 0-4 grade-point scale (A+ capped at 4), normalised by 4.
LETTER_GRADES = {
    "A+": 4.0, "A": 4.0, "A-": 3.7, "B+": 3.3, "B": 3.0, "B-": 2.7, "C+": 2.3, "C": 2.0, "C-": 1.7,
    "D+": 1.3, "D": 1.0, "D-": 0.7, "F": 0.0,
}  # fmt: skip
_FRACTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/|out\s+of|of)\s*(\d+(?:\.\d+)?)\s*$", re.IGNORECASE)
CANONICAL_COLUMNS = ("text", "label", "split", "group")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".xz")
# Picks the columns to read from a table's column names.
ColumnSelector = Callable[[list[str]], list[str]]
# Why a row is dropped before the gate, in the order they are checked (a row gets the first that applies).
DROP_REASONS = (
    "empty",
    "invalid_label",
    "invalid_split",
    "too_short",
    "too_long",
    "conflicting_label",
    "duplicate",
)
# Signs of UTF-8 text decoded as cp1252/latin-1 ("â€™", "Ã©") and of HTML entities ("&amp;", "&#39;").
_MOJIBAKE = re.compile("\u00e2\u20ac|\u00c3[\u0080-\u00bf\u0152-\u2122]|\u00c2[\u00a0-\u00bf]")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
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
        with fsspec.open(uri, "rb", compression="infer") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise DataError(f"dataset not found: {uri}") from exc
    except Exception as exc:  # network/auth errors from gcsfs et al.
        raise DataError(f"cannot read dataset {uri}: {type(exc).__name__}: {exc}") from exc


def _open(uri: str) -> Any:
    """A binary handle on ``uri``, decompressed when its name ends in a compression suffix."""
    import fsspec

    try:
        return fsspec.open(uri, "rb", compression="infer").open()
    except FileNotFoundError as exc:
        raise DataError(f"dataset not found: {uri}") from exc
    except Exception as exc:  # network/auth errors from gcsfs et al.
        raise DataError(f"cannot read dataset {uri}: {type(exc).__name__}: {exc}") from exc


def _wanted_columns(columns: list[str]) -> list[str]:
    """The source columns the canonical frame needs (all of them when the layout is unknown)."""
    if KAGGLE_TEXT_COLUMN in columns and KAGGLE_LABEL_COLUMN in columns:
        wanted = (KAGGLE_TEXT_COLUMN, KAGGLE_LABEL_COLUMN, KAGGLE_GROUP_COLUMN, KAGGLE_SCORE_COLUMN)
        return [c for c in wanted if c in columns]
    if {"text", "label"} <= set(columns):
        return [c for c in CANONICAL_COLUMNS if c in columns]
    return columns


def _utf8_error(uri: str) -> DataError:
    raw = _read_bytes(uri)
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return DataError(
            f"{uri} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-encode it as UTF-8"
        )
    return DataError(f"{uri} is not valid UTF-8; re-encode it as UTF-8")


def _csv_header(uri: str, sep: str) -> list[str]:
    """The file's column names as written (unstripped); an empty file is refused."""
    with _open(uri) as handle:
        header = handle.readline().decode("utf-8-sig", errors="replace")
    try:
        return next(csv.reader([header], delimiter=sep))
    except StopIteration:
        raise DataError(f"{uri} is empty") from None


def _csv_options(sep: str, include: list[str]) -> tuple[Any, Any]:
    """Arrow's parse and convert options: quoted newlines allowed, the ``include`` columns read as verbatim
    strings (never null)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=sep, newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        include_columns=include,
        column_types={c: pa.string() for c in include},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return parse, convert


def _csv_error(uri: str, exc: Exception) -> DataError:
    if "invalid UTF8" in str(exc):
        return _utf8_error(uri)
    return DataError(f"{uri} is not a well-formed CSV: {str(exc).splitlines()[0]}")


def _read_csv(uri: str, sep: str, select: ColumnSelector | None) -> pd.DataFrame:
    """Read the selected columns, as strings, with Arrow's multi-threaded reader (1 M rows in seconds)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    raw = _csv_header(uri, sep)
    columns = [c.strip() for c in raw]
    wanted = select(columns) if select else columns
    by_stripped = {c.strip(): c for c in raw}
    include = [by_stripped[c] for c in wanted]
    parse, convert = _csv_options(sep, include)
    try:
        with _open(uri) as handle:
            table = pacsv.read_csv(handle, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise _csv_error(uri, exc) from exc
    frame = table.to_pandas()
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def read_parquet(handle: Any, columns: list[str] | None = None) -> Any:
    """A parquet file's table (``columns``: all when None) from a Python file object, read on the calling
    thread (see ``PARQUET_READ``: Arrow's reader threads on such a handle can abort the interpreter)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(handle, pre_buffer=False).read(columns=columns, use_threads=False)


def _table_format(uri: str) -> str:
    """``parquet``, ``jsonl``, ``tsv`` or ``csv``, from the name without its compression suffix."""
    lower = uri.lower()
    for suffix in COMPRESSION_SUFFIXES:
        lower = lower.removesuffix(suffix)
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "tsv" if lower.endswith(".tsv") else "csv"


def read_table(uri: str, select: ColumnSelector | None = None) -> pd.DataFrame:
    """Read CSV, TSV, parquet or JSON lines (optionally .gz/.bz2/.zst/.xz) from a local path or fsspec URI.

    CSV/TSV values stay strings, verbatim. ``select`` picks the columns to read from the file's columns
    (default: all of them).
    """
    kind = _table_format(uri)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with _open(uri) as handle:
            parquet = pq.ParquetFile(handle, pre_buffer=False)  # on this thread: see PARQUET_READ
            names = parquet.schema_arrow.names
            return parquet.read(columns=select(names) if select else names, use_threads=False).to_pandas()
    if kind == "jsonl":
        try:
            frame = pd.read_json(io.BytesIO(_read_bytes(uri)), lines=True, dtype=False)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{uri} is not well-formed JSON lines: {str(exc).splitlines()[0]}") from exc
        return frame[select([str(c) for c in frame.columns])] if select else frame
    return _read_csv(uri, "\t" if kind == "tsv" else ",", select)


def _rechunk(batches: Iterator[Any], rows: int) -> Iterator[pd.DataFrame]:
    """Arrow record batches regrouped into frames of exactly ``rows`` rows (the last one may be shorter)."""
    import pyarrow as pa

    pending: list[Any] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == rows:
                yield pa.Table.from_batches(pending).to_pandas()
                pending, held = [], 0
    if held:
        yield pa.Table.from_batches(pending).to_pandas()


def _csv_batches(uri: str, sep: str) -> Iterator[Any]:
    """Arrow record batches of the whole CSV/TSV, read as ``_read_csv`` reads it (column names stripped)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse, convert = _csv_options(sep, _csv_header(uri, sep))
    with _open(uri) as handle:
        try:
            for batch in pacsv.open_csv(handle, parse_options=parse, convert_options=convert):
                yield batch.rename_columns([str(c).strip() for c in batch.schema.names])
        except pa.ArrowInvalid as exc:
            raise _csv_error(uri, exc) from exc


def iter_table_chunks(uri: str, rows: int) -> Iterator[pd.DataFrame]:
    """``read_table``'s frame, streamed in chunks of ``rows`` rows (memory bounded by one chunk); same
    formats and the same verbatim strings."""
    if rows < 1:
        raise DataError(f"chunk size must be >= 1 row, got {rows}")
    kind = _table_format(uri)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with _open(uri) as handle:
            parquet = pq.ParquetFile(handle, pre_buffer=False)  # on this thread: see PARQUET_READ
            batches = parquet.iter_batches(batch_size=min(rows, PARQUET_ROW_GROUP), use_threads=False)
            yield from _rechunk(batches, rows)
        return
    if kind == "jsonl":
        try:
            with _open(uri) as handle:
                yield from pd.read_json(handle, lines=True, dtype=False, chunksize=rows)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{uri} is not well-formed JSON lines: {str(exc).splitlines()[0]}") from exc
        return
    yield from _rechunk(_csv_batches(uri, "\t" if kind == "tsv" else ","), rows)


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


def parse_review_score(score: object) -> float | None:
    """A critic's score normalised to 0..1: "3/5", "8.5/10", "4 out of 5", letter grades "B+"; else None.

    Letter grades use :data:`LETTER_GRADES` / 4. A fraction above 1, a zero denominator, a bare number
    (its scale is unknown) or anything else is None.
    """
    if not isinstance(score, str):
        return None
    text = score.strip()
    grade = LETTER_GRADES.get(text.upper().replace(" ", ""))
    if grade is not None:
        return grade / 4.0
    match = _FRACTION.match(text)
    if not match:
        return None
    value, scale = float(match.group(1)), float(match.group(2))
    if scale <= 0 or value > scale:
        return None
    return value / scale


def score_class(score: object, classes: tuple[str, ...] = KAGGLE_SCORE_CLASSES) -> str | None:
    """The fine-grained class of a score: bucket ``ceil(k * normalised)`` (0 goes to the first), or None."""
    value = parse_review_score(score)
    if value is None:
        return None
    k = len(classes)
    bucket = int(np.ceil(round(value * k, 9)))  # round: 3/5 * 5 must be 3, not 3.0000000000000004
    return classes[min(max(bucket, 1), k) - 1]


def _from_kaggle(frame: pd.DataFrame, label_from: str = "review_type") -> pd.DataFrame:
    """Kaggle critic reviews: Fresh/Rotten become 1/0, or (``label_from="review_score"``) the score becomes a
    :data:`KAGGLE_SCORE_CLASSES` name. Anything else stays as given (marked), and is quarantined."""
    if label_from not in KAGGLE_LABEL_SOURCES:
        raise DataError(f"kaggle_label must be one of {', '.join(KAGGLE_LABEL_SOURCES)}, got {label_from!r}")
    if label_from == "review_score":
        if KAGGLE_SCORE_COLUMN not in frame.columns:
            raise DataError(f"kaggle_label review_score needs a {KAGGLE_SCORE_COLUMN!r} column")
        scores = frame[KAGGLE_SCORE_COLUMN].astype(object)
        classes = scores.map(score_class)
        # An unparseable score must not look like a class id ("3" alone): keep it visibly marked.
        unparsed = "unparsed review_score " + scores.astype(str).map(repr)
        out = pd.DataFrame(
            {"text": frame[KAGGLE_TEXT_COLUMN], "label": classes.where(classes.notna(), unparsed)}
        )
        if KAGGLE_GROUP_COLUMN in frame.columns:
            out["group"] = frame[KAGGLE_GROUP_COLUMN]
        return out
    given = frame[KAGGLE_LABEL_COLUMN].astype(str)
    labels = given.str.strip().str.lower().map(KAGGLE_LABELS)
    out = pd.DataFrame(
        {"text": frame[KAGGLE_TEXT_COLUMN], "label": labels.astype(object).where(labels.notna(), given)}
    )
    if KAGGLE_GROUP_COLUMN in frame.columns:
        out["group"] = frame[KAGGLE_GROUP_COLUMN]
    return out


def read_raw(uri: str, kaggle_label: str = "review_type") -> pd.DataFrame:
    """Read a source into ``text``/``label`` (+ ``split``, ``group`` when present) columns without cleaning.

    Labels stay as given (strings from CSV) so that validation sees the data as it arrived. ``group`` is the
    unit that must not straddle splits: the film (``rotten_tomatoes_link``) in the Kaggle layout, whose
    label comes from ``kaggle_label`` (see :func:`_from_kaggle`).
    """
    frame = _read_hub(uri) if _is_hub_id(uri) else read_table(uri, select=_wanted_columns)
    frame.columns = [str(c).strip() for c in frame.columns]
    if KAGGLE_TEXT_COLUMN in frame.columns and KAGGLE_LABEL_COLUMN in frame.columns:
        frame = _from_kaggle(frame, kaggle_label)
    keep = [c for c in CANONICAL_COLUMNS if c in frame.columns]
    return frame[keep].reset_index(drop=True) if keep else frame


def normalise_text(text: str) -> str:
    """Repair mojibake and HTML entities, NFC-normalise, drop control characters and collapse whitespace."""
    if _MOJIBAKE.search(text):
        text = _repair_mojibake(text)
    if "&" in text and _ENTITY.search(text):
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(" ", text)
    return " ".join(text.split())


def _repair_mojibake(text: str) -> str:
    """UTF-8 bytes that were decoded as cp1252 ("â€™" for "’"): re-encode and decode once, if that works."""
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
    return text


def normalise_texts(texts: pd.Series) -> pd.Series:
    """:func:`normalise_text` over a column (missing values become empty strings)."""
    values = texts.where(texts.notna(), "").astype(str)
    return pd.Series([normalise_text(t) for t in values.tolist()], index=texts.index, dtype=object)


def _group_keys(frame: pd.DataFrame) -> pd.Series:
    """The group of every row; a row without one is a group of its own."""
    group = frame["group"].where(frame["group"].notna(), "").astype(str).str.strip()
    # (not a NUL prefix: pandas hashes object strings as C strings, so "\x00…" keys would all collide)
    alone = "<no group> row " + pd.Series(frame.index.astype(str), index=frame.index)
    return group.where(group != "", alone)


def assign_splits(frame: pd.DataFrame, seed: int, fractions: SplitFractions) -> pd.DataFrame:
    """Deterministic split for sources that ship without one.

    With a ``group`` column (the film) whole groups go to one split, so no film has reviews in two splits;
    groups are shuffled with ``seed`` and test, then validation take groups until they hold their fraction
    of the rows. Without groups: a label-stratified random split.
    """
    rng = np.random.default_rng(seed)
    out = frame.copy()
    if "group" in frame.columns:
        codes, uniques = pd.factorize(_group_keys(frame), sort=True)
        sizes = np.bincount(codes, minlength=len(uniques))
        order = rng.permutation(len(uniques))
        start = np.cumsum(sizes[order]) - sizes[order]
        n_test = int(round(len(frame) * fractions.test))
        n_val = int(round(len(frame) * fractions.validation))
        group_split = np.empty(len(uniques), dtype=object)
        group_split[order] = np.where(
            start < n_test, "test", np.where(start < n_test + n_val, "validation", "train")
        )
        out["split"] = group_split[codes] if len(frame) else pd.Series([], dtype=object)
        return out
    split = pd.Series("train", index=frame.index, dtype=object)
    for _, group in frame.groupby("label", sort=True):
        order = rng.permutation(group.index.to_numpy())
        n_test = int(round(len(order) * fractions.test))
        n_val = int(round(len(order) * fractions.validation))
        split.loc[order[:n_test]] = "test"
        split.loc[order[n_test : n_test + n_val]] = "validation"
    out["split"] = split
    return out


@dataclass
class CleaningResult:
    """The cleaned rows and the quarantined ones, each quarantined row with the reason it was dropped."""

    cleaned: pd.DataFrame
    quarantine: pd.DataFrame
    input_rows: int

    @property
    def counts(self) -> dict[str, int]:
        found = self.quarantine["reason"].value_counts()
        return {reason: int(found.get(reason, 0)) for reason in DROP_REASONS}

    @property
    def shares(self) -> dict[str, float]:
        total = max(self.input_rows, 1)
        return {reason: count / total for reason, count in self.counts.items()}


def clean_rows(
    frame: pd.DataFrame, min_chars: int = 2, max_chars: int = 2000, label_map: LabelMap | None = None
) -> CleaningResult:
    """Normalise every text, then drop (to the quarantine, with a reason) what cannot be trained on.

    Labels (class ids or names of ``label_map``, default binary) become class ids; any other label is
    ``invalid_label``. Each dropped row gets the first reason that applies, in :data:`DROP_REASONS` order.
    A text seen with several labels keeps its majority label (one row); on a tie every copy is dropped as
    ``conflicting_label``. Of identical texts the first is kept, the others are ``duplicate``. Vectorised.
    """
    missing = {"text", "label"} - set(frame.columns)
    if missing:
        raise DataError(f"missing required column(s): {', '.join(sorted(missing))}")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    text = normalise_texts(frame["text"])
    label_map = label_map or LabelMap.binary()
    label = label_map.encode(frame["label"])
    length = text.str.len().to_numpy()
    reason = np.zeros(n, dtype=np.int8)  # 0 = kept, else 1 + index into DROP_REASONS

    def mark(name: str, mask: np.ndarray) -> None:
        reason[(reason == 0) & mask] = DROP_REASONS.index(name) + 1

    mark("empty", (text == "").to_numpy())
    mark("invalid_label", label.isna().to_numpy())
    mark("too_short", length < min_chars)
    mark("too_long", length > max_chars)
    split: pd.Series | None = None
    if "split" in frame.columns:
        split = (
            frame["split"]
            .astype(str)
            .str.strip()
            .str.lower()
            .replace({"valid": "validation", "dev": "validation"})
        )
        mark("invalid_split", ~split.isin(SPLITS).to_numpy())
    kept = reason == 0
    codes, uniques = pd.factorize(text.where(kept, None))  # dropped rows get code -1
    valid = codes >= 0
    k = label_map.num_classes
    ids = label.fillna(-1).to_numpy().astype(np.int64)
    # Label counts per distinct text, (texts, k): the majority label wins; a tie (-1) drops every copy.
    per_text = np.bincount(codes[valid] * k + ids[valid], minlength=len(uniques) * k).reshape(-1, k)
    top = per_text.max(axis=1) if len(uniques) else np.zeros(0, dtype=np.int64)
    tied = (per_text == top[:, None]).sum(axis=1) > 1
    majority_of = np.where(tied, -1, per_text.argmax(axis=1) if len(uniques) else 0)
    mixed_of = (per_text > 0).sum(axis=1) > 1
    row = np.maximum(codes, 0)
    mixed = valid & (mixed_of[row] if len(uniques) else np.zeros(n, dtype=bool))
    majority = majority_of[row] if len(uniques) else np.full(n, -1)
    mark("conflicting_label", mixed & (majority != ids))
    first = ~pd.Series(np.where(reason == 0, codes, -1 - np.arange(n))).duplicated(keep="first").to_numpy()
    mark("duplicate", ~first)

    keep = reason == 0
    cleaned = pd.DataFrame({"text": text[keep].to_numpy(), "label": label[keep].astype(int).to_numpy()})
    if split is not None:
        cleaned["split"] = split[keep].to_numpy()
    if "group" in frame.columns:
        cleaned["group"] = frame["group"][keep].where(frame["group"][keep].notna(), "").astype(str).to_numpy()
    dropped = ~keep
    quarantine = pd.DataFrame(
        {
            "row": np.flatnonzero(dropped),
            "reason": np.asarray(DROP_REASONS, dtype=object)[reason[dropped] - 1] if dropped.any() else [],
            "text": frame["text"][dropped]
            .where(frame["text"][dropped].notna(), None)
            .astype(object)
            .to_numpy(),
            "label": frame["label"][dropped].astype(str).to_numpy(),
        }
    )
    if "group" in frame.columns:
        quarantine["group"] = frame["group"][dropped].astype(str).to_numpy()
    return CleaningResult(cleaned=cleaned, quarantine=quarantine, input_rows=n)


def finish_splits(
    cleaned: pd.DataFrame, seed: int = 42, fractions: SplitFractions | None = None
) -> pd.DataFrame:
    """The canonical frame: keep the source's split, else assign one (by group when there are groups)."""
    if "split" not in cleaned.columns:
        cleaned = assign_splits(cleaned, seed, fractions or SplitFractions())
    columns = ["text", "label", "split"] + (["group"] if "group" in cleaned.columns else [])
    return cleaned[columns].reset_index(drop=True)


def clean(
    frame: pd.DataFrame,
    seed: int = 42,
    fractions: SplitFractions | None = None,
    min_chars: int = 1,
    max_chars: int = 10**9,
    label_map: LabelMap | None = None,
) -> pd.DataFrame:
    """Canonical frame: normalised text, int labels, no empty or duplicate texts, a split for every row.

    Duplicates are dropped keeping the first occurrence; a text seen with both labels keeps its majority
    label, or is dropped entirely on a tie. What is dropped and why: :func:`clean_rows`.
    """
    return finish_splits(clean_rows(frame, min_chars, max_chars, label_map).cleaned, seed, fractions)


def dataset_hash(frame: pd.DataFrame, label_map: LabelMap | None = None) -> str:
    """Content hash of the exact rows used (order included): the dataset version recorded in MLflow.

    sha256 over ``split\tlabel\ttext\n`` per row, hashed in chunks (the same bytes as row by row), then,
    for a task other than binary sentiment, ``labels\t`` + the label map's JSON (binary hashes are as before).
    """
    digest = hashlib.sha256()
    for start in range(0, len(frame), 100_000):
        chunk = frame.iloc[start : start + 100_000]
        lines = (
            chunk["split"].astype(str) + "\t" + chunk["label"].astype(int).astype(str) + "\t" + chunk["text"]
        )
        digest.update(("\n".join(lines.tolist()) + "\n").encode())
    if label_map is not None and not label_map.is_binary:
        digest.update(("labels\t" + label_map.to_json()).encode())
    return "sha256:" + digest.hexdigest()


def summarise(frame: pd.DataFrame, label_map: LabelMap | None = None) -> DatasetSummary:
    """Hash and per-split counts of a canonical frame (``positive_share``: the share of class id 1)."""
    sizes = {name: int((frame["split"] == name).sum()) for name in SPLITS}
    return DatasetSummary(
        dataset_hash=dataset_hash(frame, label_map),
        rows=len(frame),
        split_sizes=sizes,
        positive_share=float((frame["label"] == 1).mean()) if len(frame) else 0.0,
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
            return pd.read_parquet(handle, **PARQUET_READ)
    except FileNotFoundError as exc:
        raise DataError(f"validated dataset not found: {path} (run validate first)") from exc


def write_validated(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the canonical frame as parquet (row groups of 64 k rows, so readers can stream), atomically."""
    from components.common.artifacts import atomic_write_bytes

    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, row_group_size=PARQUET_ROW_GROUP)
    atomic_write_bytes(path, buffer.getvalue())


def iter_split(
    path: str | Path,
    split: str,
    batch_size: int = 4096,
    columns: tuple[str, ...] = ("text", "label"),
    max_rows: int = 0,
) -> Iterator[pd.DataFrame]:
    """Stream one split of a validated dataset in batches: memory holds a row group, not the dataset.
    ``max_rows``: stop after the split's first that many rows (0 = all)."""
    import fsspec
    import pyarrow.parquet as pq

    try:
        handle = fsspec.open(str(path), "rb").open()
    except FileNotFoundError as exc:
        raise DataError(f"validated dataset not found: {path} (run validate first)") from exc
    with handle:
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        batches = parquet.iter_batches(batch_size=batch_size, columns=[*columns, "split"], use_threads=False)
        left = max_rows or None
        for batch in batches:
            frame = batch.to_pandas()
            frame = frame[frame["split"] == split].iloc[:left]
            if len(frame):
                yield frame[list(columns)].reset_index(drop=True)
            if left is not None:
                left -= len(frame)
                if left <= 0:
                    return


def read_summary(validated_dir: str | Path) -> DatasetSummary:
    """The summary ``validate`` wrote beside the dataset (hash, split sizes) without reading the dataset."""
    import fsspec

    path = f"{str(validated_dir).rstrip('/')}/dataset.json"
    try:
        with fsspec.open(path, "r") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return summarise(read_validated(f"{str(validated_dir).rstrip('/')}/dataset.parquet"))
    return DatasetSummary(**{k: data[k] for k in ("dataset_hash", "rows", "split_sizes", "positive_share")})
