"""The Dockerfiles: hadolint-clean, pinned, non-root, consistent with the templates that run them, and
installing only the hash-checked locks that `make lock` compiles from pyproject (requirements/*.lock)."""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import require_binary
from tests.workflows.conftest import container_templates, load_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile.train"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SERVE_DOCKERFILE = REPO_ROOT / "Dockerfile.serve"
LOCKS = REPO_ROOT / "requirements"
# Each image's lock and the pyproject extras it is compiled from (Makefile `lock`).
IMAGE_LOCKS = {"Dockerfile.train": ("train.lock", "train"), "Dockerfile.serve": ("serve.lock", "serve")}


def _hadolint_run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("hadolint"), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped (Dockerfile.train's
    unless another Dockerfile's text is given)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text() if text is None else text)
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
    assert "--require-hashes --no-deps -r requirements/train.lock" in runs
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


# --- the locks: one source of pins ------------------------------------------------------------------------

# The images' platform (Makefile `lock`: --python-platform x86_64-manylinux_2_28 --python-version 3.11):
# requirement markers are evaluated for it, not for the machine running the tests.
IMAGE_MARKER_ENV = {
    "python_version": "3.11",
    "python_full_version": "3.11.14",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def read_lock(text: str) -> tuple[dict[str, str], list[str]]:
    """A lock's pins (canonical name -> version) and its problems: a line that is not `name==version` with
    at least one --hash, or a name pinned twice."""
    pins: dict[str, str] = {}
    problems = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, *options = line.split()
        match = _PIN.fullmatch(requirement)
        if match is None:
            problems.append(f"not an exact pin: {line[:80]}")
            continue
        name = canonicalize_name(match.group(1))
        if not options or not all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", o) for o in options):
            problems.append(f"{name}: every requirement needs --hash=sha256:... and nothing else")
        if name in pins:
            problems.append(f"{name} is pinned twice")
        pins[name] = match.group(2)
    return pins, problems


def declared_requirements(pyproject: dict[str, Any], extras: set[str]) -> list[Requirement]:
    """pyproject's dependencies plus those of `extras`, self-references (sentimentops[serve]) expanded, for
    the images' platform."""
    project = pyproject["project"]
    own = canonicalize_name(project["name"])
    requirements, seen, todo = list(project["dependencies"]), set(), list(extras)
    while todo:
        extra = todo.pop()
        if extra not in seen:
            seen.add(extra)
            requirements += project["optional-dependencies"][extra]
    out = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_MARKER_ENV):
            continue
        if canonicalize_name(requirement.name) == own:
            out += declared_requirements(pyproject, set(requirement.extras) - seen)
        else:
            out.append(requirement)
    return out


def lock_problems(lock_text: str, pyproject: dict[str, Any], extras: set[str]) -> list[str]:
    """Where a lock and pyproject disagree: a line without a hash, a declared dependency missing from the
    lock, or a pin outside pyproject's range (local tags such as +cpu match their release)."""
    pins, problems = read_lock(lock_text)
    for requirement in declared_requirements(pyproject, extras):
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{name} ({requirement}) is not in the lock: run `make lock`")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{name}=={pins[name]} is outside pyproject's {requirement}: run `make lock`")
    return problems


def closure_problems(pins: dict[str, str], roots: list[Requirement]) -> list[str]:
    """Every dependency of a locked package is locked too, walked through the metadata of the packages this
    environment has installed at the locked version (others are not descended into)."""
    problems, seen = [], set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen or name not in pins:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != Version(pins[name]):
            continue
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({**IMAGE_MARKER_ENV, "extra": e}) for e in {"", *extras}
            ):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency not in pins:
                problems.append(f"{dependency} (required by {name}=={pins[name]}) is not in the lock")
            todo.append((dependency, frozenset(requirement.extras)))
    return problems


def pip_install_problems(dockerfile_text: str) -> list[str]:
    """Every `pip install` in a Dockerfile installs a copied requirements/*.lock with --require-hashes
    --no-deps, or the project itself (`.`) with --no-deps: no package named inline."""
    problems = []
    instructions = _instructions(dockerfile_text)
    copied = {src for kind, args in instructions if kind == "COPY" for src in args.split()[:-1]}
    takes_value = {"-r", "--requirement", "-c", "--constraint", "-f", "--find-links", "-i", "--index-url"}
    for command in (c for kind, args in instructions if kind == "RUN" for c in re.split(r"&&|;", args)):
        words = shlex.split(command)
        if "pip" not in [Path(w).name for w in words[:1]] or words[1:2] != ["install"]:
            continue
        options, positional, locks = set(), [], []
        rest = iter(words[2:])
        for word in rest:
            if word in takes_value:
                value = next(rest, "")
                options.add(word)
                if word in ("-r", "--requirement"):
                    locks.append(value)
            elif word.startswith("-"):
                options.add(word.split("=", 1)[0])
            else:
                positional.append(word)
        if "--no-deps" not in options:
            problems.append(f"pip install without --no-deps: {command.strip()}")
        if options & {"-c", "--constraint", "-i", "--index-url"}:
            problems.append(f"pip install with its own index or constraints: {command.strip()}")
        if locks:
            if positional or "--require-hashes" not in options:
                problems.append(
                    f"a lock is installed with --require-hashes and nothing else: {command.strip()}"
                )
            for lock in locks:
                if not re.fullmatch(r"requirements/[a-z]+\.lock", lock) or not (
                    lock in copied or any(f"{d.rstrip('/')}/" in lock for d in copied)
                ):
                    problems.append(f"{lock}: not a copied requirements/*.lock")
        elif positional != ["."]:
            problems.append(f"pip install names packages inline: {command.strip()}")
    return problems


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("dockerfile", sorted(IMAGE_LOCKS))
def test_the_images_install_only_their_hash_checked_lock(dockerfile: str) -> None:
    text = (REPO_ROOT / dockerfile).read_text()
    assert pip_install_problems(text) == []
    runs = " ".join(args for kind, args in _instructions(text) if kind == "RUN")
    lock, _extra = IMAGE_LOCKS[dockerfile]
    for name in ("build.lock", lock):
        assert f"--require-hashes --no-deps -r requirements/{name}" in runs, name


