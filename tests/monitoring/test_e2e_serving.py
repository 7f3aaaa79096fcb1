"""The real predictor (``python -m serving``, fault injection on) scraped by Prometheus with our rules: its
5xx page reaches the Slack stand-in, and its payload logs are what the drift job reads.

This checks the serving side of docs/contracts.md against the monitoring side with both real: metric names and
labels (`status_code`, `endpoint`), `sentiment_model_info`, and the payload log layout and fields. Resolution
and the other alerts are covered with a controllable metrics source in test_e2e_alerting.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from components.common.artifacts import read_manifest
from tests.conftest import REPO_ROOT, free_port, wait_for_http
from tests.monitoring.conftest import Receiver, wait_until
from tests.monitoring.test_e2e_alerting import RUNBOOKS, query, running_stack, slack

pytestmark = pytest.mark.integration


@pytest.fixture()
def faulty_predictor(baseline_model_dir: Path, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    port = free_port()
    payloads = tmp_path / "payloads"
    log = open(tmp_path / "predictor.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "--model-dir",
            str(baseline_model_dir),
            "--expected-model-digest",
            read_manifest(baseline_model_dir).digest,
            "--model-name",
            "sentiment",
            "--http-port",
            str(port),
            "--enable_grpc",
            "false",
            "--payload-log-uri",
            str(payloads),
            "--payload-log-flush-s",
            "0.5",
            "--warmup-rounds",
            "1",
            "--fault-error-rate",
            "0.5",
        ],  # fmt: skip
        cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}/v2/health/ready", timeout=120, process=proc)
        except Exception:
            log.flush()
            raise AssertionError((tmp_path / "predictor.log").read_text()[-3000:]) from None
        yield url, port, payloads
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_real_predictor_errors_page_and_its_payload_logs_feed_the_drift_job(
    faulty_predictor: tuple[str, int, Path],
    tmp_path: Path,
    receiver: Receiver,
    pushgateway: str,
    ood_texts: list[str],
    rt_validated_dir: Path,
) -> None:
    url, port, payloads = faulty_predictor
    stop = threading.Event()
    ok_texts: list[str] = []

    def traffic() -> None:
        i = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set() and i < 2000:
                batch = [ood_texts[(i + k) % len(ood_texts)] for k in range(8)]
                i += 8
                resp = client.post(f"{url}/v1/models/sentiment:predict", json={"instances": batch})
                if resp.status_code == 200:
                    ok_texts.extend(batch)
                stop.wait(0.02)

    thread = threading.Thread(target=traffic, daemon=True)
    with running_stack(tmp_path, receiver, pushgateway, port) as (prometheus, _):
        thread.start()
        try:
            assert wait_until(
                lambda: query(prometheus, 'sentiment:error_ratio:rate5m{namespace="e2e"} > 0.05'),
                40,
                "errors",
            )
            (page, *_) = wait_until(
                lambda: slack(receiver, "pager", "SentimentHighErrorRate", "FIRING"), 40, "the page"
            )
            assert page["attachment"]["title_link"] == f"{RUNBOOKS}SentimentHighErrorRate.md"
            info = query(prometheus, "sentiment_model_info")
            assert info and info[0]["metric"]["model_name"] == "sentiment"
            endpoints = {r["metric"]["endpoint"] for r in query(prometheus, "sentiment_requests_total")}
            assert "v1_predict" in endpoints
        finally:
            stop.set()
            thread.join(timeout=30)

    # the successful requests' payload records, read by the drift job through the contract layout
    from monitoring.drift.job import run_drift
    from monitoring.drift.settings import DriftSettings

    wait_until(lambda: sum(1 for _ in payloads.rglob("*.jsonl")), 20, "payload log files")
    end = datetime.now(UTC) + timedelta(minutes=1)
    expected = len(ok_texts)

    def rows() -> int:
        from monitoring.drift.logs import read_window

        return len(read_window(str(payloads), "sentiment", end - timedelta(hours=1), end).frame)

    wait_until(lambda: rows() >= expected, 20, f"{expected} payload rows")
    result = run_drift(
        DriftSettings(
            log_root=str(payloads),
            reference_uri=str(rt_validated_dir),
            window_end=end.isoformat(),
            window_hours=1,
            min_rows=50,
        )
    )
    assert result.current_rows == expected and result.bad_lines == 0
    assert result.status == "ok" and result.model_version
    assert result.features["length_chars"].drifted  # UCI sentences vs RT reviews
