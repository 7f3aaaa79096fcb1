"""End to end with real parts: a metrics endpoint with the contract names (prometheus_client) and a real
Pushgateway -> real Prometheus running our rules -> real Alertmanager with our routing -> a local HTTP
receiver standing in for Slack's webhook and for the Argo Events webhook.

Only timings are shortened for the test: every ``for:`` of N minutes becomes N seconds (keeping their
order: a page's 2m must still beat a ticket's 15m, or the inhibition is a race), rule groups evaluate every second,
Alertmanager groups wait 1s. Expressions, labels, annotations, routes, inhibitions and Slack templates are
the shipped ones. A "recovery" is a burst of fast, successful requests: it pushes the 5-minute error ratio
(and the slow-request ratio) under the thresholds within seconds instead of five minutes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from tests.conftest import REPO_ROOT, free_port, require_binary
from tests.monitoring.conftest import (
    ALERTMANAGER_YML,
    RULES_FILE,
    Receiver,
    Server,
    start_server,
    wait_until,
)
from tests.monitoring.test_manifests import sensor_filters_accept

pytestmark = pytest.mark.integration
RUNBOOKS = "https://github.com/sentimentops/sentimentops/blob/main/docs/runbooks/"


class FakePredictor:
    """Exposes the serving metrics (exact contract names) and generates traffic in a background thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sentiment_requests", "requests", ["endpoint", "status_code"], registry=self.registry
        )
        self.latency = Histogram(
            "sentiment_request_latency_seconds",
            "latency",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.3, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        info = Gauge(
            "sentiment_model_info",
            "model",
            ["model_name", "model_version", "flavor", "digest"],
            registry=self.registry,
        )
        info.labels("sentiment", "1", "tfidf", "sha256:e2e").set(1)
        self.mode = "ok"
        self._stop = threading.Event()
        self._server: Any = None
        self.start_server()
        self._thread = threading.Thread(target=self._traffic, daemon=True)
        self._thread.start()

    def start_server(self) -> None:
        self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def stop_server(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def burst_of_good_requests(self, n: int = 1_000_000) -> None:
        """``n`` successful requests of 10 ms at once (the client has no bulk observe: bump the child's
        lowest bucket and sum, which is what ``n`` observations of 0.01 s would do)."""
        self.requests.labels("predict", "200").inc(n)
        child = self.latency.labels("predict")
        child._buckets[0].inc(n)  # type: ignore[attr-defined]  # the 0.05 s bucket (non-cumulative storage)
        child._sum.inc(0.01 * n)  # type: ignore[attr-defined]

    def _traffic(self) -> None:
        while not self._stop.wait(0.1):
            for _ in range(10):
                if self.mode == "errors":
                    self.requests.labels("predict", "500").inc()
                    self.requests.labels("predict", "200").inc()
                    self.latency.labels("predict").observe(0.02)
                elif self.mode == "slow":
                    self.requests.labels("predict", "200").inc()
                    self.latency.labels("predict").observe(1.2)
                else:
                    self.requests.labels("predict", "200").inc()
                    self.latency.labels("predict").observe(0.02)

    def close(self) -> None:
        self._stop.set()
        try:
            self.stop_server()
        except Exception:  # already stopped
            pass


@dataclass
class Stack:
    prometheus: Server
    alertmanager: Server
    predictor: FakePredictor
    pushgateway: str
    receiver: Receiver


def _test_rules(tmp_path: Path) -> Path:
    doc = yaml.safe_load(RULES_FILE.read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                minutes = int(str(rule["for"]).removesuffix("m"))
                rule["for"] = f"{minutes}s"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _test_alertmanager_config(tmp_path: Path, receiver_url: str) -> Path:
    doc = yaml.safe_load(ALERTMANAGER_YML.read_text())
    for route in [doc["route"], *doc["route"]["routes"]]:
        if "group_wait" in route or route is doc["route"]:
            route["group_wait"] = "1s"
        route["group_interval"] = "1s"
    for receiver in doc["receivers"]:
        for slack in receiver.get("slack_configs", []):
            key = Path(slack["api_url_file"]).name  # pager-url / tickets-url, as in the Secret
            secret = tmp_path / "secrets" / key
            secret.parent.mkdir(exist_ok=True)
            secret.write_text(f"{receiver_url}/slack/{key.removesuffix('-url')}\n")
            slack["api_url_file"] = str(secret)
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{receiver_url}/argo-events/retrain"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def running_stack(
    tmp_path: Path, receiver: Receiver, pushgateway: str, predictor_port: int
) -> Iterator[tuple[Server, Server]]:
    """Alertmanager (our routing) and Prometheus (our rules) scraping the predictor and the Pushgateway."""
    prometheus_bin = require_binary("prometheus")
    am_bin = require_binary("prometheus-alertmanager")
    am_port, prom_port = free_port(), free_port()
    alertmanager = start_server(
        [
            am_bin,
            f"--config.file={_test_alertmanager_config(tmp_path, receiver.url)}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        f"http://127.0.0.1:{am_port}",
        "/-/ready",
        tmp_path / "alertmanager.log",
    )
    servers = [alertmanager]
    try:
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(_test_rules(tmp_path))],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [
                {
                    # the job label PodMonitor gives: <namespace>/<name>
                    "job_name": "e2e/sentiment-predictor",
                    "honor_labels": True,
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{predictor_port}"],
                            "labels": {"namespace": "e2e", "pod": "predictor-0"},
                        }
                    ],
                },
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,
                    "static_configs": [
                        {
                            "targets": [pushgateway.removeprefix("http://")],
                            "labels": {"namespace": "monitoring"},
                        }
                    ],
                },
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = start_server(
            [
                prometheus_bin,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",
            ],
            f"http://127.0.0.1:{prom_port}",
            "/-/ready",
            tmp_path / "prometheus.log",
        )
        servers.append(prometheus)
        yield prometheus, alertmanager
    finally:
        for server in servers:
            server.proc.terminate()
            try:
                server.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=10)


