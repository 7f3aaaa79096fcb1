"""The canary analysis of a multi-class model: the class mix of canary and stable is compared.

Two real processes run the serving metrics code (``serving.metrics.observe_predictions`` on a four-class
probability matrix, exposed by prometheus_client's HTTP server) as two revisions of one four-class model:
stable, and a canary whose predictions lean to one class. A real Prometheus (loopback, 1 s scrapes) scrapes
both; ``analyse`` must roll back the shifted canary on its class mix, and promote an unshifted one. Binary
tracks keep the positive-rate check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from serving.rollout.analysis import Verdict, decide
from serving.rollout.settings import AnalysisSettings
from tests.conftest import REPO_ROOT, free_port, require_binary, wait_for_http
from tests.serving.rollout.test_analysis import STABLE as BINARY_STABLE
from tests.serving.rollout.test_canary import STABLE, _prometheus_config, _query, _wait_until, analyse

CLASSES = ("rt-negative", "rt-positive", "imdb-negative", "imdb-positive")
SAME = "sentiment-predictor-00002"
SHIFTED = "sentiment-predictor-00003"
SETTINGS = AnalysisSettings(canary_selector='revision="b"', stable_selector='revision="a"', min_requests=100)
BASE = replace(
    BINARY_STABLE,
    requests=400,
    predictions=400,
    positive=0,
    confidence_sum=400 * 0.8,
    confidence_count=400,
    class_counts=dict(zip(CLASSES, (100.0, 100.0, 100.0, 100.0), strict=True)),
)


def test_class_mix_decides_for_multiclass_and_positive_rate_for_binary() -> None:
    same = replace(
        BASE, selector='revision="b"', class_counts=dict(zip(CLASSES, (95, 105, 98, 102), strict=True))
    )
    decision = decide(same, BASE, SETTINGS)
    assert decision.verdict is Verdict.PROMOTE
    assert [c.name for c in decision.checks if "shift" in c.name] == [
        "class mix shift",
        "mean confidence shift",
    ]
    shifted = replace(same, class_counts=dict(zip(CLASSES, (40, 60, 60, 240), strict=True)))
    decision = decide(shifted, BASE, SETTINGS)
    assert decision.verdict is Verdict.ROLLBACK
    (reason,) = decision.reasons
    assert reason.startswith(
        "class mix shift: canary 0.6000 not |canary - stable| share of every class <= 0.15"
    )
    assert "'imdb-positive' 0.3500" in reason and "Jensen-Shannon distance" in reason
    binary = replace(BASE, positive=200, class_counts={"negative": 200.0, "positive": 200.0})
    decision = decide(
        replace(binary, positive=320, class_counts={"negative": 80.0, "positive": 320.0}), binary, SETTINGS
    )
    assert decision.verdict is Verdict.ROLLBACK and decision.reasons[0].startswith(
        "positive rate shift: canary"
    )


EXPORTER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from prometheus_client import start_http_server
    from serving import metrics

    port, shares = int(sys.argv[1]), [float(x) for x in sys.argv[2].split(",")]
    names = tuple(sys.argv[3].split(","))
    rng = np.random.default_rng(0)
    ids = rng.choice(len(names), size=400, p=shares)
    proba = np.full((400, len(names)), 0.1)
    proba[np.arange(400), ids] = 1 - 0.1 * (len(names) - 1)
    metrics.class_series(names)
    metrics.MODEL_INFO.labels("sentiment", sys.argv[4], "tfidf", "0" * 64, "fp64").set(1)
    for start in range(0, 400, 2):  # 200 requests of two texts
        metrics.REQUESTS.labels("v1", "200").inc()
        metrics.LATENCY.labels("v1").observe(0.01)
        metrics.observe_predictions(["a text"] * 2, proba[start : start + 2], names)
    start_http_server(port, addr="127.0.0.1")
    print("ready", flush=True)
    time.sleep(3600)
    """
)


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    prometheus_bin = require_binary("prometheus")
    workdir = Path(tempfile.mkdtemp(prefix="sentimentops-classmix-"))
    script = workdir / "exporter.py"
    script.write_text(EXPORTER)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs: list[subprocess.Popen] = []
    try:
        targets = {}
        for revision, shares, version in (
            (STABLE, "0.25,0.25,0.25,0.25", "1"),
            (SAME, "0.25,0.25,0.25,0.25", "2"),
            (SHIFTED, "0.1,0.1,0.1,0.7", "3"),
        ):
            port = free_port()
            cmd = [sys.executable, str(script), str(port), shares, ",".join(CLASSES), version]
            procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
            targets[revision] = f"127.0.0.1:{port}"
            wait_for_http(f"http://127.0.0.1:{port}/metrics", timeout=60, process=procs[-1])
        config = workdir / "prometheus.yml"
        config.write_text(_prometheus_config(targets))
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/-/ready", timeout=30, process=procs[-1])
        _wait_until(
            lambda: len(_query(url, 'sentiment_predictions_total{label="imdb-positive"}')) == 3,
            30,
            "3 targets",
        )
        yield url
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("canary", "code", "expected"),
    [
        (SHIFTED, 2, "verdict: ROLLBACK (exit 2): class mix shift: canary"),
        (SAME, 0, "verdict: PROMOTE (exit 0)"),
    ],
)
def test_canary_whose_class_mix_shifted_is_rolled_back(
    prometheus_url: str, canary: str, code: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, out, _ = analyse(prometheus_url, canary, capsys=capsys)
    assert got == code and expected in out, out
    assert "class mix shift" in out and "positive rate shift" not in out
    assert ("'imdb-positive'" in out) == (canary == SHIFTED)
