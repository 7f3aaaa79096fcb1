"""The chart's MLflow command line, run for real: it starts with the installed MLflow (the image installs
the same pinned version) behind its basic-auth app with the chart's auth config, answers its health check,
refuses anonymous API calls, serves authenticated ones to the in-cluster Service names and refuses any
other Host header."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, mlflow_auth_server_env, wait_for_http
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


def chart_auth_config(values: dict | None = None) -> str:
    (config,) = [
        d
        for d in documents(render(values))
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "sentimentops-mlflow-auth"
    ]
    return config["data"]["basic_auth.ini"]


def test_chart_auth_config_is_what_the_auth_module_writes() -> None:
    """One definition of the server's auth config: the chart's ConfigMap is auth_config_ini's text."""
    from components.common.mlflow_auth import auth_config_ini

    text = chart_auth_config()
    database = next(line.split(" = ", 1)[1] for line in text.splitlines() if line.startswith("database_uri"))
    assert database.startswith("postgresql+psycopg://") and database.endswith("/mlflow_auth")
    assert text == auth_config_ini(database)


def test_the_bootstrap_job_grants_every_task_model_the_chart_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chart's bootstrap Job env, read by the bootstrap's own settings, names every registered model of
    mlflow.auth.registeredModels (the second task included), so its retrain and canary may write it."""
    from components.common.mlflow_auth import AuthBootstrapSettings
    from tests.infra.conftest import load_values

    values = load_values("values-prod.yaml")
    (job,) = [
        d
        for d in documents(render(values))
        if d["kind"] == "Job" and d["metadata"]["name"] == "sentimentops-mlflow-auth-bootstrap"
    ]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    for item in container["env"]:
        if "value" in item:
            monkeypatch.setenv(item["name"], item["value"])
    for role in ("pipeline", "rollout", "reader"):
        monkeypatch.setenv(f"SENTIMENTOPS_{role.upper()}_PASSWORD", "x" * 12)
    settings = AuthBootstrapSettings()
    assert settings.registered_models() == ["sentiment", "uci-source-sentiment"]
    one_task = {"mlflow": {"auth": {"registeredModels": ["a"]}}}
    (job,) = [
        d for d in documents(render(one_task)) if d["kind"] == "Job" and "bootstrap" in d["metadata"]["name"]
    ]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["SENTIMENTOPS_REGISTERED_MODEL"], env["SENTIMENTOPS_OTHER_REGISTERED_MODELS"]) == ("a", "")


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
    # The container's environment as the chart sets it: telemetry off, the auth app's config (its database
    # swapped for a local one), the admin from the Secret.
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(
        "\n".join(
            f"database_uri = sqlite:///{tmp_path / 'auth.db'}" if line.startswith("database_uri") else line
            for line in chart_auth_config().splitlines()
        )
        + "\n"
    )
    admin = ("admin", "local-admin-password-0123")
    env = {
        **mlflow_auth_server_env(ini, admin, "local-test-secret-key-0123456789"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "HOME": str(tmp_path),
    }
    command = local_command(chart_mlflow_command(), port, tmp_path)
    assert "--app-name=basic-auth" in command
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}/health", timeout=120, process=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\n{(tmp_path / 'mlflow.log').read_text()[-3000:]}") from exc
        api = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
        service_host = f"sentimentops-mlflow.{NAMESPACE}.svc.cluster.local:5000"
        assert httpx.get(api, headers={"Host": service_host}, timeout=10).status_code == 401  # anonymous
        assert httpx.get(api, headers={"Host": service_host}, auth=admin, timeout=10).status_code == 200
        foreign = httpx.get(api, headers={"Host": "mlflow.attacker.example"}, auth=admin, timeout=10)
        assert foreign.status_code == 403
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
