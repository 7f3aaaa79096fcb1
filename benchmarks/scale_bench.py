"""How validate, train-baseline and evaluate grow from 10 k to 1.1 M reviews (wall time and peak memory).

    .venv/bin/python -m benchmarks.scale_bench                          # 10k, 100k, 300k, 1,130,017 rows
    .venv/bin/python -m benchmarks.scale_bench --rows 10000 100000      # a subset

For each size: a Kaggle-layout file from ``benchmarks.synth_kaggle`` (same seed, defects included) in a
scratch folder (never in the repository), then each step exactly as the pipeline runs it, as its own
process (``python -m components.<step> ... --track false``). Wall time is the step's process from start to
exit (imports included, measured by GNU time), CPU time its user + system time (less sensitive to other load on the machine);
peak memory is that process's maximum resident set size (``wait4`` rusage).
Prints a Markdown table with the command behind every figure; ``--json`` also writes the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROWS = (10_000, 100_000, 300_000, 1_130_017)
BOUNDS = {"validate": (60.0, 2048.0), "train-baseline": (120.0, 3072.0)}  # seconds, MiB (issue 16)


TIME = Path("/usr/bin/time")


def _measure(command: list[str]) -> tuple[float, float, float, str]:
    """Run ``command``; (wall s, CPU s, peak RSS in MiB, last output line). Fails loudly on a non-zero exit.

    Linux carries a forked child's pre-exec RSS into its ``ru_maxrss``, so a child forked straight from this
    (large) process would report at least this process's RSS: GNU time, itself tiny, forks the step instead.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        wrapped = [str(TIME), "-f", "%e %U %S %M", "-o", report.name, *command] if TIME.exists() else command
        started = time.perf_counter()
        proc = subprocess.Popen(
            wrapped, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"error: {' '.join(command)} exited {code}:\n{output[-2000:]}")
        lines = [line for line in output.strip().splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        if TIME.exists():
            elapsed, user, system, peak_kb = Path(report.name).read_text().split()[-4:]
            return float(elapsed), float(user) + float(system), int(peak_kb) / 1024, last
    print("warning: no /usr/bin/time: peak memory includes this process's own RSS", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, last


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    except OSError:
        mem = float("nan")
    load = os.getloadavg()[0]
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}, "
        f"load average {load:.1f} at start"
    )


def run(sizes: list[int], work: Path, seed: int) -> list[dict[str, object]]:
    python = sys.executable
    results = []
    for rows in sizes:
        folder = work / f"rows_{rows}"
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / "critic_reviews.csv"
        _measure(
            [
                python,
                "-m",
                "benchmarks.synth_kaggle",
                "--rows",
                str(rows),
                "--seed",
                str(seed),
                "--out",
                str(source),
            ]
        )
        steps = {
            "validate": [
                python, "-m", "components.validate", "--dataset-uri", str(source),
                "--output-dir", str(folder / "validated"), "--track", "false",
            ],
            "train-baseline": [
                python, "-m", "components.train_baseline", "--validated-dir", str(folder / "validated"),
                "--output-dir", str(folder / "baseline"), "--track", "false",
            ],
            "evaluate": [
                python, "-m", "components.evaluate", "--validated-dir", str(folder / "validated"),
                "--baseline-dir", str(folder / "baseline"), "--challenger-dir", str(folder / "baseline"),
                "--output-dir", str(folder / "evaluation"), "--compare-champion", "false", "--track", "false",
            ],
        }  # fmt: skip
        row: dict[str, object] = {"rows": rows}
        for name, command in steps.items():
            wall, cpu, rss, last = _measure(command)
            row[name] = {
                "seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "peak_mib": round(rss),
                "output": last,
            }
            print(
                f"{rows:>9,} rows  {name:<15} {wall:7.1f} s  (CPU {cpu:7.1f} s)  {rss:7.0f} MiB  {last[:100]}",
                flush=True,
            )
        summary = json.loads((folder / "validated" / "dataset.json").read_text())
        row["kept_rows"], row["split_sizes"] = summary["rows"], summary["split_sizes"]
        results.append(row)
        shutil.rmtree(folder, ignore_errors=True)
    return results


def table(results: list[dict[str, object]]) -> str:
    head = (
        "| rows in | rows kept | train rows | validate s (CPU s) | validate MiB | train-baseline s (CPU s) "
        "| train-baseline MiB | evaluate s (CPU s) | evaluate MiB |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in results:
        cells = [f"{r['rows']:,}", f"{r['kept_rows']:,}", f"{r['split_sizes']['train']:,}"]  # type: ignore[index]
        for step in ("validate", "train-baseline", "evaluate"):
            figures = r[step]
            cells += [f"{figures['seconds']} ({figures['cpu_seconds']})", f"{figures['peak_mib']:,}"]  # type: ignore[index]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="scratch folder (default: a new temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    print(f"machine: {_machine()}", flush=True)
    results = run(sorted(args.rows), work, args.seed)
    print("\n" + table(results))
    over = [
        f"{r['rows']:,} rows: {step} {r[step]['seconds']} s / {r[step]['peak_mib']} MiB > {limit_s} s / {limit_mib:.0f} MiB"  # type: ignore[index]
        for r in results
        for step, (limit_s, limit_mib) in BOUNDS.items()
        if r[step]["seconds"] > limit_s or r[step]["peak_mib"] > limit_mib  # type: ignore[index]
    ]
    print(
        "\nbounds (validate <= 60 s, 2 GiB; train-baseline <= 120 s, 3 GiB): "
        + ("; ".join(over) or "all met")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": _machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
