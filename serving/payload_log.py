"""Payload logging for drift monitoring (docs/contracts.md): sampled predictions as JSON lines.

Records are serialised when they are logged (a few microseconds each, on the request path) and buffered
as bytes, per hour partition; a background thread writes them every ``flush_interval_s`` and once more
at shutdown, to ``<sink>/<model>/dt=YYYY-MM-DD/hour=HH/<host>-<start>-<seq>.jsonl``. The buffer is
bounded twice, by records (``max_buffer``) and by bytes (``max_buffer_bytes``): a record that does not
fit is dropped and counted (``sentiment_payload_log_overflow_total``, and in
``sentiment_payload_log_errors_total`` with failed writes). A flush swaps the buffer out in O(1) under
the lock and writes it in chunks of at most ``CHUNK_BYTES``, so it never holds the GIL for long and
never blocks the event loop. Local files are written under a temporary name and renamed (object stores
publish on close), so a reader never sees a torn file. The sink can never fail a prediction.
"""

from __future__ import annotations

import itertools
import logging
import random
import socket
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
import orjson

from components.common.artifacts import atomic_write_chunks
from components.common.models import LABELS
from serving.metrics import (
    PAYLOAD_LOG_BUFFER_BYTES,
    PAYLOAD_LOG_ERRORS,
    PAYLOAD_LOG_OVERFLOW,
    PAYLOAD_LOG_RECORDS,
    class_matrix,
    predicted_classes,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
RECORD_OVERHEAD_BYTES = 64  # the bytes object header and its list slot, counted against the cap


def _chunks(lines: list[bytes]) -> Iterator[bytes]:
    """``lines`` joined into pieces of about ``CHUNK_BYTES`` (one short join per piece)."""
    start, size = 0, 0
    for i, line in enumerate(lines):
        size += len(line)
        if size >= CHUNK_BYTES:
            yield b"".join(lines[start : i + 1])
            start, size = i + 1, 0
    if start < len(lines):
        yield b"".join(lines[start:])


class PayloadLogger:
    """Sampled, buffered, periodically flushed JSON-lines log of predictions."""

    def __init__(
        self,
        sink: str,
        model_name: str,
        sample_rate: float = 1.0,
        flush_interval_s: float = 10.0,
        max_buffer: int = 50_000,
        max_buffer_bytes: int = 32 << 20,
    ) -> None:
        self.sink = sink.rstrip("/")
        self.model_name = model_name
        self.sample_rate = sample_rate
        self.flush_interval_s = flush_interval_s
        self.max_buffer = max_buffer
        self.max_buffer_bytes = max_buffer_bytes
        self._host = socket.gethostname()
        self._start = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._seq = itertools.count()
        self._buffer: dict[str, list[bytes]] = {}
        self._records = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="payload-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def log(
        self,
        request_id: str,
        model_version: str,
        texts: Sequence[str],
        probs: np.ndarray | Sequence[float] | Sequence[Sequence[float]],
        names: Sequence[str] = LABELS,
    ) -> None:
        """Buffer the sampled records of one request (never raises, never blocks on the sink).

        ``probs``: the (n, k) class probabilities in ``names`` order, or binary 1-D P(positive).
        """
        now = datetime.now(UTC)
        ts = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        partition = f"dt={ts[:10]}/hour={ts[11:13]}"
        names, proba = class_matrix(probs, names)
        predicted = predicted_classes(names, proba).tolist()
        binary = names == LABELS
        lines = []
        for text, index, row in zip(texts, predicted, np.round(proba, 6).tolist(), strict=True):
            if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
                continue
            record = {
                "ts": ts,
                "request_id": request_id,
                "model_name": self.model_name,
                "model_version": model_version,
                "text": text,
                "label": names[index],
                "class_index": index,
                "probabilities": dict(zip(names, row, strict=True)),
            }
            if binary:  # binary keeps today's P(positive) field (old readers, dashboards)
                record["probability"] = row[1]
            lines.append(orjson.dumps(record) + b"\n")
        dropped = 0
        with self._lock:
            bucket = self._buffer.setdefault(partition, [])
            for line in lines:
                cost = len(line) + RECORD_OVERHEAD_BYTES
                if self._records >= self.max_buffer or self._bytes + cost > self.max_buffer_bytes:
                    dropped += 1
                    continue
                bucket.append(line)
                self._records += 1
                self._bytes += cost
            held = self._bytes
        PAYLOAD_LOG_BUFFER_BYTES.set(held)
        if dropped:
            PAYLOAD_LOG_OVERFLOW.inc(dropped)
            PAYLOAD_LOG_ERRORS.inc(dropped)

    @property
    def buffered_bytes(self) -> int:
        """Bytes currently held (serialised records plus per-record overhead)."""
        return self._bytes

    def _path(self, partition: str) -> str:
        return f"{self.sink}/{self.model_name}/{partition}/{self._host}-{self._start}-{next(self._seq):06d}.jsonl"

    def flush(self) -> int:
        """Write everything buffered, one file per hour partition; returns the records written."""
        with self._flush_lock:
            with self._lock:
                groups, self._buffer = self._buffer, {}
                self._records = self._bytes = 0
            PAYLOAD_LOG_BUFFER_BYTES.set(0)
            written = 0
            for partition, lines in groups.items():
                if not lines:
                    continue
                try:
                    atomic_write_chunks(self._path(partition), _chunks(lines), fsync=False)
                except Exception as exc:  # any sink failure: count the loss, keep serving
                    PAYLOAD_LOG_ERRORS.inc(len(lines))
                    log.warning("payload log: lost %d records: %s", len(lines), exc)
                    continue
                PAYLOAD_LOG_RECORDS.inc(len(lines))
                written += len(lines)
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
