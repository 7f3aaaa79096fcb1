"""The chart's copies of monitoring/ are exact copies: one hand-maintained source (the committed copies are
checked with every generated file by tests/infra/test_regen.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import regen, sync_chart
from tests.conftest import REPO_ROOT


def sync(source: Path, files: Path) -> list[Path]:
    """What ``make regen`` does for the chart's copies, on a temporary tree."""
    return regen.write_outputs(sync_chart.outputs(source, files))


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A temporary copy of monitoring/ and of the chart's files/, in sync."""
    source, files = tmp_path / "monitoring", tmp_path / "files"
    shutil.copytree(REPO_ROOT / "monitoring", source)
    (source / "prometheus" / "rules").mkdir(parents=True, exist_ok=True)
    (source / "prometheus" / "rules" / "extra.yaml").write_text("groups: []\n")
    (source / "grafana" / "dashboards").mkdir(parents=True, exist_ok=True)
    (source / "grafana" / "dashboards" / "extra.json").write_text("{}\n")
    sync(source, files)
    assert sync_chart.differences(source, files) == []
    return source, files


def test_a_differing_copy_is_reported_and_fixed(tree: tuple[Path, Path]) -> None:
    source, files = tree
    copy = files / "prometheus" / "rules" / "extra.yaml"
    copy.write_text("groups: [{name: edited-in-the-chart, rules: []}]\n")
    assert [str(d) for d in sync_chart.differences(source, files)] == ["differs: prometheus/rules/extra.yaml"]
    sync(source, files)
    assert copy.read_text() == (source / "prometheus" / "rules" / "extra.yaml").read_text()


def test_missing_and_stale_copies_are_reported_and_fixed(tree: tuple[Path, Path]) -> None:
    source, files = tree
    (files / "grafana" / "dashboards" / "extra.json").unlink()
    (files / "grafana" / "dashboards" / "removed-upstream.json").write_text("{}\n")
    problems = {str(d) for d in sync_chart.differences(source, files)}
    assert problems == {
        "missing: grafana/dashboards/extra.json",
        "stale: grafana/dashboards/removed-upstream.json",
    }
    sync(source, files)
    assert sync_chart.differences(source, files) == []
    assert not (files / "grafana" / "dashboards" / "removed-upstream.json").exists()


def test_outputs_name_every_difference_and_nothing_else(tree: tuple[Path, Path]) -> None:
    source, files = tree
    assert regen.stale_files(sync_chart.outputs(source, files)) == []
    copy = files / "prometheus" / "rules" / "extra.yaml"
    copy.write_text("groups: []  # edited\n")
    assert regen.stale_files(sync_chart.outputs(source, files)) == [copy]
