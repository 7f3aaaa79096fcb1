"""The chart's MLflow command line, run for real: it starts with the installed MLflow (the image installs
the same pinned version), answers its health check, serves the API to the in-cluster Service names and
refuses any other Host header."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_for_http
from tests.infra.conftest import NAMESPACE, documents, render

pytestmark = pytest.mark.integration


def chart_mlflow_command(values: dict | None = None) -> list[str]:
    (deployment,) = [
        d
        for d in documents(render(values))
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "sentimentops-mlflow"
    ]
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "mlflow"]
    return [*container["command"], *container["args"]]


def local_command(command: list[str], port: int, tmp: Path) -> list[str]:
    """The chart's command with only the cluster-specific values swapped for local ones."""
    local = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--workers": "1",
        "--backend-store-uri": f"sqlite:///{tmp / 'mlflow.db'}",
        "--default-artifact-root": str(tmp / "artifacts"),
    }
    assert command[:2] == ["mlflow", "server"], command
    args = []
    for arg in command[2:]:
        name, sep, _ = arg.partition("=")
        args.append(f"{name}={local[name]}" if sep and name in local else arg)
    assert {a.partition("=")[0] for a in args} >= set(local), "the chart no longer sets one of " + str(local)
    return [sys.executable, "-m", "mlflow", "server", *args]


def test_chart_mlflow_command_line_serves_and_rejects_foreign_hosts(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "mlflow.log").open("w")
    # The container's environment (telemetry off), as the chart sets it.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "HOME": str(tmp_path)}
    proc = subprocess.Popen(
        local_command(chart_mlflow_command(), port, tmp_path), stdout=log, stderr=subprocess.STDOUT, env=env
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}/health", timeout=120, process=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{(tmp_path / 'mlflow.log').read_text()[-3000:]}") from exc
        api = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
        service_host = f"sentimentops-mlflow.{NAMESPACE}.svc.cluster.local:5000"
        assert httpx.get(api, headers={"Host": service_host}, timeout=10).status_code == 200
        assert httpx.get(api, headers={"Host": "mlflow.attacker.example"}, timeout=10).status_code == 403
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
