"""Read (and, for tests and benchmarks, write) serving payload logs in the contract layout.

Layout (docs/contracts.md): ``<sink>/<model_name>/dt=YYYY-MM-DD/hour=HH/<host>-<start>-<seq>.jsonl``, each
line ``{"ts", "request_id", "model_name", "model_version", "text", "label", "class_index", "probabilities"}``
(``label`` the class name, ``probabilities`` {name: p}; binary records also carry ``probability`` =
P(positive)). Older binary records (``label`` 0/1 and ``probability`` only) are read too. Files are
published by rename, so a file that does not end in ``.jsonl`` (or starts with ``.``) is still being written
and is skipped.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from components.common.artifacts import atomic_write_bytes, is_remote, local_path

log = logging.getLogger(__name__)

LOG_COLUMNS = (
    "ts", "request_id", "model_name", "model_version", "text", "label", "class_index", "confidence", "probability",
)  # fmt: skip
BINARY_LABELS = ("negative", "positive")  # the default task's class names, ids 0 and 1
MAX_CLASSES = 1000
MAX_CLASS_NAME_CHARS = 256


MAX_LINE_BYTES = 64 * 1024  # a record holds one text of at most 2000 characters (serving's cap)
MAX_TEXT_CHARS = 10_000
MAX_FIELD_CHARS = 1024
MAX_ROWS = 2_000_000


@dataclass
class LogWindow:
    """The rows of one window plus what was skipped on the way."""

    frame: pd.DataFrame
    files: int = 0
    bad_lines: int = 0
    outside_window: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    bad_reasons: dict[str, int] = field(default_factory=dict)
    rows_capped: bool = False


class BadRecord(ValueError):
    """A log line that is not a contract record; ``reason`` is its short category."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _short_text(value: Any, name: str, limit: int = MAX_FIELD_CHARS) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRecord(f"{name}_type")
    text = str(value)
    if len(text) > limit:
        raise BadRecord(f"{name}_too_long")
    return text


def parse_record(line: bytes, model_name: str) -> tuple[datetime, dict[str, Any]]:
    """One log line as (timestamp, row), or BadRecord with the reason. Never raises anything else."""
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRecord("invalid_utf8") from None
    try:
        record = json.loads(decoded)
    except (ValueError, RecursionError):  # JSONDecodeError, >4300-digit integers
        raise BadRecord("invalid_json") from None
    if not isinstance(record, dict):
        raise BadRecord("not_an_object")
    ts_value = record.get("ts")
    if not isinstance(ts_value, str) or len(ts_value) > 64:
        raise BadRecord("ts_type")
    try:
        ts = parse_ts(ts_value)
    except (ValueError, OverflowError):
        raise BadRecord("ts_value") from None
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BadRecord("text_type")
    if len(text) > MAX_TEXT_CHARS:
        raise BadRecord("text_too_long")
    label, class_index, confidence, probability = _prediction(record)
    row = {
        "ts": ts,
        "request_id": _short_text(record.get("request_id", ""), "request_id"),
        "model_name": _short_text(record.get("model_name", model_name), "model_name"),
        "model_version": _short_text(record.get("model_version", ""), "model_version"),
        "text": text,
        "label": label,
        "class_index": class_index,
        "confidence": confidence,
        "probability": probability,
    }
    return ts, row


def _unit_float(value: Any, reason: str) -> float:
    """A JSON number in [0, 1] (BadRecord ``<reason>_type`` / ``<reason>_value`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord(f"{reason}_type")
    try:
        number = float(value)
    except OverflowError:  # a 400-digit integer
        raise BadRecord(f"{reason}_value") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise BadRecord(f"{reason}_value")
    return number


def _prediction(record: dict[str, Any]) -> tuple[str, int, float, float]:
    """(class name, class id, confidence, P(positive) or NaN) of an N-class or an old binary record."""
    probability = math.nan
    if "probability" in record or "probabilities" not in record:
        probability = _unit_float(record.get("probability"), "probability")
    probabilities = record.get("probabilities")
    if probabilities is None:  # an old binary record: label 0/1 (or its name), P(positive)
        label = record.get("label", int(probability >= 0.5))
        if isinstance(label, str) and label in BINARY_LABELS:
            label = BINARY_LABELS.index(label)
        if isinstance(label, bool) or label not in (0, 1):
            raise BadRecord("label_value")
        return BINARY_LABELS[int(label)], int(label), max(probability, 1.0 - probability), probability
    if not isinstance(probabilities, dict) or not 1 <= len(probabilities) <= MAX_CLASSES:
        raise BadRecord("probabilities_type")
    if any(len(name) > MAX_CLASS_NAME_CHARS for name in probabilities):
        raise BadRecord("probabilities_type")
    values = [_unit_float(v, "probabilities") for v in probabilities.values()]
    names = list(probabilities)
    label = record.get("label")
    class_index = record.get("class_index")
    if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < len(names):
        label = names[label]  # an id where the name was expected
    if not isinstance(label, str) or label not in probabilities:
        raise BadRecord("label_value")
    if class_index is None:
        class_index = names.index(label)
    if (
        isinstance(class_index, bool)
        or not isinstance(class_index, int)
        or not 0 <= class_index < MAX_CLASSES
    ):
        raise BadRecord("class_index_value")
    if tuple(names) == BINARY_LABELS and math.isnan(probability):
        probability = float(probabilities["positive"])
    return label, class_index, max(values), probability


def parse_ts(value: str) -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (a trailing ``Z`` and naive values are UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def hour_partitions(start: datetime, end: datetime) -> list[str]:
    """``dt=YYYY-MM-DD/hour=HH`` partitions that overlap ``[start, end)``."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(f"dt={hour:%Y-%m-%d}/hour={hour:%H}")
        hour += timedelta(hours=1)
    return out