def test_an_inline_package_or_an_unhashed_install_is_refused() -> None:
    """The check above bites: each one-line change that reopens the door is reported."""
    text = (REPO_ROOT / "Dockerfile.serve").read_text()
    for old, new in (
        ("--require-hashes --no-deps -r requirements/serve.lock", "--no-deps -r requirements/serve.lock"),
        (
            "--require-hashes --no-deps -r requirements/serve.lock",
            "--require-hashes -r requirements/serve.lock",
        ),
        (
            "pip install --no-deps --no-build-isolation .",
            "pip install --no-deps --no-build-isolation . requests",
        ),
        ("-r requirements/serve.lock", "-r requirements/serve.lock httpx==0.28.1"),
        ("-r requirements/serve.lock", "-r requirements/other.lock"),
    ):
        assert old in text
        assert pip_install_problems(text.replace(old, new, 1)), new


@pytest.mark.parametrize("lock,extra", sorted(IMAGE_LOCKS.values()))
def test_each_lock_holds_every_dependency_of_its_extra_within_pyproject_ranges(lock: str, extra: str) -> None:
    text = (LOCKS / lock).read_text()
    assert lock_problems(text, _pyproject(), {extra}) == []
    pins, _ = read_lock(text)
    assert closure_problems(pins, declared_requirements(_pyproject(), {extra})) == []


def test_the_dev_lock_holds_the_train_test_and_check_tools_and_make_venv_installs_only_it() -> None:
    """`make venv` (and so CI) installs requirements/dev.lock hash-checked, with no resolver: its pins must
    cover the extras the tests import, within pyproject's ranges, with the CPU torch the other locks use."""
    text = (LOCKS / "dev.lock").read_text()
    extras = {"train", "dev", "checks"}
    assert lock_problems(text, _pyproject(), extras) == []
    pins, _ = read_lock(text)
    assert closure_problems(pins, declared_requirements(_pyproject(), extras)) == []
    serve_pins, _ = read_lock((LOCKS / "serve.lock").read_text())
    assert pins["torch"] == serve_pins["torch"] and pins["torch"].endswith("+cpu")
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "$(PIP) install -q --require-hashes --no-deps -r requirements/dev.lock" in makefile
    venv_recipe = makefile.split("$(STAMP):", 1)[1].split("\n\n", 1)[0]
    installs = [line for line in venv_recipe.splitlines() if "pip install" in line]
    assert all("--no-deps" in line for line in installs), installs


def test_the_build_lock_holds_the_build_backend_and_pip() -> None:
    pins, problems = read_lock((LOCKS / "build.lock").read_text())
    assert problems == []
    for text in [*_pyproject()["build-system"]["requires"], "pip"]:
        requirement = Requirement(text)
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)]), text


def test_the_locks_drift_test_bites() -> None:
    """A pyproject range or dependency changed without `make lock`, and an unhashed line, are reported."""
    text = (LOCKS / "train.lock").read_text()
    pyproject = _pyproject()
    pyproject["project"]["optional-dependencies"]["train"] = [
        *[d for d in pyproject["project"]["optional-dependencies"]["train"] if not d.startswith("datasets")],
        "datasets==5.3.*",
        "left-pad>=1",
    ]
    found = " ".join(lock_problems(text, pyproject, {"train"}))
    assert "datasets==5.2" in found and "left-pad" in found
    unhashed = re.sub(r"(?m)^(accelerate==\S+) \\\n(\s+--hash=\S+ \\\n)*\s+--hash=\S+$", r"\1", text)
    assert unhashed != text
    assert any("accelerate" in p for p in lock_problems(unhashed, _pyproject(), {"train"}))
    pins, _ = read_lock(text)
    missing = {k: v for k, v in pins.items() if k != "huggingface-hub"}
    assert any("huggingface-hub" in p for p in closure_problems(missing, [Requirement("transformers")]))


def test_the_images_share_versions_and_differ_only_in_torchs_build() -> None:
    """Both images run the same version of every package they share; torch is the CUDA build from PyPI for
    training (the CUDA runtime wheels with it) and PyTorch's CPU build for the predictor (none of them)."""
    train, _ = read_lock((LOCKS / "train.lock").read_text())
    serve, _ = read_lock((LOCKS / "serve.lock").read_text())
    torch = _pyproject()["project"]["dependencies"][0]
    assert torch.startswith("torch==")
    release = torch.split("==", 1)[1].split()[0]
    assert train["torch"] == release and serve["torch"] == f"{release}+cpu"
    assert any(name.startswith("nvidia-") for name in train)
    assert not [name for name in serve if name.startswith(("nvidia-", "triton"))]
    assert set(serve) <= set(train)
    assert {n: v for n, v in serve.items() if train[n] != v} == {"torch": serve["torch"]}


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
    assert "requirements/train.lock" in sources and "requirements/build.lock" in sources
    for source in sources:
        excluded = [
            p for p in patterns if fnmatch.fnmatch(source, p) or source.startswith(p.rstrip("/") + "/")
        ]
        assert not excluded, f"{source} is copied by Dockerfile.train but excluded by {excluded}"
        assert (REPO_ROOT / source).exists(), source
