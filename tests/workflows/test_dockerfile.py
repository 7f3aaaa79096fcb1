"""Dockerfile.train: hadolint-clean, pinned, non-root, and consistent with the templates that run it."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path

from tests.conftest import require_binary
from tests.workflows.conftest import container_templates, load_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile.train"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
CONSTRAINTS = REPO_ROOT / "workflows" / "image-constraints.txt"


def _hadolint_run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("hadolint"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_hadolint_is_clean_and_every_ignore_is_justified() -> None:
    proc = _hadolint_run(DOCKERFILE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = line.split("ignore=", 1)[1].split(None, 1)[1:] or [lines[number - 1].lstrip("# ")]
            assert len(reason[0]) > 10, f"line {number + 1}: hadolint ignore without a justification"


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nRUN pip install torch\n"
    )
    proc = _hadolint_run(bad)
    assert proc.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013"):
        assert rule in proc.stdout, proc.stdout


def test_base_images_are_pinned_and_the_image_runs_as_non_root() -> None:
    instructions = _instructions()
    bases = [args.split()[0] for kind, args in instructions if kind == "FROM"]
    # By tag and digest: a re-pushed tag cannot change what a rebuild starts from.
    pinned = r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}"
    assert bases and all(re.fullmatch(pinned, b) for b in bases), bases
    serve = (REPO_ROOT / "Dockerfile.serve").read_text()
    assert set(re.findall(r"^FROM (\S+)", serve, re.M)) == {bases[0]}, "both images start from the same base"
    assert "--constraint constraints.txt" in serve and "workflows/image-constraints.txt" in serve
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), (
        "the last USER must be a numeric non-root UID:GID"
    )
    entrypoint = [args for kind, args in instructions if kind == "ENTRYPOINT"]
    assert entrypoint == ['["python", "-m"]']
    env = " ".join(args for kind, args in instructions if kind == "ENV")
    for var in ("HOME=/tmp", "HF_HOME=/tmp/", "PYTHONDONTWRITEBYTECODE=1"):
        assert var in env  # read-only root filesystem: scratch under /tmp, no .pyc writes
    runs = " ".join(args for kind, args in instructions if kind == "RUN")
    assert "torch==2.13.0" in runs and "--constraint constraints.txt" in runs
    assert "compileall" in runs


def test_templates_run_as_the_images_user_with_its_modules() -> None:
    dockerfile = DOCKERFILE.read_text()
    uid = re.search(r"--uid (\d+)", dockerfile)
    assert uid is not None
    copied = {args.split()[0] for kind, args in _instructions() if kind == "COPY" and "--from" not in args}
    for name in ("sentiment-retrain.yaml", "batch-score.yaml"):
        manifest = load_manifest(name)
        assert manifest["spec"]["securityContext"]["runAsUser"] == int(uid.group(1))
        for template in container_templates(manifest).values():
            command = template["container"]["command"]
            # python -m <module>, or sh -c '<script>' <module> for a step whose held exit codes end it with 0
            module = command[3] if command[0] == "sh" else command[2]
            package = module.split(".")[0]
            assert package in copied, f"{module} is not copied into the image"
            assert (REPO_ROOT / module.replace(".", "/") / "__main__.py").is_file(), module


def test_constraints_pin_every_dependency_consistently_with_pyproject() -> None:
    pins = dict(
        line.split("==", 1)
        for line in CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    assert pins["torch"] == "2.13.0"
    assert not [v for v in pins.values() if "+" in v], "local version tags (e.g. +cpu) cannot be installed"
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in dependencies:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9.]+)(\.\*)?", requirement)
        if match:
            name, version, wildcard = match.groups()
            pinned = pins.get(name.lower().replace("_", "-"))
            assert pinned is not None, f"{name} missing from {CONSTRAINTS.name}"
            assert pinned == version or (wildcard and pinned.startswith(version + ".")), (name, pinned)


def test_dockerignore_excludes_local_state_but_not_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".venv", "mlruns", "artifacts", "tests", "data", ".git"):
        assert required in patterns, f".dockerignore should exclude {required}"
    sources = [
        src
        for kind, args in _instructions()
        if kind == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    ]
    assert "workflows/image-constraints.txt" in sources
    for source in sources:
        excluded = [
            p for p in patterns if fnmatch.fnmatch(source, p) or source.startswith(p.rstrip("/") + "/")
        ]
        assert not excluded, f"{source} is copied by Dockerfile.train but excluded by {excluded}"
        assert (REPO_ROOT / source).exists(), source
