"""Fixtures of the monitoring tests: real Pushgateway / Prometheus / Alertmanager processes, a local
HTTP receiver standing in for Slack and the Argo Events webhook, CRD schema validation, datasets."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
import yaml

from tests.conftest import CRD_SCHEMAS, REPO_ROOT, RT_CSV, UCI_CSV, free_port, require_binary, wait_for_http

MONITORING = REPO_ROOT / "monitoring"
RULES_FILE = MONITORING / "prometheus" / "rules" / "sentiment.rules.yaml"
ALERTMANAGER_YML = MONITORING / "alertmanager" / "alertmanager.yml"
RULE_TESTS = MONITORING / "prometheus" / "tests" / "sentiment.rules.test.yaml"


def crd_schema(group: str, kind: str, version: str) -> dict[str, Any]:
    """The JSON schema of a CRD from the vendored catalogue (tests/fixtures/vendor)."""
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    return json.loads(path.read_text())


def validate_cr(doc: dict[str, Any]) -> None:
    """Validate a custom resource against its CRD schema (unknown keys are rejected by the schemas)."""
    group, version = doc["apiVersion"].split("/")
    schema = crd_schema(group, doc["kind"], version)
    # No metaschema check: the converted CRD schemas carry Kubernetes extensions it trips over.
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{doc['kind']} {doc['metadata'].get('name')}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Receiver:
    """A local HTTP server recording every POSTed JSON body by path (Slack webhook / Argo Events stand-in)."""

    url: str
    server: ThreadingHTTPServer
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.posts if p == path]


def _start_receiver() -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            receiver = holder["r"]
            with receiver.lock:
                receiver.posts.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver = Receiver(url=f"http://127.0.0.1:{port}", server=server)
    holder["r"] = receiver
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = _start_receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture()
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway on a free loopback port; yields its base URL."""
    binary = require_binary("prometheus-pushgateway")
    port = free_port()
    log = open(tmp_path / "pushgateway.log", "wb")  # noqa: SIM115 (closed below)
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: keep each test's own.
    proc = subprocess.Popen(
        [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            f"--persistence.file={tmp_path / 'pushgateway.data'}",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/-/ready", timeout=30, process=proc)
        yield url
    finally:
        _stop(proc)
        log.close()


@dataclass
class Server:
    url: str
    proc: subprocess.Popen


def start_server(args: list[str], url: str, ready_path: str, log_path: Path) -> Server:
    """Start a process, wait until ``url + ready_path`` answers 2xx."""
    log = open(log_path, "wb")  # noqa: SIM115 (the process owns it until it ends)
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        wait_for_http(url + ready_path, timeout=30, process=proc)
    except Exception:
        _stop(proc)
        raise AssertionError(f"{args[0]} did not start:\n{log_path.read_text()[-3000:]}") from None
    return Server(url=url, proc=proc)


@pytest.fixture(scope="session")
def rt_validated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full Rotten Tomatoes dataset as a validated-dataset folder (``dataset.parquet``)."""
    from components.common.data import clean, read_raw, write_validated

    out = tmp_path_factory.mktemp("rt_validated")
    write_validated(clean(read_raw(str(RT_CSV))), out / "dataset.parquet")
    return out


@pytest.fixture(scope="session")
def rt_test_texts(rt_validated_dir: Path) -> list[str]:
    from components.common.data import load_split

    return load_split(rt_validated_dir / "dataset.parquet", "test")["text"].tolist()


@pytest.fixture(scope="session")
def ood_texts() -> list[str]:
    """Out-of-domain reviews: the UCI amazon (phones) and imdb sentences."""
    frame = pd.read_csv(UCI_CSV, dtype=str, keep_default_na=False)
    return frame[frame["source"].isin(["amazon", "imdb"])]["text"].tolist()
