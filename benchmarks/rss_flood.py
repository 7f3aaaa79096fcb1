"""The predictor's memory under a flood of maximum-size requests (issue 12).

Starts ``python -m serving`` on a model directory (pinned to its digest), payload log on, and sends
``--requests`` V2 requests at concurrency ``--concurrency``, each as large as the input contract allows
(64 texts of 2000 characters, a 256-character id), plus the same number of hostile ones (a 900 KB id, a
header flood, an oversized body). Reports the server's RSS before, its peak (VmHWM) and after, from
/proc. The payload log flushes only at exit, so its buffer has to hold everything: the byte cap is what
bounds it.

    .venv/bin/python benchmarks/rss_flood.py --model-dir <model dir> [--requests 400] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mem(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


async def _flood(url: str, n: int, concurrency: int) -> dict[str, int]:
    text = "é" * 1000 + "x" * 1000  # 2000 characters, 3000 bytes in UTF-8
    good = {
        "id": "i" * 256,
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [64], "data": [text] * 64}],
    }
    hostile_id = dict(good, id="i" * 900_000)
    body_good = json.dumps(good).encode()
    body_hostile = json.dumps(hostile_id).encode()
    headers = {"content-type": "application/json"}
    flood_headers = {**headers, **{f"x-h{i}": "v" * 100 for i in range(60)}}
    statuses: dict[str, int] = {}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(i: int) -> None:
            kind = i % 4
            async with sem:
                if kind in (0, 1):
                    r = await client.post(
                        f"{url}/v2/models/sentiment/infer", content=body_good, headers=headers
                    )
                elif kind == 2:
                    r = await client.post(
                        f"{url}/v2/models/sentiment/infer", content=body_hostile, headers=headers
                    )
                else:
                    r = await client.post(
                        f"{url}/v2/models/sentiment/infer", content=body_good, headers=flood_headers
                    )
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1

        await asyncio.gather(*(one(i) for i in range(n)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-buffer-mib", type=int, default=32)
    args = parser.parse_args()
    from components.common.artifacts import read_manifest

    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="rss-flood-"))
    cmd = [
        sys.executable, "-m", "serving", "--model-dir", args.model_dir,
        "--expected-model-digest", read_manifest(Path(args.model_dir)).digest,
        "--http-port", str(port), "--enable_grpc", "false", "--warmup-rounds", "1",
        "--payload-log-uri", str(work / "payloads"), "--payload-log-flush-s", "3600",
        "--payload-log-max-buffer", "10000000",
        "--payload-log-max-buffer-bytes", str(args.max_buffer_mib << 20),
    ]  # fmt: skip
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start:\n{(work / 'server.log').read_text()[-2000:]}")
            time.sleep(0.3)
        before = _mem(proc.pid)
        started = time.perf_counter()
        statuses = asyncio.run(_flood(url, args.requests, args.concurrency))
        seconds = time.perf_counter() - started
        after = _mem(proc.pid)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        overflow = next(
            (
                line.split()[-1]
                for line in metrics.splitlines()
                if line.startswith("sentiment_payload_log_overflow_total")
            ),
            "0",
        )
        result = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "statuses": statuses,
            "seconds": round(seconds, 1),
            "rss_before_mib": before["VmRSS"],
            "rss_peak_mib": after["VmHWM"],
            "rss_after_mib": after["VmRSS"],
            "growth_mib": after["VmHWM"] - before["VmRSS"],
            "payload_buffer_cap_mib": args.max_buffer_mib,
            "payload_overflow_records": float(overflow),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
