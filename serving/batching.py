"""Dynamic micro-batching: concurrent requests are merged into one model call.

Requests append their prepared features to a bounded queue and await a future. One worker task takes
up to ``max_batch`` texts, waiting at most ``max_wait_s`` after the oldest arrived for the batch to fill
(only under concurrency: a lone request at an idle server runs at once),
and runs the model in a single dedicated thread, so the model is never entered concurrently and the
event loop keeps accepting (and tokenising) requests meanwhile. An engine that holds the GIL while it
computes (scikit-learn) runs ``inline`` on the event loop instead: a second thread would only add a
hand-off and GIL switches per batch without letting the loop run meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from serving.metrics import BATCH_SIZE


class Overloaded(RuntimeError):
    """The queue is full: the request is refused (HTTP 503) instead of waiting without bound."""


@dataclass
class _Job:
    features: Sequence[Any]
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Collects jobs into batches and runs ``infer`` on them in one thread."""

    def __init__(
        self,
        infer: Callable[[Sequence[Any]], np.ndarray],
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        inline: bool = False,
    ) -> None:
        self._infer = infer
        self.inline = inline
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._jobs: deque[_Job] = deque()
        self._queued = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._last_batch = 1

    async def submit(self, features: Sequence[Any]) -> np.ndarray:
        """Queue one request's features and wait for its probabilities."""
        if self._queued + len(features) > self.max_queue:
            raise Overloaded(f"more than {self.max_queue} texts queued; retry later")
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._run(), name="micro-batcher")
        job = _Job(features, loop.create_future())
        self._jobs.append(job)
        self._queued += len(features)
        self._wake.set()
        return await job.future

    def _take_batch(self) -> list[_Job]:
        batch = [self._jobs.popleft()]
        size = len(batch[0].features)
        while self._jobs and size + len(self._jobs[0].features) <= self.max_batch:
            job = self._jobs.popleft()
            batch.append(job)
            size += len(job.features)
        self._queued -= size
        return batch

    async def _wait_to_fill(self) -> None:
        assert self._wake is not None
        deadline = self._jobs[0].arrived + self.max_wait_s
        while self._queued < self.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _infer_chunked(self, features: Sequence[Any]) -> np.ndarray:
        parts = []
        for start in range(0, len(features), self.max_batch):
            chunk = features[start : start + self.max_batch]
            BATCH_SIZE.observe(len(chunk))
            parts.append(self._infer(chunk))
        return np.concatenate(parts)

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._last_batch > 1 or len(self._jobs) > 1:  # only wait when requests are concurrent
                await self._wait_to_fill()
            batch = self._take_batch()
            self._last_batch = len(batch)
            features = [f for job in batch for f in job.features]
            try:
                if self.inline:
                    probs = self._infer_chunked(features)
                else:
                    probs = await loop.run_in_executor(self._executor, self._infer_chunked, features)
            except Exception as exc:  # the model failed: every request of this batch fails, not the worker
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in batch:
                end = start + len(job.features)
                if not job.future.done():
                    job.future.set_result(probs[start:end])
                start = end

    def close(self) -> None:
        """Stop the worker and fail what is still queued (called after the server drained)."""
        if self._worker is not None:
            self._worker.cancel()
        while self._jobs:
            job = self._jobs.popleft()
            if not job.future.done():
                try:
                    job.future.set_exception(Overloaded("server shutting down"))
                except RuntimeError:  # its event loop is already closed
                    pass
        self._executor.shutdown(wait=True)
