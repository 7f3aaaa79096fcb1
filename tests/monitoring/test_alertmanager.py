"""Alertmanager routing: amtool check-config, the routing tree by amtool, the CR generated from the same file."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from monitoring import render
from tests.conftest import require_binary
from tests.monitoring.conftest import ALERTMANAGER_YML, validate_cr


def test_amtool_check_config() -> None:
    amtool = require_binary("amtool")
    out = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER_YML)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["alertname=SentimentHighErrorRate", "severity=critical", "namespace=prod"], "slack-pager"),
        (["alertname=SentimentModelServerDown", "severity=critical"], "slack-pager"),
        (["alertname=SentimentNoTraffic", "severity=warning", "namespace=prod"], "slack-tickets"),
        (["alertname=SentimentRetrainWorkflowFailed", "severity=warning"], "slack-tickets"),
        # drift: the retraining webhook *and* the ticket channel (continue: true)
        (
            ["alertname=SentimentDriftDetected", "severity=warning", "retrain=true", "model_name=sentiment"],
            "retrain-webhook,slack-tickets",
        ),
        # a drift alert without the retrain label does not retrain
        (["alertname=SentimentDriftDetected", "severity=warning"], "slack-tickets"),
        # anything unlabelled falls back to tickets, never to the pager
        (["alertname=Unknown"], "slack-tickets"),
    ],
)
def test_routing_tree(labels: list[str], receivers: str) -> None:
    amtool = require_binary("amtool")
    out = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_YML}",
            f"--verify.receivers={receivers}",
            *labels,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_routing_test_can_fail() -> None:
    amtool = require_binary("amtool")
    out = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_YML}",
            "--verify.receivers=slack-pager",
            "alertname=SentimentNoTraffic",
            "severity=warning",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0


def test_slack_urls_come_from_secret_files_and_messages_link_the_runbook() -> None:
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    assert "slack_api_url" not in config.get("global", {})
    slack = [c for r in config["receivers"] for c in r.get("slack_configs", [])]
    assert len(slack) == 2
    for item in slack:
        assert "api_url" not in item
        assert item["api_url_file"].startswith("/etc/alertmanager/secrets/alertmanager-slack/")
        assert item["send_resolved"] is True
        assert ".Annotations.runbook_url" in item["text"] and ".Annotations.runbook_url" in item["title_link"]
    channels = {
        r["name"]: r["slack_configs"][0]["channel"] for r in config["receivers"] if "slack_configs" in r
    }
    assert channels == {"slack-pager": "#sentiment-oncall", "slack-tickets": "#sentiment-tickets"}


def test_alertmanagerconfig_cr_is_generated_and_valid() -> None:
    """(tests/infra/test_regen.py checks the committed file is this output.)"""
    cr = yaml.safe_load(render.outputs()[render.ALERTMANAGER_CR])
    validate_cr(cr)
    plain = yaml.safe_load(ALERTMANAGER_YML.read_text())
    assert [r["name"] for r in cr["spec"]["receivers"]] == [r["name"] for r in plain["receivers"]]
    assert [r["receiver"] for r in cr["spec"]["route"]["routes"]] == [
        r["receiver"] for r in plain["route"]["routes"]
    ]
    slack = [c for r in cr["spec"]["receivers"] for c in r.get("slackConfigs", [])]
    assert {c["apiURL"]["name"] for c in slack} == {"alertmanager-slack"}
    assert {c["apiURL"]["key"] for c in slack} == {"pager-url", "tickets-url"}
    assert len(cr["spec"]["inhibitRules"]) == len(plain["inhibit_rules"])


def test_matcher_parsing() -> None:
    assert render.parse_matcher('alertname=~"A|B"') == {
        "name": "alertname",
        "value": "A|B",
        "matchType": "=~",
    }
    with pytest.raises(ValueError):
        render.parse_matcher("severity critical")
