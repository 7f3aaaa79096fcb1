"""The canary analysis end to end, with real parts only.

Three real predictors (``python -m serving`` on the TF-IDF baseline): the stable model, a healthy canary
and a degraded canary (fault injection by configuration: 30 % of requests answer 500 and every request
waits 300 ms). A real Prometheus (Debian binary, loopback, 1 s scrape interval) scrapes all three, each
target labelled with its Knative-style ``revision`` as the cluster's PodMonitor does. The test client
splits real traffic 90/10 between stable and each canary, then ``analyse`` must say PROMOTE for the
healthy canary, ROLLBACK for the degraded one and HOLD when the minimum request count is not reached.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, free_port, require_binary, wait_for_http
from tests.serving.conftest import pinned_digest

pytestmark = pytest.mark.integration

STABLE = "sentiment-predictor-00001"
GOOD = "sentiment-predictor-00002"
BAD = "sentiment-predictor-00003"
CANARY_PERCENT = 10
TEXTS_PER_STREAM = 40  # each text goes 9x to stable and 1x to the canary: 40 canary requests per stream
MIN_REQUESTS = 30


@dataclass
class Lab:
    """The running servers and Prometheus, and how many requests each server was sent."""

    prometheus_url: str
    sent: Counter[str]
    status: dict[str, Counter[int]]


def _start_predictor(model_dir: Path, log: Path, *fault_args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "serving",
        "--model-dir",
        str(model_dir),
        "--expected-model-digest",
        pinned_digest(model_dir),
        "--model-name",
        "sentiment",
        "--http-port",
        str(port),
        "--enable_grpc",
        "false",
        "--warmup-rounds",
        "1",
        *fault_args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"127.0.0.1:{port}"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _prometheus_config(targets: dict[str, str]) -> str:
    static = "\n".join(
        f'      - targets: ["{address}"]\n        labels: {{revision: "{revision}"}}'
        for revision, address in targets.items()
    )
    return (
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: sentiment-predictor\n    static_configs:\n"
        f"{static}\n"
    )


def _query(url: str, promql: str) -> list[dict]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]["result"]


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _send_traffic(lab_targets: dict[str, str], texts: list[str], canary: str) -> list[tuple[str, int]]:
    """Split real traffic 90/10: each text is sent 9x to stable and once to ``canary``."""
    plan = [(canary if k < CANARY_PERCENT // 10 else STABLE, text) for text in texts for k in range(10)]
    with httpx.Client(timeout=30) as client:

        def post(item: tuple[str, str]) -> tuple[str, int]:
            revision, text = item
            response = client.post(
                f"http://{lab_targets[revision]}/v1/models/sentiment:predict",
                json={"instances": [text]},
            )
            return revision, response.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(post, plan))


@pytest.fixture(scope="module")
def lab(baseline_model_dir: Path, rt_frame: pd.DataFrame) -> Iterator[Lab]:
    prometheus_bin = require_binary("prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="sentimentops-canary-"))
    procs: list[subprocess.Popen] = []
    try:
        targets: dict[str, str] = {}
        for revision, faults in (
            (STABLE, ()),
            (GOOD, ()),
            (BAD, ("--fault-error-rate", "0.3", "--fault-latency-ms", "300")),
        ):
            proc, address = _start_predictor(baseline_model_dir, workdir / f"{revision}.log", *faults)
            procs.append(proc)
            targets[revision] = address

        prom_port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(_prometheus_config(targets))
        prometheus = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "prometheus.log").open("wb"),
        )
        procs.append(prometheus)
        url = f"http://127.0.0.1:{prom_port}"
        wait_for_http(f"{url}/-/ready", timeout=30, process=prometheus)
        for (revision, address), proc in zip(targets.items(), procs, strict=False):
            try:
                wait_for_http(f"http://{address}/v2/health/ready", timeout=120, process=proc)
            except Exception:
                raise AssertionError(
                    f"{revision} did not start:\n{(workdir / f'{revision}.log').read_text()[-3000:]}"
                ) from None
        _wait_until(lambda: len(_query(url, "up == 1")) == 3, 20, "Prometheus to scrape all 3 predictors")

        texts = rt_frame["text"].head(TEXTS_PER_STREAM).tolist()
        results = _send_traffic(targets, texts, GOOD) + _send_traffic(targets, texts, BAD)
        sent = Counter(revision for revision, _ in results)
        status: dict[str, Counter[int]] = {r: Counter() for r in targets}
        for revision, code in results:
            status[revision][code] += 1

        def scraped() -> bool:
            got = {
                s["metric"]["revision"]: float(s["value"][1])
                for s in _query(url, "sum by (revision) (sentiment_requests_total)")
            }
            return all(got.get(r) == n for r, n in sent.items())

        _wait_until(scraped, 20, "Prometheus to scrape every request")
        yield Lab(url, sent, status)
    finally:
        for proc in reversed(procs):
            _stop(proc)


def analyse(
    lab_url: str, canary: str, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``python -m serving.rollout analyse`` in-process: (exit code, stdout, stderr)."""
    from serving.rollout.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "analyse",
                "--prometheus-url",
                lab_url,
                "--prometheus-timeout-s",
                "5",
                "--canary-selector",
                f'revision="{canary}"',
                "--stable-selector",
                f'revision="{STABLE}"',
                "--analysis-window",
                "2m",
                "--min-requests",
                str(MIN_REQUESTS),
                # CI machines are small and busy: a healthy canary's p99 over 40 requests may see a pause;
                # the degraded canary (300 ms added) is far above this slack either way.
                "--latency-tolerance-s",
                "0.15",
                *args,
            ]
        )
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_traffic_was_split_in_the_configured_ratio(lab: Lab) -> None:
    assert lab.sent[GOOD] == lab.sent[BAD] == TEXTS_PER_STREAM
    assert lab.sent[STABLE] == 2 * TEXTS_PER_STREAM * (100 - CANARY_PERCENT) // CANARY_PERCENT
    assert lab.status[STABLE] == Counter({200: lab.sent[STABLE]})
    assert lab.status[BAD][500] > 0  # the fault injection is live


