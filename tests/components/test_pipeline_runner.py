"""The local runner: ready steps run side by side (as in the Argo DAG), a failure stops its running siblings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from components.common.settings import ComponentError, TrackingSettings
from components.pipeline.runner import run_pipeline
from workflows.spec import Step

MODULE = "tests.components.stand_in_step"


def _step(name: str, seconds: float, code: int = 0, depends: tuple[str, ...] = ()) -> Step:
    args = (("--marker", f"{{artifacts_root}}/{name}"), ("--seconds", str(seconds)), ("--code", str(code)))
    return Step(name=name, module=MODULE, args=args, depends=depends)


def _times(root: Path, name: str) -> list[float]:
    return [float(line) for line in (root / name).read_text().split()]


def test_ready_steps_run_side_by_side_and_a_dependent_waits_for_both(
    tracking_env: str, tmp_path: Path
) -> None:
    steps = (
        _step("first", 0),
        _step("left", 1.5, depends=("first",)),
        _step("right", 1.5, depends=("first",)),
        _step("last", 0, depends=("left", "right")),
    )
    values = {"dataset_uri": "unused", "artifacts_root": str(tmp_path)}
    result = run_pipeline(values, TrackingSettings(tracking_uri=tracking_env), steps)
    left, right, last = _times(tmp_path, "left"), _times(tmp_path, "right"), _times(tmp_path, "last")
    assert max(left[0], right[0]) < min(left[1], right[1])  # both ran at once
    assert last[0] >= max(left[1], right[1])  # and the step needing both waited for both
    assert [s.name for s in result.steps][-1] == "last" and all(s.exit_code == 0 for s in result.steps)
    assert result.seconds < sum(s.seconds for s in result.steps)  # wall time, not the sum of the steps
    # One at a time when asked: the two never overlap.
    serial = tmp_path / "serial"
    run_pipeline(
        {**values, "artifacts_root": str(serial)}, TrackingSettings(tracking_uri=tracking_env), steps, 1
    )
    left, right = _times(serial, "left"), _times(serial, "right")
    assert left[1] <= right[0] or right[1] <= left[0]


def test_a_failing_step_stops_its_running_sibling_and_nothing_after_runs(
    tracking_env: str, tmp_path: Path
) -> None:
    steps = (
        _step("slow", 60, depends=()),
        _step("broken", 0.5, code=1, depends=()),
        _step("after", 0, depends=("slow", "broken")),
    )
    started = time.perf_counter()
    with pytest.raises(ComponentError, match="step broken failed with exit code 1"):
        run_pipeline(
            {"dataset_uri": "unused", "artifacts_root": str(tmp_path)},
            TrackingSettings(tracking_uri=tracking_env),
            steps,
        )
    assert time.perf_counter() - started < 30  # the 60 s sibling was terminated, not waited for
    assert len(_times(tmp_path, "slow")) == 1  # it started and never finished
    assert not (tmp_path / "after").exists()
