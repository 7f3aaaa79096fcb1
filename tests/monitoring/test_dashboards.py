"""Grafana dashboards: SDK round-trip without dropped keys, every PromQL parses (promtool), known metrics only."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import render
from monitoring.grafana import build
from tests.conftest import require_binary
from tests.monitoring.conftest import RULES_FILE
from tests.monitoring.promql_names import KNOWN_METRICS, metric_names

DASHBOARDS = sorted(render.DASHBOARDS_DIR.glob("*.json"))
# Grafana's template variables, replaced by concrete values so that promtool can parse the queries.
VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$namespace": ".*"}


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def _concrete(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: dropped" for k in a if k not in b]
        out += [f"{path}.{k}: added" for k in b if k not in a]
        for key in a.keys() & b.keys():
            out += _diff(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items became {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} became {b!r}"]


def test_three_dashboards_exist() -> None:
    assert [p.stem for p in DASHBOARDS] == ["sentiment-pipeline", "sentiment-quality", "sentiment-serving"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_round_trip_through_grafana_foundation_sdk(path: Path) -> None:
    data = json.loads(path.read_text())
    assert _diff(data, build.round_trip(data)) == []


def test_round_trip_check_detects_a_dropped_key() -> None:
    data = json.loads(DASHBOARDS[0].read_text())
    data["panels"][1]["notAGrafanaField"] = 1
    assert "notAGrafanaField" in " ".join(_diff(data, build.round_trip(data)))


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = []
    for path in DASHBOARDS:
        for i, (_title, expr) in enumerate(_queries(json.loads(path.read_text()))):
            rules.append({"record": f"dashboard:{path.stem.replace('-', '_')}:q{i}", "expr": _concrete(expr)})
    assert len(rules) > 30
    rule_file = tmp_path / "dashboard-queries.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_parse_check_can_fail(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule_file = tmp_path / "bad.yaml"
    rule_file.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]})
    )
    out = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0


def test_queries_reference_exported_metrics_only() -> None:
    records = {
        r["record"]
        for g in yaml.safe_load(RULES_FILE.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    used: set[str] = set()
    for path in DASHBOARDS:
        for title, expr in _queries(json.loads(path.read_text())):
            names = metric_names(_concrete(expr))
            unknown = names - KNOWN_METRICS - records
            assert not unknown, f"{path.name} / {title}: {unknown}"
            used |= names
    # the dashboards cover serving, drift and pipelines
    assert {
        "sentiment_requests_total",
        "sentiment_drift_share",
        "argo_workflows_workflowtemplate_triggered_total",
    } <= used


def test_configmaps_carry_the_sidecar_label_and_the_dashboards() -> None:
    maps = [d for d in yaml.safe_load_all(render.outputs()[render.DASHBOARDS_CM]) if d]
    assert len(maps) == len(DASHBOARDS)
    for cm, path in zip(maps, DASHBOARDS, strict=True):
        assert cm["kind"] == "ConfigMap" and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][path.name]) == json.loads(path.read_text())


def test_dashboards_use_the_datasource_variable() -> None:
    for path in DASHBOARDS:
        data = json.loads(path.read_text())
        assert re.fullmatch(r"sentiment-[a-z]+", data["uid"])
        for panel in data["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