def test_healthy_canary_is_promoted(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = analyse(lab.prometheus_url, GOOD, capsys=capsys)
    assert code == 0, out + err
    assert "verdict: PROMOTE" in out
    requests_row = next(line for line in out.splitlines() if line.startswith("requests"))
    assert requests_row.split()[1:3] == [str(lab.sent[STABLE]), str(lab.sent[GOOD])]


def test_degraded_canary_is_rolled_back(lab: Lab, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    decision_file = tmp_path / "decision.json"
    code, out, err = analyse(lab.prometheus_url, BAD, "--decision-file", str(decision_file), capsys=capsys)
    assert code == 2, out + err
    decision = json.loads(decision_file.read_text())
    assert decision["verdict"] == "rollback"
    failed = {c["name"] for c in decision["checks"] if c["passed"] is False}
    assert {"5xx error rate", "5xx rate increase", "p95 latency", "p99 latency"} <= failed
    assert decision["canary"]["requests"] == lab.sent[BAD]
    assert decision["canary"]["errors"] == lab.status[BAD][500]
    assert decision["stable"]["errors"] == 0


def test_too_few_requests_holds(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = analyse(lab.prometheus_url, GOOD, "--min-requests", str(lab.sent[GOOD] + 1), capsys=capsys)
    assert code == 3
    assert f"canary served {lab.sent[GOOD]} requests < {lab.sent[GOOD] + 1}" in out


def test_selector_matching_nothing_is_an_error(lab: Lab) -> None:
    """Through the real entrypoint: one line on stderr, exit 1."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.rollout",
            "analyse",
            "--prometheus-url",
            lab.prometheus_url,
            "--canary-selector",
            'revision="sentiment-predictor-09999"',
            "--stable-selector",
            f'revision="{STABLE}"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        'error: no sentiment_model_info series match {revision="sentiment-predictor-09999"}: '
        "wrong selector, or the pods are not scraped"
    ]
    assert proc.stdout == ""


def test_query_rejected_by_prometheus_is_an_error(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = analyse(lab.prometheus_url, 'sentiment-predictor-00002", revision=~"(', capsys=capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: Prometheus rejected the query (400, bad_data)") and err.count("\n") == 1


def canary_analyse(
    lab_url: str, canary: str, stable: str, outputs: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """The workflow's analyse step through the real entrypoint, its parameters as env vars only (as the
    generated template passes them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTIMENTOPS_")}
    env |= {
        "SENTIMENTOPS_PROMETHEUS_URL": lab_url,
        "SENTIMENTOPS_ANALYSIS_WINDOW": "2m",
        "SENTIMENTOPS_MIN_REQUESTS": str(MIN_REQUESTS),
        "SENTIMENTOPS_LATENCY_TOLERANCE_S": "0.15",  # see analyse() above
        "SENTIMENTOPS_CANARY_REVISION": canary,
        "SENTIMENTOPS_STABLE_REVISION": stable,
        "SENTIMENTOPS_OUTPUT_DIR": str(outputs),
    }
    return subprocess.run(
        [sys.executable, "-m", "serving.rollout", "canary-analyse", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
    )


@pytest.mark.parametrize(("canary", "verdict"), [(GOOD, "promote"), (BAD, "rollback")])
def test_workflow_analyse_step_writes_the_verdict_as_outputs(
    lab: Lab, canary: str, verdict: str, tmp_path: Path
) -> None:
    """PROMOTE and ROLLBACK both end the step with 0: the verdict and reason are its output files."""
    proc = canary_analyse(lab.prometheus_url, canary, STABLE, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "verdict").read_text() == verdict
    decision = json.loads((tmp_path / "decision.json").read_text())
    assert decision["verdict"] == verdict and decision["canary"]["requests"] == lab.sent[canary]
    assert (tmp_path / "reason").read_text() == decision["reason"]
    if verdict == "rollback":
        assert "5xx error rate" in decision["reason"]


def test_workflow_analyse_step_holds_with_exit_3_and_no_verdict(lab: Lab, tmp_path: Path) -> None:
    """HOLD is the exit code the template retries; no verdict file, so Argo cannot read a stale one."""
    too_many = str(lab.sent[GOOD] + 1)
    proc = canary_analyse(lab.prometheus_url, GOOD, STABLE, tmp_path, "--min-requests", too_many)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert not (tmp_path / "verdict").exists() and "verdict: HOLD" in proc.stdout


def test_workflow_analyse_step_refuses_identical_revisions(lab: Lab, tmp_path: Path) -> None:
    proc = canary_analyse(lab.prometheus_url, STABLE, STABLE, tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: no canary rolled out: the latest revision {STABLE} is the rolled-out one"
    ]
