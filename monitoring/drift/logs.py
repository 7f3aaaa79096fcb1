"""Read (and, for tests and benchmarks, write) serving payload logs in the contract layout.

Layout (docs/contracts.md): ``<sink>/<model_name>/dt=YYYY-MM-DD/hour=HH/<host>-<start>-<seq>.jsonl``, each
line ``{"ts", "request_id", "model_name", "model_version", "text", "label", "probability"}``. Files are
published by rename, so a file that does not end in ``.jsonl`` (or starts with ``.``) is still being written
and is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from components.common.artifacts import atomic_write_bytes, is_remote, local_path

LOG_COLUMNS = ("ts", "request_id", "model_name", "model_version", "text", "label", "probability")


@dataclass
class LogWindow:
    """The rows of one window plus what was skipped on the way."""

    frame: pd.DataFrame
    files: int = 0
    bad_lines: int = 0
    outside_window: int = 0
    versions: dict[str, int] = field(default_factory=dict)


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


def _read_lines(path: str) -> Iterator[str]:
    if is_remote(path):
        import fsspec

        with fsspec.open(path, "rt", encoding="utf-8") as handle:
            yield from handle
        return
    with open(local_path(path), encoding="utf-8") as handle:
        yield from handle


def read_window(sink: str, model_name: str, start: datetime, end: datetime) -> LogWindow:
    """All well-formed records of ``model_name`` with ``start <= ts < end``.

    Malformed lines (bad JSON, missing fields, wrong types) are counted in ``bad_lines`` and skipped: one
    broken record must not stop the monitoring of the others.
    """
    rows: list[dict[str, Any]] = []
    window = LogWindow(frame=pd.DataFrame(columns=list(LOG_COLUMNS)))
    for partition in hour_partitions(start, end):
        for path in _list_files(sink, model_name, partition):
            if Path(path).name.startswith("."):
                continue
            window.files += 1
            for line in _read_lines(path):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    ts = parse_ts(record["ts"])
                    text = record["text"]
                    probability = float(record["probability"])
                    if not isinstance(text, str) or not 0.0 <= probability <= 1.0:
                        raise ValueError("bad text or probability")
                except (ValueError, KeyError, TypeError):
                    window.bad_lines += 1
                    continue
                if not start <= ts < end:
                    window.outside_window += 1
                    continue
                rows.append(
                    {
                        "ts": ts,
                        "request_id": record.get("request_id"),
                        "model_name": record.get("model_name", model_name),
                        "model_version": str(record.get("model_version", "")),
                        "text": text,
                        "label": int(record.get("label", int(probability >= 0.5))),
                        "probability": probability,
                    }
                )
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
    probabilities: Iterable[float],
    start: datetime,
    step: timedelta,
    model_name: str = "sentiment",
    model_version: str = "1",
) -> list[dict[str, Any]]:
    """Contract-shaped payload records for ``texts``, timestamped from ``start`` every ``step``."""
    out = []
    for i, (text, prob) in enumerate(zip(texts, probabilities, strict=True)):
        out.append(
            {
                "ts": (start + i * step).isoformat().replace("+00:00", "Z"),
                "request_id": f"req-{i:08d}",
                "model_name": model_name,
                "model_version": model_version,
                "text": text,
                "label": int(prob >= 0.5),
                "probability": float(prob),
            }
        )
    return out
