"""Shared fixtures: data slices, tiny models, an isolated MLflow store, free ports, real servers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RT_CSV = REPO_ROOT / "data" / "rotten_tomatoes" / "rotten_tomatoes.csv"
FOUR_CLASS_DIR = REPO_ROOT / "data" / "uci_source_sentiment"  # the four-class task (see its PROVENANCE.md)
UCI_CSV = REPO_ROOT / "data" / "uci_sentiment_labelled_sentences" / "uci_sentiment_labelled_sentences.csv"
# Third-party files the tests check against, vendored unmodified with their licences (see its PROVENANCE.md).
VENDOR = REPO_ROOT / "tests" / "fixtures" / "vendor"
CRD_SCHEMAS = VENDOR / "schemas" / "crds"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


# Any skip outside its allow-list (a gpu test without CUDA) fails the run: see tests/skip_policy.py.
pytest_plugins = ["tests.skip_policy"]


def require_binary(name: str) -> str:
    """Path of a tool: the project venv's (pip-shipped binaries, the Makefile's fallbacks), else PATH's.

    Missing, the test skips with the reason, and the skip policy fails the run for it.
    """
    in_venv = Path(sys.executable).parent / name
    if in_venv.is_file():
        return str(in_venv)
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (`make test` and .ci/run install every tool the tests use)")
    return path


def mlflow_auth_server_env(config_path: Path, admin: tuple[str, str], secret_key: str) -> dict[str, str]:
    """The environment ``mlflow server --app-name basic-auth`` reads (the variables the chart sets), with no
    client identity of its own."""
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(config_path),
        "MLFLOW_AUTH_ADMIN_USERNAME": admin[0],
        "MLFLOW_AUTH_ADMIN_PASSWORD": admin[1],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret_key,
    }
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(key, None)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 2xx, failing early if ``process`` dies."""
    import httpx

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} came up")
        try:
            if httpx.get(url, timeout=2).is_success:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout}s: {last}")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def rt_frame() -> pd.DataFrame:
    from components.common.data import clean, read_raw

    return clean(read_raw(str(RT_CSV)))


@pytest.fixture(scope="session")
def smoke_csv(tmp_path_factory: pytest.TempPathFactory, rt_frame: pd.DataFrame) -> Path:
    """The stratified <1% smoke subset as a CSV with a split column."""
    from components.common.data import smoke_subset

    path = tmp_path_factory.mktemp("smoke") / "smoke.csv"
    smoke_subset(rt_frame).to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def validated_smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output of ``validate --smoke`` on the shipped data (no MLflow)."""
    from components.validate.gate import ValidateSettings, validate_dataset

    out = tmp_path_factory.mktemp("validated")
    result = validate_dataset(
        ValidateSettings(dataset_uri=str(RT_CSV), output_dir=str(out), smoke=True, track=False)
    )
    assert result.success, result.reason
    return out


@pytest.fixture(scope="session")
def baseline_model_dir(tmp_path_factory: pytest.TempPathFactory, validated_smoke_dir: Path) -> Path:
    """A real TF-IDF baseline trained on the smoke subset: ``<dir>/model`` is the model directory."""
    from components.train_baseline.train import BaselineSettings, train_baseline

    out = tmp_path_factory.mktemp("baseline")
    result = train_baseline(
        BaselineSettings(validated_dir=str(validated_smoke_dir), output_dir=str(out), track=False)
    )
    result.write()
    return Path(result.model_dir)


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory, rt_frame: pd.DataFrame) -> Path:
    """A tiny, randomly initialised BERT classifier + WordPiece tokenizer trained on RT text (seconds)."""
    from tests.tiny_models import build_tiny_checkpoint

    return build_tiny_checkpoint(rt_frame["text"].head(2000).tolist(), tmp_path_factory.mktemp("tiny_ckpt"))


@pytest.fixture(scope="session")
def tiny_transformer_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path) -> Path:
    """The tiny checkpoint as a finished transformer model directory (with manifest), untrained head."""
    from components.common.artifacts import write_manifest
    from components.common.models import TRANSFORMER_FLAVOR
    from components.export.export import export_graphs

    out = tmp_path_factory.mktemp("tiny_model") / "model"
    shutil.copytree(tiny_checkpoint_dir, out)
    metadata = {"max_length": 64, "base_model": "tiny-test"}
    write_manifest(
        out, TRANSFORMER_FLAVOR, metadata | {"onnx": export_graphs(out, 64)}
    )  # as finetune ships it
    return out


@pytest.fixture(scope="session")
def ensemble_model_dir(
    tmp_path_factory: pytest.TempPathFactory, tiny_transformer_model_dir: Path, baseline_model_dir: Path
) -> Path:
    """The tiny transformer (weight 0.6) averaged with the smoke baseline (0.4), as ``blend`` writes it."""
    from components.common.models import write_ensemble

    out = tmp_path_factory.mktemp("ensemble") / "model"
    out.mkdir()
    write_ensemble(
        out,
        [(tiny_transformer_model_dir, 0.6), (baseline_model_dir, 0.4)],
        {"labels": ["negative", "positive"]},
    )
    return out


def four_class_validate_settings(output_dir: Path) -> Any:
    """``validate`` settings of the four-class task (data/uci_source_sentiment, sized as its PROVENANCE says)."""
    from components.validate.gate import ValidateSettings

    return ValidateSettings(
        dataset_uri=str(FOUR_CLASS_DIR / "uci_source_sentiment.csv"),
        label_map=str(FOUR_CLASS_DIR / "label_map.json"),
        output_dir=str(output_dir),
        min_train_rows=800,
        min_eval_rows=350,
        min_class_count=50,
        track=False,
    )


@pytest.fixture(scope="session")
def four_class_validated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Output of ``validate`` on the four-class UCI source × sentiment dataset (with its label_map.json)."""
    from components.validate.gate import validate_dataset

    out = tmp_path_factory.mktemp("validated_4")
    result = validate_dataset(four_class_validate_settings(out))
    assert result.success, result.reason
    return out


