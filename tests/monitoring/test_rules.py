"""Prometheus rules: promtool check + unit tests for every alert, metadata, CR generated from the same source."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring import render
from serving import metrics
from tests.conftest import REPO_ROOT, require_binary
from tests.monitoring.conftest import RULE_TESTS, RULES_FILE, validate_cr
from tests.monitoring.promql_names import KNOWN_METRICS, metric_names

RUNBOOK_PREFIX = "https://github.com/sentimentops/sentimentops/blob/main/docs/runbooks/"


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    out = subprocess.run(
        [promtool, "check", "rules", str(RULES_FILE)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool")
    out = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a quiet test"


@pytest.mark.parametrize(
    ("alertname", "replacements"),
    [
        (
            "SentimentHighErrorRate",
            [("sentiment:error_ratio:rate5m > 0.05", "sentiment:error_ratio:rate5m > 0.5")],
        ),
        ("SentimentLatencySLOBurn", [("(13.44 * 0.01)", "(134.4 * 0.01)"), ("(5.6 * 0.01)", "(56 * 0.01)")]),
        ("SentimentRetrainWorkflowFailed", [('phase=~"Failed|Error"', 'phase=~"Failed"')]),
        ("SentimentModelServerDown", [("absent(up{", "absent(kube_up{")]),
    ],
)
def test_unit_tests_catch_a_broken_rule(
    tmp_path: Path, alertname: str, replacements: list[tuple[str, str]]
) -> None:
    """The promtool tests can fail: a mutated threshold or matcher makes that alert's tests fail."""
    promtool = require_binary("promtool")
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    text = RULES_FILE.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "rules" / RULES_FILE.name).write_text(text)
    suite = yaml.safe_load(RULE_TESTS.read_text())
    suite["tests"] = [
        case for case in suite["tests"] if any(c["alertname"] == alertname for c in case["alert_rule_test"])
    ]
    (tmp_path / "tests" / RULE_TESTS.name).write_text(yaml.safe_dump(suite))
    out = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0 and "FAILED" in out.stdout + out.stderr


def test_every_alert_is_labelled_and_documented() -> None:
    for alert in _alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        annotations = alert["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), url
        page = REPO_ROOT / "docs" / "runbooks" / url.removeprefix(RUNBOOK_PREFIX)
        if page.name == "canary.md":  # owned by the rollout engineer; may land separately
            continue
        assert page.is_file(), f"{name}: runbook {page} missing"
        assert name in page.read_text(), f"{page} does not mention {name}"


def test_rules_use_only_known_metrics() -> None:
    records = {r["record"] for r in _rules() if "record" in r}
    for rule in _rules():
        unknown = metric_names(rule["expr"]) - KNOWN_METRICS - records
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: unknown metrics {unknown}"


def test_metric_name_extraction_sees_through_matchers_and_grouping() -> None:
    expr = 'sum by (le, namespace) (rate(foo_bucket{le="0.3", job=~"a|b"}[5m])) / on (pod) group_left (v) bar offset 1h'
    assert metric_names(expr) == {"foo_bucket", "bar"}


def test_contract_metric_names_match_the_serving_code() -> None:
    """Cross-check with serving/metrics.py: the names we alert on are the ones it exports."""
    from prometheus_client import Counter, Gauge, Histogram

    exported: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            exported.add(value._name + "_total")
        elif isinstance(value, Histogram):
            exported |= {f"{value._name}_{s}" for s in ("bucket", "sum", "count")}
        elif isinstance(value, Gauge):
            exported.add(value._name)
    serving_names = {n for n in KNOWN_METRICS if n.startswith("sentiment_") and "drift" not in n}
    assert serving_names <= exported, serving_names - exported


def test_histogram_has_the_slo_bucket() -> None:
    assert 0.3 in metrics.LATENCY_BUCKETS


def test_prometheusrule_cr_is_generated_from_the_plain_rules() -> None:
    """(tests/infra/test_regen.py checks the committed file is this output.)"""
    cr = yaml.safe_load(render.outputs()[render.PROMETHEUS_RULE])
    assert cr["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]
    validate_cr(cr)


def test_burn_rate_factors_match_a_28_day_budget() -> None:
    """The page/ticket factors are budget_share * 672h / window_hours for a 28-day SLO."""
    text = RULES_FILE.read_text()
    hours = 28 * 24
    for share, window, factor in [
        (0.02, 1, "13.44"),
        (0.05, 6, "5.6"),
        (0.10, 24, "2.8"),
        (0.10, 72, "0.933"),
    ]:
        assert round(share * hours / window, 3) == float(factor)
        assert re.search(rf"> \({re.escape(factor)} \* 0\.01\)", text), factor
