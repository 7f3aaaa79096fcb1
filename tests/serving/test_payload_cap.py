"""The payload-log buffer is capped in bytes; overflow is counted, flushing writes everything held."""

from __future__ import annotations

from pathlib import Path

from serving import payload_log
from serving.metrics import PAYLOAD_LOG_OVERFLOW
from tests.mutation import mutant


def _flood(logger: payload_log.PayloadLogger, n: int) -> None:
    text = "é" * 2000  # a maximum-size text (4000 bytes in UTF-8)
    for _ in range(n):
        logger.log("i" * 256, "1", [text] * 64, [0.5] * 64)  # a maximum-size request


def test_buffer_stays_under_its_byte_cap_and_counts_the_overflow(tmp_path: Path) -> None:
    cap = 1 << 20
    logger = payload_log.PayloadLogger(str(tmp_path), "sentiment", max_buffer=10**9, max_buffer_bytes=cap)
    before = PAYLOAD_LOG_OVERFLOW._value.get()
    _flood(logger, 20)  # ~5 MB offered
    assert 0 < logger.buffered_bytes <= cap
    dropped = PAYLOAD_LOG_OVERFLOW._value.get() - before
    kept = logger.flush()
    assert kept + dropped == 20 * 64 and dropped > 0
    lines = [line for f in tmp_path.rglob("*.jsonl") for line in f.read_bytes().splitlines()]
    assert len(lines) == kept and logger.buffered_bytes == 0


def test_mutation_without_the_byte_cap_the_buffer_grows(tmp_path: Path) -> None:
    weak = mutant(
        payload_log,
        "if self._records >= self.max_buffer or self._bytes + cost > self.max_buffer_bytes:",
        "if self._records >= self.max_buffer:",
    )
    logger = weak.PayloadLogger(str(tmp_path), "sentiment", max_buffer=10**9, max_buffer_bytes=1 << 20)
    _flood(logger, 20)
    assert logger.buffered_bytes > 4 << 20