@pytest.fixture()
def stack(tmp_path: Path, receiver: Receiver, pushgateway: str) -> Iterator[Stack]:
    predictor_port = free_port()
    predictor = FakePredictor(predictor_port)
    try:
        with running_stack(tmp_path, receiver, pushgateway, predictor_port) as (prometheus, alertmanager):
            yield Stack(prometheus, alertmanager, predictor, pushgateway, receiver)
    finally:
        predictor.close()


def query(prometheus: Server, expr: str) -> list[dict[str, Any]]:
    """Instant query against the test Prometheus."""
    resp = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=5)
    resp.raise_for_status()
    return resp.json()["data"]["result"]


def slack(receiver: Receiver, channel: str, alertname: str, status: str) -> list[dict[str, Any]]:
    """Slack messages on ``channel`` (pager|tickets) about ``alertname`` with ``status`` (FIRING|RESOLVED)."""
    out = []
    for body in receiver.received(f"/slack/{channel}"):
        for attachment in body.get("attachments", []):
            title = attachment.get("title", "")
            if title.startswith(f"[{status}") and f"] {alertname} (" in title:
                out.append({"body": body, "attachment": attachment})
    return out


def _assert_slack_message(message: dict[str, Any], alertname: str, channel: str, color: str) -> None:
    body, attachment = message["body"], message["attachment"]
    assert body["channel"] == channel and body["username"] == "alertmanager"
    assert attachment["title_link"] == f"{RUNBOOKS}{alertname}.md"
    assert f"Runbook: {RUNBOOKS}{alertname}.md" in attachment["text"]
    assert attachment["color"] == color


def test_errors_page_and_resolve(stack: Stack) -> None:
    wait_until(
        lambda: query(stack.prometheus, "sentiment:requests:rate5m > 0"), 30, "the predictor to be scraped"
    )
    stack.predictor.mode = "errors"
    (firing, *_) = wait_until(
        lambda: slack(stack.receiver, "pager", "SentimentHighErrorRate", "FIRING"),
        40,
        "the error page in Slack",
    )
    _assert_slack_message(firing, "SentimentHighErrorRate", "#sentiment-oncall", "danger")
    assert "Over 5% of prediction requests fail in e2e" in firing["attachment"]["text"]
    assert not slack(stack.receiver, "tickets", "SentimentHighErrorRate", "FIRING"), (
        "critical must not go to tickets"
    )

    stack.predictor.mode = "ok"
    stack.predictor.burst_of_good_requests()
    (resolved, *_) = wait_until(
        lambda: slack(stack.receiver, "pager", "SentimentHighErrorRate", "RESOLVED"),
        40,
        "the resolved message",
    )
    _assert_slack_message(resolved, "SentimentHighErrorRate", "#sentiment-oncall", "good")


