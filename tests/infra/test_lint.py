"""yamllint on the infrastructure's YAML (repo config .yamllint) and hadolint on the Dockerfiles."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import REPO_ROOT, require_binary
from tests.infra.conftest import CHART_DIR, FIXTURES

YAMLLINT_CONFIG = REPO_ROOT / ".yamllint"
DOCKERFILES = ("Dockerfile.train", "Dockerfile.serve")


def owned_yaml() -> list[str]:
    """The YAML files infra owns: the charts (not their templates, which are Go templates checked by
    rendering, nor files/, monitoring's copies), infra/, the test fixtures and .yamllint itself."""
    paths = [
        *CHART_DIR.glob("*.yaml"),
        *(REPO_ROOT / "infra").rglob("*.yaml"),
        *FIXTURES.rglob("*.yaml"),
        YAMLLINT_CONFIG,
    ]
    return sorted(str(p) for p in paths if "templates" not in p.parts)


def yamllint(*paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("yamllint"), "--strict", "-c", str(YAMLLINT_CONFIG), "-f", "parsable", *paths],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_yamllint_owned_yaml() -> None:
    files = owned_yaml()
    assert len(files) >= 6, files
    proc = yamllint(*files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_bites(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mlflow:\n   replicas: 1\n  port: 5000\nmlflow: {}\n")  # bad indentation, duplicate key
    proc = yamllint(str(bad))
    assert proc.returncode != 0
    assert "key-duplicates" in proc.stdout or "syntax" in proc.stdout, proc.stdout


def hadolint(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("hadolint"), "--no-color", path], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_dockerfiles(name: str) -> None:
    proc = hadolint(str(REPO_ROOT / name))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_bites() -> None:
    proc = hadolint(str(FIXTURES / "insecure_docker" / "Dockerfile"))
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3003"):  # :latest, unpinned apt packages, cd in RUN
        assert rule in proc.stdout, proc.stdout
