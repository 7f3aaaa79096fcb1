"""MLflow with authentication on (its basic-auth app, PostgreSQL backend): anonymous and read-only
identities cannot move aliases; the pipeline registers and the rollout promotes with their own
credentials. A real ``mlflow server --app-name basic-auth`` on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.common.mlflow_auth import AuthBootstrapSettings, as_identity, auth_config_ini, bootstrap
from tests.conftest import free_port, mlflow_auth_server_env, wait_for_http

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-password-0123")
PASSWORDS = {
    "pipeline": "pipeline-password-0123",
    "rollout": "rollout-password-0123",
    "reader": "reader-pw-0123456",
}
MODEL = "sentiment"
SECOND_TASK = "uci-source-sentiment"  # a second task's registered model (helm mlflow.auth.registeredModels)
DIGEST = "ab" * 32
URI = "gs://sentimentops-prod-artifacts/mlflow/1/{}/artifacts/model"


def _database(postgres_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def auth_server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow_auth")
    backend = _database(postgres_url, "mlflow_authtest")
    auth_db = _database(postgres_url, "mlflow_authtest_users")
    ini = root / "basic_auth.ini"
    ini.write_text(auth_config_ini(auth_db.replace("postgresql://", "postgresql+psycopg://")))
    port = free_port()
    log = (root / "server.log").open("w")
    env = mlflow_auth_server_env(ini, ADMIN, "test-only-secret-key-0123456789")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--host", "127.0.0.1",
         "--port", str(port), "--backend-store-uri", backend, "--artifacts-destination", str(root / "artifacts"),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}/health", timeout=180, process=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{Path(log.name).read_text()[-3000:]}") from exc
        settings = AuthBootstrapSettings(
            tracking_uri=url,
            other_registered_models=f" {SECOND_TASK}, {MODEL} ",
            **{f"{role}_password": pw for role, pw in PASSWORDS.items()},
        )
        with as_identity(*ADMIN):
            first = bootstrap(settings)
            again = bootstrap(settings)
        assert set(first.created_users) == {"pipeline", "rollout", "reader"}
        assert again.created_users == () and again.grants == first.grants
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _client(url: str):  # noqa: ANN202
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def _versions(url: str) -> tuple[str, str]:
    """Two versions with gs:// sources and digests (as admin): (stable, candidate)."""
    with as_identity(*ADMIN):
        client = _client(url)
        a = client.create_model_version(MODEL, source=URI.format("a" * 32), tags={"model_digest": "a" * 64})
        b = client.create_model_version(MODEL, source=URI.format("b" * 32), tags={"model_digest": DIGEST})
    return str(a.version), str(b.version)