def test_latency_burn_pages_and_inhibits_the_ticket_then_resolves(stack: Stack) -> None:
    wait_until(
        lambda: query(stack.prometheus, "sentiment:requests:rate5m > 0"), 30, "the predictor to be scraped"
    )
    stack.predictor.mode = "slow"
    (firing, *_) = wait_until(
        lambda: slack(stack.receiver, "pager", "SentimentLatencySLOBurn", "FIRING"), 40, "the latency page"
    )
    _assert_slack_message(firing, "SentimentLatencySLOBurn", "#sentiment-oncall", "danger")
    assert (
        "severity=critical" in firing["attachment"]["text"] and "window=fast" in firing["attachment"]["text"]
    )
    # the slow-burn warning fires in Prometheus too, but the page inhibits it in Alertmanager
    wait_until(
        lambda: query(
            stack.prometheus,
            'ALERTS{alertname="SentimentLatencySLOBurn",severity="warning",alertstate="firing"}',
        ),
        45,
        "warning",
    )
    time.sleep(3)
    assert not slack(stack.receiver, "tickets", "SentimentLatencySLOBurn", "FIRING")

    stack.predictor.mode = "ok"
    stack.predictor.burst_of_good_requests()
    wait_until(
        lambda: slack(stack.receiver, "pager", "SentimentLatencySLOBurn", "RESOLVED"),
        40,
        "the latency resolve",
    )


def test_model_server_down_pages_and_resolves(stack: Stack) -> None:
    wait_until(
        lambda: query(stack.prometheus, 'up{job="e2e/sentiment-predictor"} == 1'),
        30,
        "the predictor to be up",
    )
    stack.predictor.stop_server()
    (firing, *_) = wait_until(
        lambda: slack(stack.receiver, "pager", "SentimentModelServerDown", "FIRING"),
        40,
        "the server-down page",
    )
    _assert_slack_message(firing, "SentimentModelServerDown", "#sentiment-oncall", "danger")
    stack.predictor.start_server()
    wait_until(
        lambda: slack(stack.receiver, "pager", "SentimentModelServerDown", "RESOLVED"),
        40,
        "the server-up resolve",
    )


def test_drift_run_alerts_tickets_and_triggers_retraining(
    stack: Stack, tmp_path: Path, rt_validated_dir: Path, ood_texts: list[str]
) -> None:
    from datetime import UTC, datetime, timedelta

    from monitoring.drift.logs import records_for, write_log_file

    # before any drift run: the stale alert (absent metric) reaches the ticket channel
    wait_until(
        lambda: slack(stack.receiver, "tickets", "SentimentDriftJobStale", "FIRING"),
        40,
        "the stale-drift ticket",
    )
    end = datetime.now(UTC)
    write_log_file(
        tmp_path / "logs",
        "sentiment",
        records_for(ood_texts, np.full(len(ood_texts), 0.7), end - timedelta(hours=2), timedelta(seconds=2)),
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitoring.drift",
            "--log-root",
            str(tmp_path / "logs"),
            "--reference-uri",
            str(rt_validated_dir),
            "--pushgateway-url",
            stack.pushgateway,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DRIFT DETECTED" in proc.stdout

    (ticket, *_) = wait_until(
        lambda: slack(stack.receiver, "tickets", "SentimentDriftDetected", "FIRING"), 60, "the drift ticket"
    )
    _assert_slack_message(ticket, "SentimentDriftDetected", "#sentiment-tickets", "warning")
    hooks = wait_until(lambda: stack.receiver.received("/argo-events/retrain"), 60, "the retraining webhook")
    body = hooks[0]
    assert body["status"] == "firing" and body["commonLabels"]["alertname"] == "SentimentDriftDetected"
    assert body["commonLabels"]["model_name"] == "sentiment"
    assert sensor_filters_accept(body), "the Sensor would ignore this notification"
    # the successful run also resolves the stale-job alert
    wait_until(
        lambda: slack(stack.receiver, "tickets", "SentimentDriftJobStale", "RESOLVED"),
        40,
        "the stale resolve",
    )
    assert not slack(stack.receiver, "pager", "SentimentDriftDetected", "FIRING")
