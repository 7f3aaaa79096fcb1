"""Prometheus or the Pushgateway being down never affects serving.

Serving is scraped (pull model): it only *exposes* /metrics and never connects to Prometheus or a
Pushgateway, so their availability cannot reach a request. Checked on the serving source itself (static:
nothing is faked). The drift job's push path is tested for real in test_drift.py (a Pushgateway that is down
-> outputs written, exit 1).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

SERVING = REPO_ROOT / "serving"
# prometheus_client names that only define or expose metrics in-process
EXPOSE_ONLY = {
    "Counter", "Gauge", "Histogram", "Summary", "Info", "Enum", "CollectorRegistry", "REGISTRY",
    "generate_latest", "CONTENT_TYPE_LATEST", "make_asgi_app", "make_wsgi_app", "start_http_server",
    "multiprocess", "exposition", "disable_created_metrics", "core", "metrics", "registry",
}  # fmt: skip
PUSH_CALLS = {"push_to_gateway", "pushadd_to_gateway", "delete_from_gateway"}


def _serving_files() -> list[Path]:
    """The predictor's code: serving/ without serving/rollout (the canary-analysis CLI, which does query
    Prometheus, runs as an Argo workflow step, not in the request path)."""
    files = sorted(
        p for p in SERVING.rglob("*.py") if "__pycache__" not in p.parts and "rollout" not in p.parts
    )
    assert files, f"no predictor code under {SERVING}"
    return files


def test_serving_only_exposes_metrics() -> None:
    for path in _serving_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client"):
                names = {alias.name for alias in node.names}
                assert names <= EXPOSE_ONLY, f"{path}: imports {names - EXPOSE_ONLY} from prometheus_client"
            if isinstance(node, ast.Attribute | ast.Name):
                name = node.attr if isinstance(node, ast.Attribute) else node.id
                assert name not in PUSH_CALLS, f"{path}:{node.lineno} pushes metrics"


def test_serving_knows_no_prometheus_or_pushgateway_address() -> None:
    for path in _serving_files():
        text = path.read_text().lower()
        for needle in ("pushgateway", ":9090", ":9091", "prometheus_url", "/api/v1/query"):
            assert needle not in text, f"{path} mentions {needle!r}"
