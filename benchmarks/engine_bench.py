"""Inference engines head to head, without HTTP: accuracy on the held-out test split and throughput.

    .venv/bin/python benchmarks/engine_bench.py --model-dir <fine-tuned transformer dir (ships its ONNX graphs)> \
        --validated-dir <validate output dir> [--seconds 6]

For each engine (torch fp32, torch dynamic int8, ONNX Runtime fp32, ONNX Runtime dynamic int8) it
reports test accuracy (and its difference from torch fp32: the int8 paths may lose at most 0.5 point),
and sentences/s on micro-batches of 1 and 32 random test sentences, the latter with and without the
length-sorted sub-batch split (``call_cost_tokens``). Everything runs in one process, one engine at a
time, on the threads the server would use.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.common.data import load_split  # noqa: E402
from components.common.models import load_model  # noqa: E402
from serving.config import ServingSettings  # noqa: E402
from serving.engine import build_engine, warm_up  # noqa: E402

ENGINES = {
    "torch-fp32": {"runtime": "torch", "quantize": "none"},
    "torch-int8": {"runtime": "torch", "quantize": "dynamic_int8"},
    "onnx-fp32": {"runtime": "onnx", "quantize": "none"},
    "onnx-int8": {"runtime": "onnx", "quantize": "dynamic_int8"},
}
NO_SPLIT = 10**9  # a call cost no padding saving can beat: one padded call per micro-batch


def throughput(engine: Any, texts: list[str], batch: int, seconds: float) -> float:
    """Sentences/s over random micro-batches of ``batch`` texts (tokenisation included)."""
    rng = random.Random(0)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sample = rng.sample(texts, batch)
        engine.infer(engine.prepare(sample))
        done += batch
    return done / (time.perf_counter() - start)


def bench(
    model_dir: Path, validated: Path, seconds: float, engines: list[str], split_costs: list[int]
) -> dict[str, Any]:
    test = load_split(validated / "dataset.parquet", "test")
    texts, labels = test["text"].tolist(), test["label"].to_numpy()
    results: dict[str, Any] = {}
    all_probs: dict[str, np.ndarray] = {}
    for name in engines:
        settings = ServingSettings(**ENGINES[name])
        started = time.perf_counter()
        engine = build_engine(load_model(model_dir), settings)
        build_s = time.perf_counter() - started
        warm_up(engine, 32, 2)
        probs = np.concatenate(
            [engine.infer(engine.prepare(texts[i : i + 32])) for i in range(0, len(texts), 32)]
        )[:, 1]  # engines answer (n, k); the benchmark task is binary RT: P(positive)
        row: dict[str, Any] = {
            "accuracy": round(float(np.mean((probs >= 0.5) == labels)), 4),
            "build_s": round(build_s, 1),
            "b1_sent_s": round(throughput(engine, texts, 1, seconds), 1),
        }
        for cost in split_costs:
            engine.call_cost_tokens = cost
            key = "b32_unsplit_sent_s" if cost == NO_SPLIT else f"b32_split{cost}_sent_s"
            row[key] = round(throughput(engine, texts, 32, seconds), 1)
        results[name] = row
        all_probs[name] = probs
        print(name, row, file=sys.stderr, flush=True)
    if "torch-fp32" in results:
        reference = all_probs["torch-fp32"]
        for name, row in results.items():
            row["accuracy_delta_pts"] = round(100 * (row["accuracy"] - results["torch-fp32"]["accuracy"]), 2)
            row["label_agreement"] = round(float(np.mean((all_probs[name] >= 0.5) == (reference >= 0.5))), 4)
            row["max_prob_diff"] = round(float(np.abs(all_probs[name] - reference).max()), 4)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--validated-dir", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument(
        "--split-costs", default=f"{NO_SPLIT},0,16,32,64", help="call_cost_tokens values to try at batch 32"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset")
    args = parser.parse_args()
    from benchmarks.serve_bench import machine

    result = bench(
        args.model_dir,
        args.validated_dir,
        args.seconds,
        args.engines.split(","),
        [int(c) for c in args.split_costs.split(",")],
    )
    print(json.dumps({"machine": machine(), **result}, indent=2))


if __name__ == "__main__":
    main()