def test_anonymous_and_reader_cannot_move_an_alias_the_rollout_can(
    auth_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    stable, candidate = _versions(auth_server)
    with pytest.raises(MlflowException) as anonymous:
        _client(auth_server).set_registered_model_alias(MODEL, "champion", candidate)
    assert "401" in str(anonymous.value) or "Unauthorized" in str(anonymous.value)
    with pytest.raises(MlflowException):  # an anonymous request cannot even read
        _client(auth_server).get_model_version(MODEL, candidate)
    with as_identity("reader", PASSWORDS["reader"]):
        assert _client(auth_server).get_model_version(MODEL, candidate).tags["model_digest"] == DIGEST
        with pytest.raises(MlflowException) as reader:
            _client(auth_server).set_registered_model_alias(MODEL, "champion", candidate)
        assert "403" in str(reader.value) or "PERMISSION_DENIED" in str(reader.value)
        with pytest.raises(MlflowException):  # nor rewrite the digest the deployment is pinned to
            _client(auth_server).set_model_version_tag(MODEL, candidate, "model_digest", "f" * 64)
    with as_identity("rollout", PASSWORDS["rollout"]):
        _client(auth_server).set_registered_model_alias(MODEL, "champion", candidate)
        assert str(_client(auth_server).get_model_version_by_alias(MODEL, "champion").version) == candidate


def test_a_second_tasks_model_is_written_by_the_pipeline_and_the_rollout_only(auth_server: str) -> None:
    """Without the bootstrap's grant, a retrain of the four-class task could not register and its canary
    could not move an alias (default permission READ)."""
    from mlflow.exceptions import MlflowException

    with as_identity("pipeline", PASSWORDS["pipeline"]):
        version = _client(auth_server).create_model_version(
            SECOND_TASK, source=URI.format("c" * 32), tags={"model_digest": "c" * 64}
        )
    with as_identity("reader", PASSWORDS["reader"]):
        with pytest.raises(MlflowException) as reader:
            _client(auth_server).set_registered_model_alias(SECOND_TASK, "champion", version.version)
        assert "403" in str(reader.value) or "PERMISSION_DENIED" in str(reader.value)
    with as_identity("rollout", PASSWORDS["rollout"]):
        _client(auth_server).set_registered_model_alias(SECOND_TASK, "champion", version.version)
    with as_identity("reader", PASSWORDS["reader"]):
        champion = _client(auth_server).get_model_version_by_alias(SECOND_TASK, "champion")
        assert str(champion.version) == str(version.version)
    with as_identity("reader", PASSWORDS["reader"]), pytest.raises(MlflowException):
        _client(auth_server).create_model_version(  # a model nobody granted stays read-only to readers
            "not-a-task", source=URI.format("d" * 32), tags={"model_digest": "d" * 64}
        )


def test_rollout_promotes_with_its_credentials_and_not_with_the_reader_s(
    auth_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.rollout import manifest
    from serving.rollout.cli import main

    stable, candidate = _versions(auth_server)
    with as_identity(*ADMIN):
        _client(auth_server).set_registered_model_alias(MODEL, "champion", stable)
        _client(auth_server).set_registered_model_alias(MODEL, "challenger", candidate)
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    text = f"""apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sentiment
  annotations:
    sentimentops.io/model-version: "{stable}"
spec:
  predictor:
    model:
      storageUri: {URI.format("a" * 32)}
"""
    (overlay / "inferenceservice.yaml").write_text(manifest.pin_digest(text, "a" * 64))
    monkeypatch.setenv("SENTIMENTOPS_TRACKING_URI", auth_server)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    def rollout(command: str, who: str) -> int:
        with as_identity(who, PASSWORDS[who]):
            try:
                main([command, "--overlay", str(overlay)])
            except SystemExit as exc:
                return int(exc.code or 0)
            return 0

    assert rollout("propose", "rollout") == 0
    state = manifest.read_state((overlay / "inferenceservice.yaml").read_text())
    assert state.model_version == candidate and state.model_digest == DIGEST
    assert rollout("promote", "reader") == 1  # refused by the server; nothing written
    assert manifest.read_state((overlay / "inferenceservice.yaml").read_text()).in_canary
    assert rollout("promote", "rollout") == 0
    with as_identity("reader", PASSWORDS["reader"]):
        assert str(_client(auth_server).get_model_version_by_alias(MODEL, "champion").version) == candidate


def test_pipeline_trains_evaluates_and_registers_with_its_credentials(
    auth_server: str, tmp_path: Path, validated_smoke_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components.common import registry
    from components.common.model_source import resolve_model
    from components.common.tracking import log_model_dir, step_run
    from components.evaluate.evaluation import EvaluateSettings, evaluate
    from components.register.registration import RegisterSettings, register
    from components.train_baseline.train import BaselineSettings, train_baseline

    monkeypatch.setenv("SENTIMENTOPS_TRACKING_URI", auth_server)
    with as_identity("pipeline", PASSWORDS["pipeline"]):
        dirs = {}
        for role, c in (("baseline", 0.05), ("challenger", 4.0)):
            settings = BaselineSettings(
                validated_dir=str(validated_smoke_dir), output_dir=str(tmp_path / role), c=c
            )
            with step_run(settings, f"train-{role}") as run:
                result = train_baseline(settings, run_id=run.info.run_id)
                result.model_artifact_uri = log_model_dir(result.model_dir, result.dataset_hash, "smoke")
            result.write()
            dirs[role] = result.output_dir
        evaluate(
            EvaluateSettings(
                validated_dir=str(validated_smoke_dir),
                baseline_dir=dirs["baseline"],
                challenger_dir=dirs["challenger"],
                output_dir=str(tmp_path / "evaluation"),
                latency_samples=5,
                compare_champion=False,  # this server's "sentiment" champion is a fake gs:// version
            )
        )
        # smoke evaluations register under their own name (created by the pipeline identity itself)
        settings = RegisterSettings(
            evaluation_dir=str(tmp_path / "evaluation"),
            promotion_margin=-1.0,
            registered_model=f"{MODEL}-smoke",
            gate_min_samples=0,
            gate_test="none",
        )
        registered = register(settings)
        version = registry.version_by_alias(registry.write_client(settings), f"{MODEL}-smoke", "challenger")
    assert registered.created and version is not None and len(version.tags["model_digest"]) == 64
    with as_identity("reader", PASSWORDS["reader"]):  # the reader downloads and verifies it, read-only
        loaded = resolve_model(f"models:/{MODEL}-smoke@challenger")
    assert loaded.version == str(version.version)
    assert loaded.model.manifest.digest == loaded.digest == version.tags["model_digest"]