def _list_files(sink: str, model_name: str, partition: str) -> list[str]:
    base = f"{sink.rstrip('/')}/{model_name}/{partition}"
    if is_remote(sink):
        import fsspec

        fs, _, _ = fsspec.get_fs_token_paths(base)
        protocol = sink.split("://", 1)[0]
        return sorted(f"{protocol}://{p}" for p in fs.glob(f"{base}/*.jsonl"))
    folder = local_path(base)
    return sorted(str(p) for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def _open_binary(path: str) -> BinaryIO:
    if is_remote(path):
        import fsspec

        return fsspec.open(path, "rb").open()
    return open(local_path(path), "rb")  # noqa: SIM115 (closed by the caller)


def _read_lines(path: str, max_line_bytes: int) -> Iterator[bytes | None]:
    """The file's lines as bytes; a line longer than ``max_line_bytes`` is consumed in bounded pieces and
    yielded as None (never held in memory whole)."""
    with _open_binary(path) as handle:
        while True:
            line = handle.readline(max_line_bytes + 1)
            if not line:
                return
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                while True:  # skip the rest of the overlong line
                    rest = handle.readline(max_line_bytes)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield None
                continue
            yield line


def read_window(
    sink: str,
    model_name: str,
    start: datetime,
    end: datetime,
    max_line_bytes: int = MAX_LINE_BYTES,
    max_rows: int = MAX_ROWS,
) -> LogWindow:
    """All well-formed records of ``model_name`` with ``start <= ts < end`` (at most ``max_rows``).

    Malformed lines (not UTF-8, not JSON, missing fields, wrong types or values, longer than
    ``max_line_bytes``) are counted in ``bad_lines`` (by reason in ``bad_reasons``) and skipped: one broken
    record must not stop the monitoring of the others. An unreadable file counts as one bad line.
    """
    rows: list[dict[str, Any]] = []
    window = LogWindow(frame=pd.DataFrame(columns=list(LOG_COLUMNS)))
    reasons: Counter[str] = Counter()
    for partition in hour_partitions(start, end):
        for path in _list_files(sink, model_name, partition):
            if Path(path).name.startswith("."):
                continue
            if window.rows_capped:
                break
            window.files += 1
            try:
                for line in _read_lines(path, max_line_bytes):
                    if line is None:
                        reasons["line_too_long"] += 1
                        continue
                    if not line.strip():
                        continue
                    try:
                        ts, row = parse_record(line, model_name)
                    except BadRecord as exc:
                        reasons[exc.reason] += 1
                        continue
                    if not start <= ts < end:
                        window.outside_window += 1
                        continue
                    if len(rows) >= max_rows:
                        window.rows_capped = True
                        break
                    rows.append(row)
            except OSError as exc:
                log.warning("cannot read payload log %s: %s", path, exc)
                reasons["unreadable_file"] += 1
    window.bad_reasons = dict(sorted(reasons.items()))
    window.bad_lines = sum(reasons.values())
    if rows:
        window.frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
        window.versions = {str(k): int(v) for k, v in window.frame["model_version"].value_counts().items()}
    return window


def write_log_file(
    sink: str | Path,
    model_name: str,
    records: Iterable[Mapping[str, Any]],
    host: str = "test",
    seq: int = 0,
) -> list[str]:
    """Write records in the contract layout, one file per hour partition (published atomically).

    Used by tests and the benchmark to stand in for the serving payload logger.
    """
    by_partition: dict[str, list[str]] = {}
    starts: dict[str, datetime] = {}
    for record in records:
        ts = parse_ts(str(record["ts"]))
        partition = f"dt={ts:%Y-%m-%d}/hour={ts:%H}"
        by_partition.setdefault(partition, []).append(json.dumps(dict(record), ensure_ascii=False))
        starts.setdefault(partition, ts)
    written = []
    for partition, lines in by_partition.items():
        name = f"{host}-{starts[partition]:%Y%m%dT%H%M%S}-{seq:06d}.jsonl"
        uri = f"{str(sink).rstrip('/')}/{model_name}/{partition}/{name}"
        atomic_write_bytes(uri, ("\n".join(lines) + "\n").encode("utf-8"))
        written.append(uri)
    return written


def records_for(
    texts: Iterable[str],
    probabilities: Iterable[float] | Any,
    start: datetime,
    step: timedelta,
    model_name: str = "sentiment",
    model_version: str = "1",
    names: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Contract-shaped payload records for ``texts``, timestamped from ``start`` every ``step``.

    Without ``names``: old-style binary records (``label`` 0/1, ``probability``), as logs written before
    N-class support. With ``names``: ``probabilities`` rows (n, k) become N-class records as serving writes.
    """
    out = []
    for i, (text, prob) in enumerate(zip(texts, probabilities, strict=True)):
        record: dict[str, Any] = {
            "ts": (start + i * step).isoformat().replace("+00:00", "Z"),
            "request_id": f"req-{i:08d}",
            "model_name": model_name,
            "model_version": model_version,
            "text": text,
        }
        if names is None:
            record |= {"label": int(prob >= 0.5), "probability": float(prob)}
        else:
            row = [float(p) for p in prob]
            binary = tuple(names) == BINARY_LABELS
            index = int(row[1] >= 0.5) if binary else max(range(len(row)), key=row.__getitem__)
            record |= {
                "label": names[index],
                "class_index": index,
                "probabilities": dict(zip(names, row, strict=True)),
            }
            if binary:  # as serving writes binary records
                record["probability"] = row[1]
        out.append(record)
    return out
