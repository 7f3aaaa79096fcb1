"""The tracked-step helper against a real MLflow store (SQLite under a temporary folder): a step that succeeds leaves a
FINISHED run with its params and metrics; one that fails leaves a FAILED run with the error recorded, and the
command line exits non-zero with one readable line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.common.settings import GateFailed, TrackingSettings
from components.common.tracking import ERROR_TAG, TrackedStep, active_run_id, step_cli
from tests.conftest import REPO_ROOT


class DemoSettings(TrackingSettings):
    """A step's settings: its inputs and whether it is tracked."""

    rows: int = 10
    fail: str = ""  # "gate": refuse like a gate (exit 2); "crash": an unexpected error
    track: bool = True


def _work(settings: DemoSettings) -> dict[str, float]:
    if settings.fail == "gate":
        raise GateFailed(f"demo gate failed: {settings.rows} rows is too few")
    if settings.fail == "crash":
        raise RuntimeError("disk on fire\nsecond line of detail")
    return {"accuracy": 0.75, "run_id_seen": 1.0 if active_run_id() else 0.0}


def _record(settings: DemoSettings, result: dict[str, float]) -> None:
    import mlflow

    mlflow.log_metrics(result)


def _finish(settings: DemoSettings, result: dict[str, float]) -> None:
    print(f"demo done: accuracy {result['accuracy']}")


STEP = TrackedStep(
    "demo-step",
    DemoSettings,
    work=_work,
    record=_record,
    finish=_finish,
    params=("rows",),
    tags=lambda settings: {"flavor": "demo"},
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One real MLflow store (SQLite) for the module; each test records into its own experiment."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"


def _runs(tracking_uri: str, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


build_parser, main = step_cli(STEP, "demo")


def _cli(capsys: pytest.CaptureFixture[str], store: str, experiment: str, *argv: str) -> tuple[int, str, str]:
    """Run the demo step's command line in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        main(["--tracking-uri", store, "--experiment", experiment, *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_step_that_succeeds_leaves_a_finished_run_with_its_metrics(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, store, "succeeds", "--rows", "12")
    assert code == 0, err
    assert out == "demo done: accuracy 0.75\n"
    [run] = _runs(store, "succeeds")
    assert run.info.status == "FINISHED" and run.info.run_name == "demo-step"
    assert run.data.metrics == {"accuracy": 0.75, "run_id_seen": 1.0}  # the work ran inside the run
    assert run.data.params == {"rows": "12"}
    assert run.data.tags["step"] == "demo-step" and run.data.tags["flavor"] == "demo"
    assert run.data.tags["git_commit"] and ERROR_TAG not in run.data.tags


def test_a_step_that_fails_leaves_a_failed_run_with_the_error_and_exits_with_one_line(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, store, "gate", "--rows", "3", "--fail", "gate")
    assert code == GateFailed.exit_code == 2
    assert err.splitlines()[-1] == "error: demo gate failed: 3 rows is too few" and out == ""
    assert [line for line in err.splitlines() if line.startswith("error")] == err.splitlines()[-1:]
    [run] = _runs(store, "gate")
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR_TAG] == "error: demo gate failed: 3 rows is too few"
    assert run.data.params == {"rows": "3"}, "the inputs are logged before the work starts"
    assert run.data.metrics == {}


def test_an_unexpected_error_is_recorded_on_the_run_and_propagates(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError, match="disk on fire"):
        _cli(capsys, store, "crash", "--fail", "crash")
    [run] = _runs(store, "crash")
    assert run.info.status == "FAILED"
    assert run.data.tags[ERROR_TAG] == "error: RuntimeError: disk on fire"


def test_an_invalid_flag_exits_1_before_any_run(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, store, "bad-flag", "--rows", "many")
    assert code == 1 and err.startswith("error: invalid setting 'rows'") and len(err.splitlines()) == 1
    assert _runs(store, "bad-flag") == [], "no run for settings that do not parse"


def test_untracked_step_runs_without_mlflow(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, store, "untracked", "--track", "false")
    assert code == 0 and out == "demo done: accuracy 0.75\n", err
    assert _runs(store, "untracked") == []


def test_a_component_cli_that_fails_leaves_a_failed_run(tmp_path: Path, store: str) -> None:
    """The real evaluate command on missing inputs: exit 1, one line, and its run is FAILED with that line."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "components.evaluate",
            "--validated-dir",
            str(tmp_path / "validated"),
            "--baseline-dir",
            str(tmp_path / "baseline"),
            "--output-dir",
            str(tmp_path / "evaluation"),
            "--tracking-uri",
            store,
            "--experiment",
            "evaluate",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(tmp_path / "baseline") in line
    assert "Traceback" not in proc.stderr
    [run] = _runs(store, "evaluate")
    assert run.info.status == "FAILED" and run.info.run_name == "evaluate"
    assert run.data.tags[ERROR_TAG] == line