@pytest.fixture(scope="session")
def four_class_model_dirs(
    tmp_path_factory: pytest.TempPathFactory, four_class_validated_dir: Path
) -> dict[str, Path]:
    """Four-class model directories (manifest ``labels`` = the UCI source × sentiment classes):
    ``tfidf``, the baseline trained on the dataset; ``transformer``, a tiny BERT (untrained head, named
    classes in its config) with its ONNX graphs, as finetune ships it."""
    from components.common.artifacts import write_manifest
    from components.common.data import read_validated
    from components.common.labels import validated_label_map
    from components.common.models import TRANSFORMER_FLAVOR
    from components.export.export import export_graphs
    from components.train_baseline.train import BaselineSettings, train_baseline
    from tests.tiny_models import build_tiny_checkpoint

    labels = validated_label_map(str(four_class_validated_dir))
    baseline = train_baseline(
        BaselineSettings(
            validated_dir=str(four_class_validated_dir),
            output_dir=str(tmp_path_factory.mktemp("baseline_4")),
            track=False,
        )
    )
    texts = read_validated(str(four_class_validated_dir / "dataset.parquet"))["text"].tolist()
    out = build_tiny_checkpoint(texts, tmp_path_factory.mktemp("tiny_model_4") / "model", labels=labels.names)
    metadata = {"max_length": 64, "base_model": "tiny-test", "labels": list(labels.names)}
    write_manifest(out, TRANSFORMER_FLAVOR, metadata | {"onnx": export_graphs(out, 64)})
    return {"tfidf": Path(baseline.model_dir), "transformer": out}


@pytest.fixture()
def tracking_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An isolated embedded MLflow store (SQLite + local artifacts) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("SENTIMENTOPS_TRACKING_URI", uri)
    return uri


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server in a temporary data directory, on a free loopback port."""
    bindir = (
        next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
        if Path("/usr/lib/postgresql").exists()
        else None
    )
    if bindir is None:
        require_binary("pg_ctl")
        raise AssertionError("unreachable")
    datadir = Path(tempfile.mkdtemp(prefix="sentimentops-pg-"))
    port = free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(datadir, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", "mlflow")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir),
        "-w",
        "-t",
        "60",
        "-l",
        str(datadir / "log"),
        "-o",
        f"-p {port} -h 127.0.0.1 -k {datadir}",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow")
        yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "stop"], timeout=60
        )
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` backed by PostgreSQL, serving artifacts from a local folder."""
    port = free_port()
    artifacts = tmp_path_factory.mktemp("mlflow_artifacts")
    log = (artifacts.parent / "mlflow-server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            postgres_url,
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_http(f"{url}/health", timeout=120, process=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{Path(log.name).read_text()[-3000:]}") from exc
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
