"""Shared helpers of the infrastructure checks: the chart, its rendered manifests, checkov."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import CRD_SCHEMAS, REPO_ROOT

CHART_DIR = REPO_ROOT / "helm" / "sentimentops"
TERRAFORM_DIR = REPO_ROOT / "infra" / "terraform"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VALUES_FILES = ("values.yaml", "values-staging.yaml", "values-prod.yaml")
RELEASE = "sentimentops"
NAMESPACE = "sentimentops"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_CONFIG = REPO_ROOT / "infra" / "checkov.yaml"


def load_values(name: str) -> dict[str, Any]:
    """The values a `helm install -f <name>` would add to the chart's defaults (none for values.yaml)."""
    if name == "values.yaml":
        return {}
    return yaml.safe_load((CHART_DIR / name).read_text()) or {}


def render(values: dict[str, Any] | None = None, chart_dir: Path = CHART_DIR) -> dict[str, str]:
    """Render the chart offline: {template path: manifest text}, without NOTES.txt (as `helm template`).
    Raises helm_python.HelmError."""
    import helm_python as helm

    with helm.Chart.load(str(chart_dir)) as chart:
        manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return {path: text for path, text in manifests.items() if not path.endswith("NOTES.txt")}


def documents(manifests: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object in the rendered manifests."""
    return [
        doc
        for text in manifests.values()
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and doc
    ]


@pytest.fixture(scope="session")
def rendered() -> dict[str, dict[str, str]]:
    """The chart rendered with each environment's values file: {values file: manifests}."""
    return {name: render(load_values(name)) for name in VALUES_FILES}


@pytest.fixture(scope="session")
def rendered_dir(rendered: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered manifests on disk, one folder per values file (input of checkov)."""
    root = tmp_path_factory.mktemp("rendered")
    for values_name, manifests in rendered.items():
        folder = root / values_name.removesuffix(".yaml")
        for template, text in manifests.items():
            if text.strip():
                target = folder / template
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    return root


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a workload object, or None for other kinds."""
    kind = doc.get("kind")
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}:
        return doc["spec"]["template"]["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind == "Pod":
        return doc["spec"]
    return None


def crd_schema_path(doc: dict[str, Any]) -> Path | None:
    """The JSON schema of a custom resource in the vendored catalogue, or None for built-in kinds."""
    group, _, version = doc["apiVersion"].rpartition("/")
    if "." not in group:  # core (""), apps, batch, ... and the *.k8s.io groups are checked as built-ins
        return None
    if group.endswith(".k8s.io"):
        return None
    return CRD_SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"


def require_checkov() -> Path:
    """.venv-checkov/bin/checkov (made by `make checkov-venv`); missing, the test skips and the run fails."""
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV} is missing: `make test` builds it through `make checkov-venv`")
    return CHECKOV


def run_checkov(*args: str) -> list[dict[str, Any]]:
    """Run checkov with the repository's config and JSON output; return one report per framework.

    Fails the calling test on a crash or on any parsing error (checkov itself exits 0 when a file
    cannot be parsed, and silently checks nothing in it).
    """
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    proc = subprocess.run(
        [
            str(require_checkov()),
            "--config-file",
            str(CHECKOV_CONFIG),
            "--skip-download",
            "-o",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO_ROOT,
    )
    if proc.returncode not in (0, 1):
        pytest.fail(f"checkov crashed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    reports = []
    try:
        # One JSON document per scanned directory (a list when several frameworks ran): read them all.
        decoder, text, pos = json.JSONDecoder(), proc.stdout, 0
        while pos < len(text.rstrip()):
            payload, end = decoder.raw_decode(text, pos)
            reports.extend(payload if isinstance(payload, list) else [payload])
            pos = end + (len(text[end:]) - len(text[end:].lstrip()))
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON report:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    # With nothing to scan checkov prints an empty summary without results: treat it as a failure too.
    reports = [r for r in reports if "results" in r or r.get("summary")]
    return reports


def failed_checks(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}"
        for report in reports
        for f in report.get("results", {}).get("failed_checks", [])
    ]


def parsing_errors(reports: list[dict[str, Any]]) -> list[str]:
    """Files checkov could not parse (with --quiet it may give only the count in the summary)."""
    found = []
    for report in reports:
        paths = [str(p) for p in report.get("results", {}).get("parsing_errors", [])]
        count = report.get("summary", {}).get("parsing_errors", 0)
        found += paths or [f"{count} file(s) ({report.get('check_type')})"] * bool(count)
    return found
