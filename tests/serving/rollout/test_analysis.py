"""The analysis decision (pure) and the Prometheus client's failure modes (real sockets)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from serving.rollout.analysis import TrackMetrics, Verdict, decide, queries, render
from serving.rollout.cli import main
from serving.rollout.settings import AnalysisSettings
from tests.conftest import free_port

SETTINGS = AnalysisSettings(canary_selector='revision="b"', stable_selector='revision="a"', min_requests=100)
STABLE = TrackMetrics(
    selector='revision="a"',
    model_versions=("1",),
    requests=900,
    errors=1,
    p95_s=0.02,
    p99_s=0.05,
    predictions=899,
    positive=450,
    confidence_sum=899 * 0.8,
    confidence_count=899,
)
HEALTHY = replace(
    STABLE,
    selector='revision="b"',
    model_versions=("2",),
    requests=100,
    errors=0,
    predictions=100,
    positive=52,
    confidence_sum=81,
    confidence_count=100,
)


def test_healthy_canary_promotes() -> None:
    decision = decide(HEALTHY, STABLE, SETTINGS)
    assert decision.verdict is Verdict.PROMOTE and decision.exit_code == 0
    assert all(c.passed for c in decision.checks)
    table = render(decision)
    assert "verdict: PROMOTE (exit 0)" in table and "positive rate shift" in table


@pytest.mark.parametrize(
    ("change", "failed"),
    [
        ({"errors": 5}, {"5xx error rate", "5xx rate increase"}),
        ({"p95_s": 0.2}, {"p95 latency"}),
        ({"p99_s": 2.0}, {"p99 latency"}),
        ({"positive": 80}, {"positive rate shift"}),
        ({"confidence_sum": 60}, {"mean confidence shift"}),
    ],
)
def test_each_threshold_can_roll_back(change: dict[str, float], failed: set[str]) -> None:
    decision = decide(replace(HEALTHY, **change), STABLE, SETTINGS)
    assert decision.verdict is Verdict.ROLLBACK and decision.exit_code == 2
    assert {c.name for c in decision.checks if c.passed is False} == failed


def test_too_few_requests_hold_even_when_failing() -> None:
    decision = decide(replace(HEALTHY, requests=99, errors=50), STABLE, SETTINGS)
    assert decision.verdict is Verdict.HOLD and decision.exit_code == 3
    assert decision.reasons == ("canary served 99 requests < 100 in 10m",)
    assert decide(HEALTHY, replace(STABLE, requests=10), SETTINGS).verdict is Verdict.HOLD


def test_missing_data_holds_but_a_failure_still_rolls_back() -> None:
    no_latency = replace(HEALTHY, p95_s=None, p99_s=None)
    assert decide(no_latency, STABLE, SETTINGS).verdict is Verdict.HOLD
    assert decide(replace(no_latency, errors=40), STABLE, SETTINGS).verdict is Verdict.ROLLBACK


def test_queries_count_new_series_from_zero() -> None:
    q = queries('revision="b"', "5m")
    assert q["errors"] == (
        'sum(clamp_min(sentiment_requests_total{revision="b",status_code=~"5.."} - '
        '(sentiment_requests_total{revision="b",status_code=~"5.."} offset 5m or '
        'sentiment_requests_total{revision="b",status_code=~"5.."} * 0), 0))'
    )
    assert q["p95_s"].startswith(
        "histogram_quantile(0.95, sum by (le) (clamp_min(sentiment_request_latency_seconds_bucket"
    )


def test_settings_reject_bad_window_and_selector() -> None:
    with pytest.raises(ValueError, match="PromQL duration"):
        AnalysisSettings(canary_selector='a="b"', stable_selector='a="c"', analysis_window="ten minutes")
    with pytest.raises(ValueError, match="label matchers"):
        AnalysisSettings(canary_selector="{}", stable_selector='a="c"')


def run_analyse(url: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "analyse",
                "--prometheus-url",
                url,
                "--canary-selector",
                'r="b"',
                "--stable-selector",
                'r="a"',
                *args,
            ]
        )
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_prometheus_unreachable_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_analyse(f"http://127.0.0.1:{free_port()}", capsys=capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: Prometheus unreachable at http://127.0.0.1:") and err.count("\n") == 1


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A real TCP listener that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    sock.close()


def test_prometheus_that_never_answers_times_out(
    silent_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, _, err = run_analyse(silent_server, "--prometheus-timeout-s", "0.5", capsys=capsys)
    assert code == 1
    assert err.strip() == f"error: Prometheus at {silent_server} did not answer in 0.5s"
    assert time.monotonic() - started < 10
