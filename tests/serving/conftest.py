"""Serving fixtures: the real predictor (``python -m serving``) as a subprocess on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT, free_port, wait_for_http

MODEL = "sentiment"


@dataclass
class Server:
    """A running predictor process and helpers to talk to it."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    payload_dir: Path

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs.setdefault("json", body)
        return httpx.post(self.url + path, timeout=30, **kwargs)

    def v1(self, instances: list[Any], **kwargs: Any) -> httpx.Response:
        return self.post(f"/v1/models/{MODEL}:predict", {"instances": instances}, **kwargs)

    def v2(self, texts: list[str], request_id: str = "req-1") -> httpx.Response:
        body = {
            "id": request_id,
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}],
        }
        return self.post(f"/v2/models/{MODEL}/infer", body)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample on /metrics keyed by (sample name, sorted labels)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def payload_records(self) -> list[dict]:
        return [
            json.loads(line)
            for path in sorted(self.payload_dir.rglob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def pinned_digest(model_dir: Path | str) -> str:
    """The digest a deployment pins for a local model directory (what the registry records for it)."""
    from components.common.artifacts import read_manifest

    path = Path(model_dir)
    if not (path / "manifest.json").is_file() and (path / "model").is_dir():
        path = path / "model"
    return read_manifest(path).digest


def launch(model_dir: Path | str, workdir: Path, *args: str) -> Server:
    """Start ``python -m serving`` on a free port (not waiting: several start in parallel).

    A local model directory is pinned to its digest (``--expected-model-digest``) unless ``args`` set
    the digest or ``--allow-unpinned-model`` themselves, as the InferenceService does."""
    port = free_port()
    if (
        not any(a.startswith(("--expected-model-digest", "--allow-unpinned-model")) for a in args)
        and not str(model_dir).startswith("models:/")
        and Path(model_dir).is_dir()
    ):
        args = ("--expected-model-digest", pinned_digest(model_dir), *args)
    workdir.mkdir(parents=True, exist_ok=True)
    payload_dir = workdir / "payloads"
    log_path = workdir / "server.log"
    command = [
        sys.executable,
        "-m",
        "serving",
        "--model-dir",
        str(model_dir),
        "--model-name",
        MODEL,
        "--http-port",
        str(port),
        "--enable_grpc",
        "false",
        "--payload-log-uri",
        str(payload_dir),
        "--warmup-rounds",
        "1",
        *args,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    return Server(proc, f"http://127.0.0.1:{port}", log_path, payload_dir)


def wait_ready(server: Server) -> Server:
    """Block until the predictor reports ready, or fail with its log."""
    try:
        wait_for_http(server.url + "/v2/health/ready", timeout=120, process=server.proc)
    except Exception:
        server.stop(signal.SIGKILL)
        raise AssertionError(f"predictor did not start:\n{server.log()[-3000:]}") from None
    return server


@pytest.fixture(scope="session")
def launched(
    request: pytest.FixtureRequest, baseline_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    """All shared predictors, started together (startup is mostly imports: overlap them, and the
    tiny transformer is built while the TF-IDF servers start)."""
    root = tmp_path_factory.mktemp("servers")
    servers: dict[str, Server] = {}
    try:
        # TF-IDF, payload log flushed every 0.2 s
        servers["tfidf"] = launch(baseline_model_dir, root / "tfidf", "--payload-log-flush-s", "0.2")
        # TF-IDF with every prediction routed through KServe's own REST handlers (no direct path)
        servers["tfidf_via_kserve"] = launch(
            baseline_model_dir,
            root / "via_kserve",
            "--direct-predict",
            "false",
            "--payload-log-flush-s",
            "0.2",
        )
        # a degraded TF-IDF server for the fault-injection and shutdown drill (flushes only at exit)
        servers["drill"] = launch(
            baseline_model_dir,
            root / "drill",
            "--payload-log-flush-s",
            "3600",
            "--fault-latency-ms",
            "400",
            "--fault-error-rate",
            "0.5",
        )
        # the tiny transformer, with a generous batch wait so concurrent requests share batches
        servers["transformer"] = launch(
            request.getfixturevalue("tiny_transformer_model_dir"),
            root / "transformer",
            "--max-batch-wait-ms",
            "20",
            "--max-batch-size",
            "16",
        )
        # the same transformer serving its int8 graph by default: a recorded loss below the bound
        servers["transformer_int8"] = launch(
            request.getfixturevalue("tiny_transformer_model_dir"),
            root / "transformer_int8",
            "--int8-accuracy-loss",
            "0.1",
        )
        # an ensemble (the tiny transformer's fp32 graph averaged with the TF-IDF baseline), as blend writes it
        servers["ensemble"] = launch(request.getfixturevalue("ensemble_model_dir"), root / "ensemble")
        # the four-class task (UCI source x sentiment) in both flavours: responses name every class
        four = request.getfixturevalue("four_class_model_dirs")
        servers["tfidf4"] = launch(four["tfidf"], root / "tfidf4", "--payload-log-flush-s", "0.2")
        servers["transformer4"] = launch(
            four["transformer"], root / "transformer4", "--payload-log-flush-s", "0.2"
        )
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="session")
def tfidf_server(launched: dict[str, Server]) -> Server:
    return wait_ready(launched["tfidf"])


@pytest.fixture(scope="session")
def tfidf_server_via_kserve(launched: dict[str, Server]) -> Server:
    return wait_ready(launched["tfidf_via_kserve"])


@pytest.fixture(scope="session")
def transformer_server(launched: dict[str, Server]) -> Server:
    return wait_ready(launched["transformer"])


@pytest.fixture(scope="session")
def transformer_int8_server(launched: dict[str, Server]) -> Server:
    return wait_ready(launched["transformer_int8"])


@pytest.fixture(scope="session")
def ensemble_server(launched: dict[str, Server]) -> Server:
    return wait_ready(launched["ensemble"])


@pytest.fixture(scope="session")
def drill_server(launched: dict[str, Server]) -> Server:
    return wait_ready(launched["drill"])


@pytest.fixture(scope="session")
def four_class_servers(launched: dict[str, Server]) -> dict[str, Server]:
    """The four-class predictors by flavour."""
    return {flavor: wait_ready(launched[f"{flavor}4"]) for flavor in ("tfidf", "transformer")}
