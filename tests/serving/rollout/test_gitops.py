"""propose / promote / rollback on a temporary Git repository against a real MLflow registry (SQLite).

Each test copies the real prod overlay into a fresh Git repo, registers versions in an isolated MLflow
store (``tracking_env``; a migrated empty database is copied in, which saves ~8 s of schema migration per
test), runs the CLI and checks the exact ``git diff`` and the registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port

OVERLAY = Path("k8s/overlays/prod")
NEW_URI = "gs://sentimentops-prod-artifacts/mlflow/1/fedcba9876543210fedcba9876543210/artifacts/model"
MODEL = "sentiment"
STABLE_DIGEST = "5" * 64  # used when the real overlay does not pin one yet
NEW_DIGEST = "c" * 64


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` (a throwaway repository under tmp_path) and return stdout."""
    out = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
    )
    return out.stdout


def changed_lines(repo: Path) -> list[str]:
    """The +/- lines of the working tree's diff against HEAD (no headers, no context), each as its sign
    and its stripped content, sorted (the overlay's own indentation and key order are not ours)."""
    diff = git(repo, "diff", "-U0", "--no-color")
    return sorted(
        line[0] + line[1:].strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def lines(*items: str) -> list[str]:
    return sorted(item[0] + item[1:].strip() for item in items)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite database with its schema already migrated."""
    from components.common import registry
    from components.common.settings import TrackingSettings

    path = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    registry.write_client(TrackingSettings(tracking_uri=f"sqlite:///{path}"))
    return path


@pytest.fixture()
def mlflow_client(tracking_env: str, migrated_db: Path) -> object:
    """A real MLflow client on this test's own registry, with ``sentiment`` v1 (the served champion)."""
    from components.common import registry
    from components.common.settings import TrackingSettings

    db = Path(tracking_env.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_db, db)
    client = registry.write_client(TrackingSettings())
    client.create_registered_model(MODEL)
    return client


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A Git repo holding a copy of the real prod overlay, committed."""
    root = tmp_path / "gitops"
    (root / OVERLAY).mkdir(parents=True)
    from serving.rollout import manifest

    text = (REPO_ROOT / OVERLAY / "inferenceservice.yaml").read_text()
    if manifest.read_state(text).model_digest is None:
        text = manifest.pin_digest(text, STABLE_DIGEST)
    (root / OVERLAY / "inferenceservice.yaml").write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "ci@sentimentops.test")
    git(root, "config", "user.name", "ci")
    commit_all(root, "prod overlay")
    return root


@pytest.fixture()
def served(repo: Path) -> tuple[str, str]:
    """(model version, storageUri) the overlay serves now."""
    from serving.rollout.manifest import read_state

    state = read_state((repo / OVERLAY / "inferenceservice.yaml").read_text())
    assert state.model_version and not state.in_canary
    return state.model_version, state.storage_uri


def served_digest(repo: Path) -> str:
    from serving.rollout.manifest import read_state

    digest = read_state((repo / OVERLAY / "inferenceservice.yaml").read_text()).model_digest
    assert digest
    return digest


@pytest.fixture()
def registry_with_challenger(mlflow_client: object, served: tuple[str, str], repo: Path) -> str:
    """v<served> is champion (its source is the overlay's storageUri); the next version is challenger."""
    version, uri = served
    client = mlflow_client
    created = None
    while created is None or int(created.version) < int(version):  # registry versions are sequential
        created = client.create_model_version(MODEL, source=uri, tags={"model_digest": served_digest(repo)})
    client.set_registered_model_alias(MODEL, "champion", version)
    challenger = client.create_model_version(MODEL, source=NEW_URI, tags={"model_digest": NEW_DIGEST})
    client.set_registered_model_alias(MODEL, "challenger", challenger.version)
    return str(challenger.version)


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture()
def cli(repo: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``python -m serving.rollout`` in-process on the temp repo's overlay: (exit code, out, err)."""
    from serving.rollout.cli import main

    def run(command: str, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([command, "--overlay", str(repo / OVERLAY), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def alias(client: object, name: str) -> str | None:
    from components.common.registry import version_by_alias

    version = version_by_alias(client, MODEL, name)
    return None if version is None else str(version.version)


def test_propose_writes_exactly_the_canary_and_rerun_is_noop(
    repo: Path, cli: Cli, registry_with_challenger: str, served: tuple[str, str]
) -> None:
    stable_version, stable_uri = served
    stable_digest = served_digest(repo)
    code, out, err = cli("propose", "--canary-traffic-percent", "10")
    assert code == 0, err
    assert changed_lines(repo) == lines(
        f'-sentimentops.io/model-version: "{stable_version}"',
        f'+sentimentops.io/model-version: "{registry_with_challenger}"',
        f'+sentimentops.io/stable-model-version: "{stable_version}"',
        f"+sentimentops.io/stable-storage-uri: {stable_uri}",
        f'+sentimentops.io/stable-model-digest: "{stable_digest}"',
        f'-sentimentops.io/model-digest: "{stable_digest}"',
        f'+sentimentops.io/model-digest: "{NEW_DIGEST}"',
        "+canaryTrafficPercent: 10",
        f"-storageUri: {stable_uri}",
        f"+storageUri: {NEW_URI}",
        f'-value: "{stable_digest}"',
        f'+value: "{NEW_DIGEST}"',
    )
    assert "wrote" in out
    commit_all(repo, "propose")

    code, out, _ = cli("propose", "--canary-traffic-percent", "10")
    assert code == 0 and "unchanged" in out
    assert git(repo, "status", "--porcelain") == ""

    # Ramp: only the percent changes.
    code, _, _ = cli("propose", "--canary-traffic-percent", "25")
    assert code == 0
    assert changed_lines(repo) == lines("-canaryTrafficPercent: 10", "+canaryTrafficPercent: 25")


def test_propose_pins_the_recorded_int8_loss_for_the_predictor(
    repo: Path,
    cli: Cli,
    mlflow_client: object,
    registry_with_challenger: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """evaluate's int8 tag reaches the predictor through the overlay env (it has no route to MLflow); a
    tag that is not a number is left out, so the predictor serves fp32."""
    from serving.config import ServingSettings
    from serving.rollout.manifest import INT8_LOSS_ENV, read_state

    client = mlflow_client
    client.set_model_version_tag(MODEL, registry_with_challenger, "int8_accuracy_loss_validation", "0.31")
    code, _, err = cli("propose", "--canary-traffic-percent", "10")
    assert code == 0, err
    overlay = (repo / OVERLAY / "inferenceservice.yaml").read_text()
    state = read_state(overlay)
    assert state.int8_accuracy_loss == "0.31"
    assert '+value: "0.31"' in changed_lines(repo) and f"+- name: {INT8_LOSS_ENV}" in changed_lines(repo)
    # The predictor reads that env, as a number.
    assert state.int8_accuracy_loss is not None
    monkeypatch.setenv(INT8_LOSS_ENV, state.int8_accuracy_loss)
    assert ServingSettings().int8_accuracy_loss == 0.31

    code, _, err = cli("rollback", "--reason", "test")
    assert code == 0, err
    client.set_model_version_tag(MODEL, registry_with_challenger, "int8_accuracy_loss_validation", "nan")
    client.delete_model_version_tag(MODEL, registry_with_challenger, "rollback_reason")
    code, _, err = cli("propose", "--canary-traffic-percent", "10")
    assert code == 0, err
    assert read_state((repo / OVERLAY / "inferenceservice.yaml").read_text()).int8_accuracy_loss is None


def test_promote_moves_champion_and_keeps_the_canary_model(
    repo: Path, cli: Cli, mlflow_client: object, registry_with_challenger: str, served: tuple[str, str]
) -> None:
    stable_version, stable_uri = served
    stable_digest = served_digest(repo)
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")

    code, out, err = cli("promote")
    assert code == 0, err
    assert changed_lines(repo) == lines(
        f'-sentimentops.io/stable-model-version: "{stable_version}"',
        f"-sentimentops.io/stable-storage-uri: {stable_uri}",
        f'-sentimentops.io/stable-model-digest: "{stable_digest}"',
        "-canaryTrafficPercent: 10",
    )
    assert alias(mlflow_client, "champion") == registry_with_challenger
    assert f"champion: version {stable_version} -> {registry_with_challenger}" in out
    commit_all(repo, "promote")

    # Against the commit before the canary, only the served model changed.
    diff = git(repo, "diff", "-U0", "HEAD~2", "--", str(OVERLAY)).splitlines()
    assert sorted(
        x[0] + x[1:].strip() for x in diff if x[:1] in "+-" and not x.startswith(("+++", "---"))
    ) == lines(
        f'-sentimentops.io/model-version: "{stable_version}"',
        f'+sentimentops.io/model-version: "{registry_with_challenger}"',
        f'-sentimentops.io/model-digest: "{stable_digest}"',
        f'+sentimentops.io/model-digest: "{NEW_DIGEST}"',
        f"-storageUri: {stable_uri}",
        f"+storageUri: {NEW_URI}",
        f'-value: "{stable_digest}"',
        f'+value: "{NEW_DIGEST}"',
    )
    for command in ("promote", "rollback", "propose"):  # all no-ops now
        code, out, err = cli(command)
        assert code == 0 and "unchanged" in out, (command, out, err)
    assert git(repo, "status", "--porcelain") == ""
    assert alias(mlflow_client, "champion") == registry_with_challenger


def test_rollback_restores_the_stable_bytes_and_tags_the_reason(
    repo: Path, cli: Cli, mlflow_client: object, registry_with_challenger: str, served: tuple[str, str]
) -> None:
    stable_version, _ = served
    original = (repo / OVERLAY / "inferenceservice.yaml").read_bytes()
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")

    code, out, err = cli("rollback", "--reason", "analysis: 5xx error rate 0.31 > 0.02")
    assert code == 0, err
    assert (repo / OVERLAY / "inferenceservice.yaml").read_bytes() == original
    version = mlflow_client.get_model_version(MODEL, registry_with_challenger)
    assert version.tags["rollback_reason"] == "analysis: 5xx error rate 0.31 > 0.02"
    assert alias(mlflow_client, "champion") == stable_version
    assert alias(mlflow_client, "challenger") == registry_with_challenger
    commit_all(repo, "rollback")

    code, out, _ = cli("rollback", "--reason", "again")
    assert code == 0 and "unchanged" in out
    assert git(repo, "status", "--porcelain") == ""
    assert (
        mlflow_client.get_model_version(MODEL, registry_with_challenger)
        .tags["rollback_reason"]
        .startswith("analysis:")
    )


def test_missing_challenger_is_one_line_error_and_nothing_written(
    repo: Path, mlflow_client: object, tracking_env: str
) -> None:
    """Through the real entrypoint (a subprocess): stderr is one line, exit 1, overlay untouched."""
    proc = subprocess.run(
        [sys.executable, "-m", "serving.rollout", "propose", "--overlay", str(repo / OVERLAY)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "SENTIMENTOPS_TRACKING_URI": tracking_env},
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert lines == ["error: registered model 'sentiment' has no version with alias 'challenger'"]
    assert git(repo, "status", "--porcelain") == ""


def test_propose_refuses_an_artifact_uri_kserve_cannot_load(
    repo: Path, cli: Cli, mlflow_client: object
) -> None:
    version = mlflow_client.create_model_version(MODEL, source="mlflow-artifacts:/1/abc/artifacts/model")
    mlflow_client.set_registered_model_alias(MODEL, "challenger", version.version)
    code, _, err = cli("propose")
    assert code == 1 and "scheme 'mlflow-artifacts' is not allowed (allowed: gs)" in err
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("source", "tags", "message"),
    [
        (
            "https://storage.googleapis.com/b/model",
            {"model_digest": NEW_DIGEST},
            "scheme 'https' is not allowed",
        ),
        ("gs://b/../other/model", {"model_digest": NEW_DIGEST}, "holds '.', '..'"),
        ("gs://b/model?generation=1", {"model_digest": NEW_DIGEST}, "query"),
        (NEW_URI, {}, "has no 'model_digest' tag"),
        (NEW_URI, {"model_digest": "sha256:abc"}, "must be 64 lowercase hex"),
    ],
)
def test_propose_refuses_unchecked_uris_and_missing_digests(
    repo: Path, cli: Cli, mlflow_client: object, source: str, tags: dict[str, str], message: str
) -> None:
    version = mlflow_client.create_model_version(MODEL, source=source, tags=tags)
    mlflow_client.set_registered_model_alias(MODEL, "challenger", version.version)
    code, _, err = cli("propose")
    assert code == 1 and message in err, err
    assert git(repo, "status", "--porcelain") == ""


def test_promote_refuses_an_overlay_whose_digest_is_not_the_registry_s(
    repo: Path, cli: Cli, mlflow_client: object, registry_with_challenger: str
) -> None:
    """Someone edits the pinned digest in Git after propose: promote refuses and moves nothing."""
    from serving.rollout import manifest

    assert cli("propose")[0] == 0
    path = repo / OVERLAY / "inferenceservice.yaml"
    path.write_text(manifest.pin_digest(path.read_text(), "d" * 64))
    commit_all(repo, "tamper")
    code, _, err = cli("promote")
    assert code == 1 and "is registered with" in err, err
    assert alias(mlflow_client, "champion") != registry_with_challenger


def test_propose_refuses_a_second_canary(
    repo: Path, cli: Cli, mlflow_client: object, registry_with_challenger: str
) -> None:
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")
    newer = mlflow_client.create_model_version(
        MODEL, source=NEW_URI.replace("fedcba", "abcdef"), tags={"model_digest": "e" * 64}
    )
    mlflow_client.set_registered_model_alias(MODEL, "challenger", newer.version)
    code, _, err = cli("propose")
    assert code == 1 and "already rolled out" in err
    assert git(repo, "status", "--porcelain") == ""


def test_registry_unreachable_writes_nothing(
    repo: Path, cli: Cli, registry_with_challenger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")
    monkeypatch.setenv("SENTIMENTOPS_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    for command in ("promote", "rollback"):
        code, _, err = cli(command)
        assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert git(repo, "status", "--porcelain") == ""


def test_promote_undoes_the_alias_when_the_overlay_cannot_be_written(
    repo: Path,
    cli: Cli,
    mlflow_client: object,
    registry_with_challenger: str,
    served: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection at the last step (the rename): the registry change is undone, no temp file left."""
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")
    from serving.rollout import actions

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk full (injected)")

    monkeypatch.setattr(actions.os, "replace", failing_replace)
    code, _, err = cli("promote")
    assert code == 1 and "disk full (injected)" in err and "champion moved back to" in err
    assert alias(mlflow_client, "champion") == served[0]
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""

    code, _, err = cli("rollback", "--reason", "drill")
    assert code == 1
    assert "rollback_reason" not in mlflow_client.get_model_version(MODEL, registry_with_challenger).tags
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


# --- the canary-analysis workflow's apply and push steps (serving/rollout/workflow_steps.py) -------------

WORKFLOW = "canary-analysis-x7k2p"
# Shell and flag metacharacters: the steps get parameters only as env vars, so this is data throughout.
HOSTILE_REASON = 'p99 0.9 > 0.5; $(touch /tmp/pwned) `id` --push=false "quoted"'


def canary_step_env(template_name: str, values: dict[str, str]) -> dict[str, str]:
    """The env of one step of the generated canary-analysis template, with Argo's placeholders filled from
    ``values`` (``workflow.parameters.<name>``, ``inputs.parameters.<name>``, ``workflow.name``)."""
    import re

    import yaml

    (template,) = [
        d for d in yaml.safe_load_all((REPO_ROOT / "k8s/argo/canary-analysis.yaml").read_text()) if d
    ]
    defaults = {p["name"]: p["value"] for p in template["spec"]["arguments"]["parameters"]}
    step = next(t for t in template["spec"]["templates"] if t["name"] == template_name)
    known = {f"workflow.parameters.{k}": v for k, v in defaults.items()} | values
    fill = lambda text: re.sub(r"\{\{([^}]+)\}\}", lambda m: known[m.group(1)], text)  # noqa: E731
    return {e["name"]: fill(e["value"]) for e in step["container"]["env"] if "value" in e}


@pytest.fixture()
def remote(repo: Path, tmp_path: Path) -> Path:
    """A bare repository the GitOps checkout pushes to (its ``origin``), holding ``main``."""
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True, timeout=30)
    return bare


def read_outputs(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_canary_apply_promotes_and_hands_the_overlay_to_the_push_step(
    repo: Path,
    cli: Cli,
    mlflow_client: object,
    registry_with_challenger: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")
    outputs = tmp_path / "outputs"
    monkeypatch.setenv("SENTIMENTOPS_VERDICT", "promote")
    monkeypatch.setenv("SENTIMENTOPS_REASON", "all checks passed")
    monkeypatch.setenv("SENTIMENTOPS_OUTPUT_DIR", str(outputs))
    code, out, err = cli("canary-apply")
    assert code == 0, err
    got = read_outputs(outputs)
    assert got["changed"] == "true" and got["version"] == registry_with_challenger
    assert got["overlay"] == (repo / OVERLAY / "inferenceservice.yaml").read_text()
    assert alias(mlflow_client, "champion") == registry_with_challenger
    commit_all(repo, "promote")

    # Run again (a retried pod): nothing changes, and the push step is skipped (changed=false).
    code, _, err = cli("canary-apply")
    assert code == 0, err
    assert read_outputs(outputs)["changed"] == "false"
    assert git(repo, "status", "--porcelain") == ""


def test_canary_apply_rolls_back_with_the_analysis_reason(
    repo: Path,
    cli: Cli,
    mlflow_client: object,
    registry_with_challenger: str,
    served: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = (repo / OVERLAY / "inferenceservice.yaml").read_text()
    assert cli("propose")[0] == 0
    commit_all(repo, "propose")
    monkeypatch.setenv("SENTIMENTOPS_VERDICT", "rollback")
    monkeypatch.setenv("SENTIMENTOPS_REASON", HOSTILE_REASON)
    monkeypatch.setenv("SENTIMENTOPS_OUTPUT_DIR", str(tmp_path / "outputs"))
    code, _, err = cli("canary-apply")
    assert code == 0, err
    got = read_outputs(tmp_path / "outputs")
    assert got == {"changed": "true", "overlay": original, "version": served[0]}
    tags = mlflow_client.get_model_version(MODEL, registry_with_challenger).tags
    assert tags["rollback_reason"] == f"canary analysis: {HOSTILE_REASON}"
    assert alias(mlflow_client, "champion") == served[0]


def test_canary_apply_refuses_an_unknown_verdict(
    repo: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTIMENTOPS_VERDICT", "hold")
    code, _, err = cli("canary-apply")
    assert code == 1 and err.startswith("error: invalid setting 'verdict'") and err.count("\n") == 1, err
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("push", ["true", "false"])
def test_canary_push_runs_from_the_generated_template_env(
    repo: Path, remote: Path, tmp_path: Path, push: str
) -> None:
    """The push step's env exactly as the generated template sets it (placeholders filled as Argo would),
    through the real entrypoint: the branch reaches the bare remote with the new overlay (push=false: it
    does not), the reason stays data, and the base branch is untouched."""
    from serving.rollout import manifest

    overlay_text = manifest.with_canary(
        (repo / OVERLAY / "inferenceservice.yaml").read_text(), "7", NEW_URI, 10, NEW_DIGEST
    ).text
    key = tmp_path / "secret" / "ssh-privatekey"
    key.parent.mkdir()
    key.write_text("not a real key\n")
    key.chmod(0o440)
    env = canary_step_env(
        "push",
        {
            "workflow.parameters.git-repo": str(remote),
            "workflow.parameters.push": push,
            "inputs.parameters.verdict": "promote",
            "inputs.parameters.version": "7",
            "inputs.parameters.reason": HOSTILE_REASON,
            "inputs.parameters.overlay": overlay_text,
            "workflow.name": WORKFLOW,
        },
    )
    # Only the pod's fixed paths move into tmp (the template's /etc/gitops and /tmp are the pod's).
    env |= {
        "SENTIMENTOPS_SSH_KEY": str(key),
        "SENTIMENTOPS_SSH_KEY_COPY": str(tmp_path / "ssh" / "id"),
        "SENTIMENTOPS_CLONE_DIR": str(tmp_path / "clone"),
        "HOME": str(tmp_path),
    }
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SENTIMENTOPS_", "GIT_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "serving.rollout", "canary-push"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**base, **env},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ssh" / "id").stat().st_mode & 0o777 == 0o600
    branch = f"rollout/prod/promote-{WORKFLOW}"
    branches = git(remote, "branch", "--format=%(refname:short)").split()
    assert git(remote, "rev-parse", "main") == git(repo, "rev-parse", "main")
    if push == "false":
        assert branches == ["main"] and "not pushed" in proc.stdout
        return
    assert sorted(branches) == ["main", branch]
    message = git(remote, "log", "-1", "--format=%B", branch)
    assert message.splitlines()[0] == "rollout(prod): promote canary (serving version 7)"
    assert HOSTILE_REASON in message and f"Workflow: {WORKFLOW}" in message
    assert git(remote, "show", f"{branch}:{OVERLAY}/inferenceservice.yaml") == overlay_text
    changed = git(remote, "diff", "--name-only", "main", branch).split()
    assert changed == [f"{OVERLAY}/inferenceservice.yaml"]


def test_canary_push_failure_is_one_line(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from serving.rollout.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "canary-push",
                *("--git-repo", str(tmp_path / "no-such-remote.git"), "--environment", "prod"),
                *("--overlay", str(OVERLAY), "--verdict", "promote", "--version", "7"),
                *("--overlay-text", "x: 1", "--workflow-name", WORKFLOW),
                *("--clone-dir", str(tmp_path / "clone")),
            ]
        )
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.startswith("error: git clone failed") and err.count("\n") == 1, err


def test_apply_changes_undoes_the_overlay_write_when_the_registry_step_fails(
    repo: Path, mlflow_client: object, registry_with_challenger: str, served: tuple[str, str]
) -> None:
    """The overlay is written (first step, applied), then moving champion to a version the real registry
    does not have fails: the overlay's old bytes are back, no temp file is left, champion has not moved."""
    from components.common.settings import ComponentError
    from serving.rollout import actions, aliases, manifest
    from serving.rollout.settings import ManifestSettings

    settings = ManifestSettings(overlay=str(repo / OVERLAY))
    path = repo / OVERLAY / "inferenceservice.yaml"
    text = path.read_text()
    edit = manifest.with_canary(text, registry_with_challenger, NEW_URI, 10, NEW_DIGEST)
    changes = [
        *actions.overlay_changes(path, text, edit.text),
        actions.Change(
            "move champion to version 999",
            lambda: aliases.set_alias(settings, "champion", "999"),
            lambda: aliases.set_alias(settings, "champion", served[0]),
            "champion moved back",
        ),
    ]
    with pytest.raises(ComponentError) as failure:
        actions.apply_changes(changes, "promote")
    message = str(failure.value)
    assert message.startswith("cannot move alias 'champion' to version 999") and message.endswith(
        f"{path} restored"
    ), message
    assert "champion moved back" not in message, "a change that failed is not undone"
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert alias(mlflow_client, "champion") == served[0]


def test_apply_changes_moves_champion_back_when_the_overlay_cannot_be_written(
    repo: Path, mlflow_client: object, registry_with_challenger: str, served: tuple[str, str]
) -> None:
    """champion moves first (applied in the real registry); staging the overlay then fails for a real
    reason (its folder is gone): champion is back on the served version."""
    from components.common.settings import ComponentError
    from serving.rollout import actions, aliases
    from serving.rollout.settings import ManifestSettings

    settings = ManifestSettings(overlay=str(repo / OVERLAY))
    gone = repo / "removed-overlay" / "inferenceservice.yaml"
    changes = [
        actions.Change(
            f"move champion to version {registry_with_challenger}",
            lambda: aliases.set_alias(settings, "champion", registry_with_challenger),
            lambda: aliases.set_alias(settings, "champion", served[0]),
            f"champion moved back to {served[0]}",
        ),
        *actions.overlay_changes(gone, "old", "new"),
    ]
    with pytest.raises(ComponentError, match=f"cannot stage {gone}: .*; champion moved back to {served[0]}$"):
        actions.apply_changes(changes, "promote")
    assert alias(mlflow_client, "champion") == served[0]
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_apply_changes_undoes_in_reverse_and_names_what_stays_applied() -> None:
    """Order and the message when an undo fails too (plain in-memory changes: the primitive alone)."""
    from components.common.settings import ComponentError
    from serving.rollout.actions import Change, PartiallyApplied, apply_changes

    calls: list[str] = []

    def record(name: str) -> Callable[[], None]:
        return lambda: calls.append(name)

    def fail(reason: str) -> Callable[[], None]:
        def raise_() -> None:
            raise OSError(reason)

        return raise_

    ok = [Change(n, record(f"do {n}"), record(f"undo {n}"), f"{n} undone") for n in ("a", "b")]
    with pytest.raises(ComponentError, match="^cannot c: boom; b undone, a undone$"):
        apply_changes([*ok, Change("c", fail("boom"), record("undo c"), "c undone")], "promote")
    assert calls == ["do a", "do b", "undo b", "undo a"]

    calls.clear()
    stuck = Change("b", record("do b"), fail("registry gone"), "b undone")
    with pytest.raises(PartiallyApplied) as failure:
        apply_changes([ok[0], stuck, Change("c", fail("boom"), record("undo c"), "")], "rollback")
    assert str(failure.value) == (
        "cannot c: boom; and cannot undo: b stays applied (registry gone): run rollback again to finish it"
    )
    assert calls == ["do a", "do b", "undo a"], "an undo that fails does not stop the others"
    apply_changes(ok, "promote")  # nothing fails: nothing is undone
    assert calls[-2:] == ["do a", "do b"]
