"""Fault injection, graceful SIGTERM (drain + payload flush), and a tampered model refused at start."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.serving.conftest import Server


def test_fault_injection_then_sigterm_drains_and_flushes(drill_server: Server) -> None:
    # fault_error_rate 0.5, fault_latency_ms 400
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda i: drill_server.v1([f"drill text {i}"]), range(24)))
    assert time.monotonic() - started >= 0.4
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 500} and statuses.count(500) >= 3 and statuses.count(200) >= 3
    assert all("error" in r.json() for r in responses if r.status_code == 500)
    metrics = drill_server.metrics()
    failed = metrics[("sentiment_requests_total", (("endpoint", "v1_predict"), ("status_code", "500")))]
    assert failed == statuses.count(500)
    assert drill_server.payload_records() == [], "flush interval is an hour: nothing written yet"

    # SIGTERM while a request is in flight: it still completes, then the buffer is flushed
    with ThreadPoolExecutor(1) as pool:
        in_flight = [pool.submit(drill_server.v1, ["in flight at shutdown"])]
        time.sleep(0.2)  # the request is inside its 400 ms injected latency
        assert drill_server.stop(signal.SIGTERM) == 0
        late = [f.result() for f in in_flight]
    assert late[0].status_code in (200, 500)  # answered, not dropped
    texts = [r["text"] for r in drill_server.payload_records()]
    expected = statuses.count(200) + sum(1 for r in late if r.status_code == 200)
    assert len(texts) == expected
    assert "predictor stopped" in drill_server.log()


def test_cpu_limit_is_positive() -> None:
    from serving.engine import cpu_limit

    assert 1 <= cpu_limit() <= len(__import__("os").sched_getaffinity(0))


def test_tampered_model_is_refused_at_start(baseline_model_dir: Path, tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from components.common.artifacts import read_manifest
    from tests.conftest import REPO_ROOT

    model = tmp_path / "model"
    shutil.copytree(baseline_model_dir, model)
    with (model / "model.skops").open("ab") as handle:
        handle.write(b"tampered")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving",
            "--model-dir",
            str(model),
            "--expected-model-digest",
            read_manifest(baseline_model_dir).digest,
            "--http-port",
            "1",
            "--enable_grpc",
            "false",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "sha256 mismatch" in result.stderr
