"""Inference engines: turn texts into positive-class probabilities, split into a cheap, thread-safe
``prepare`` step (tokenisation, run per request outside the model) and a batched ``infer`` step
(run by the single batch worker, so the model itself needs no lock)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from components.common.models import TFIDF_FLAVOR, SentimentModel, TransformerModel

log = logging.getLogger(__name__)


def cpu_limit() -> int:
    """CPUs this process may use: the cgroup quota (v2 or v1) capped by the affinity mask."""
    available = len(os.sched_getaffinity(0))
    quota = period = None
    try:
        fields = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if fields[0] != "max":
            quota, period = int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        try:
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if q > 0:
                quota, period = q, p
        except (OSError, ValueError):
            pass
    if quota and period:
        return max(1, min(available, math.floor(quota / period)))
    return available


class Engine(Protocol):
    """What the batcher drives."""

    flavor: str

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        """Per-text features, computed outside the batch worker."""
        ...

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        """Positive-class probabilities for a batch of prepared features, shape (n,)."""
        ...


class TfidfEngine:
    """The scikit-learn baseline: vectorising is cheap, so features are the texts themselves."""

    flavor = TFIDF_FLAVOR

    def __init__(self, model: SentimentModel) -> None:
        self.model = model

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        return list(texts)

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        return self.model.predict_proba(list(features))


class TransformerEngine:
    """A Hugging Face classifier: tokenised per request, padded per batch, fp16 on CUDA."""

    flavor = "transformer"

    def __init__(self, model: TransformerModel, quantize: str = "none") -> None:
        import torch

        self.model = model
        self.precision = "fp32"
        if model.device.type == "cuda":
            model.model.half()
            self.precision = "fp16"
        elif quantize == "dynamic_int8":
            model.model = torch.ao.quantization.quantize_dynamic(
                model.model, {torch.nn.Linear}, dtype=torch.qint8
            )
            self.precision = "int8-dynamic"
        tokenizer = model.tokenizer
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.keys = list(tokenizer.model_input_names)

    def prepare(self, texts: Sequence[str]) -> list[Any]:
        encoded = self.model.tokenizer(list(texts), truncation=True, max_length=self.model.max_length)
        keys = [k for k in self.keys if k in encoded]
        return [{k: encoded[k][i] for k in keys} for i in range(len(texts))]

    def infer(self, features: Sequence[Any]) -> np.ndarray:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        batch: dict[str, Any] = {}
        for key in features[0]:
            fill = self.pad_id if key == "input_ids" else 0
            array = np.full((len(features), width), fill, dtype=np.int64)
            for row, feature in enumerate(features):
                array[row, : len(feature[key])] = feature[key]
            batch[key] = torch.from_numpy(array)
        return self.model.predict_tokens(batch)


def build_engine(model: SentimentModel, quantize: str = "none") -> Engine:
    """The engine for a loaded model's flavour."""
    if isinstance(model, TransformerModel):
        return TransformerEngine(model, quantize)
    return TfidfEngine(model)


def configure_torch(threads: int) -> int:
    """Set torch's intra-op threads (0 = the cgroup CPU limit); returns the number used."""
    import torch

    used = threads or cpu_limit()
    torch.set_num_threads(used)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return used


def warm_up(engine: Engine, max_batch: int, rounds: int) -> None:
    """Run the model at batch 1 and at the max batch so the first requests do not pay for lazy init."""
    sample = "a warm-up sentence that is neither long nor short, for the first passes"
    for size in sorted({1, max_batch}):
        for _ in range(rounds):
            engine.infer(engine.prepare([sample] * size))
