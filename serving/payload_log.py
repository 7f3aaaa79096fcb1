"""Payload logging for drift monitoring (docs/contracts.md): sampled predictions as JSON lines.

Records are buffered in memory and written by a background thread every ``flush_interval_s`` and once
more at shutdown, to ``<sink>/<model>/dt=YYYY-MM-DD/hour=HH/<host>-<start>-<seq>.jsonl``. Local files are
written under a temporary name and renamed (object stores publish on close), so a reader never sees a
torn file. The sink can never fail a prediction: a failed write only counts the lost records in
``sentiment_payload_log_errors_total``; so does a record dropped because the buffer is full.
"""

from __future__ import annotations

import itertools
import logging
import random
import socket
import threading
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from components.common.artifacts import atomic_write_bytes
from serving.metrics import PAYLOAD_LOG_ERRORS, PAYLOAD_LOG_RECORDS

log = logging.getLogger(__name__)


class PayloadLogger:
    """Sampled, buffered, periodically flushed JSON-lines log of predictions."""

    def __init__(
        self,
        sink: str,
        model_name: str,
        sample_rate: float = 1.0,
        flush_interval_s: float = 10.0,
        max_buffer: int = 50_000,
    ) -> None:
        self.sink = sink.rstrip("/")
        self.model_name = model_name
        self.sample_rate = sample_rate
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self._host = socket.gethostname()
        self._start = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._seq = itertools.count()
        self._buffer: list[dict] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="payload-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def log(self, request_id: str, model_version: str, texts: Sequence[str], probs: Sequence[float]) -> None:
        """Buffer the sampled records of one request (never raises, never blocks on the sink)."""
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        records = [
            {
                "ts": ts,
                "request_id": request_id,
                "model_name": self.model_name,
                "model_version": model_version,
                "text": text,
                "label": int(prob >= 0.5),
                "probability": round(float(prob), 6),
            }
            for text, prob in zip(texts, probs, strict=True)
            if self.sample_rate >= 1.0 or random.random() < self.sample_rate
        ]
        with self._lock:
            kept = max(0, min(len(records), self.max_buffer - len(self._buffer)))
            self._buffer.extend(records[:kept])
        if kept < len(records):
            PAYLOAD_LOG_ERRORS.inc(len(records) - kept)

    def _path(self, partition: str) -> str:
        return f"{self.sink}/{self.model_name}/{partition}/{self._host}-{self._start}-{next(self._seq):06d}.jsonl"

    def flush(self) -> int:
        """Write everything buffered, one file per hour partition; returns the records written."""
        with self._flush_lock:
            with self._lock:
                records, self._buffer = self._buffer, []
            groups: dict[str, list[dict]] = defaultdict(list)
            for record in records:
                ts = record["ts"]
                groups[f"dt={ts[:10]}/hour={ts[11:13]}"].append(record)
            written = 0
            for partition, group in groups.items():
                payload = b"".join(orjson.dumps(r) + b"\n" for r in group)
                try:
                    atomic_write_bytes(self._path(partition), payload)
                except Exception as exc:  # any sink failure: count the loss, keep serving
                    PAYLOAD_LOG_ERRORS.inc(len(group))
                    log.warning("payload log: lost %d records: %s", len(group), exc)
                    continue
                PAYLOAD_LOG_RECORDS.inc(len(group))
                written += len(group)
            return written

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
        self.flush()

    def close(self, timeout_s: float = 20.0) -> None:
        """Stop the timer and write what is left (bounded by ``timeout_s`` if the sink hangs)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        else:
            self.flush()
