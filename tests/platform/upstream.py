"""Third-party material the platform checks need, at exactly the versions infra/versions.yaml pins.

The upstream Argo charts and CRDs are vendored, unmodified and with their licences, in
``tests/fixtures/vendor/upstream`` (its PROVENANCE.md says what was taken; ``SENTIMENTOPS_UPSTREAM_DIR``
overrides the location). A pinned version the folder does not hold is a failure: pinning a version nothing
can check is the defect these tests exist for.
"""

from __future__ import annotations

import os
import string
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from infra.topology import PLATFORM_NAMESPACE, Environment
from tests.conftest import REPO_ROOT, VENDOR

UPSTREAM = Path(os.environ.get("SENTIMENTOPS_UPSTREAM_DIR", VENDOR / "upstream"))
VERSIONS_FILE = REPO_ROOT / "infra" / "versions.yaml"
ADDON_VALUES = REPO_ROOT / "infra" / "terraform" / "modules" / "addons" / "values"


@cache
def versions() -> dict[str, dict[str, str]]:
    return yaml.safe_load(VERSIONS_FILE.read_text())


def _pinned_dir(folder: str, name: str, version: str) -> Path:
    path = UPSTREAM / folder / f"{name}-{version}"
    if not path.is_dir():
        raise FileNotFoundError(
            f"no upstream {folder} of {name} {version} in {path.parent} to check the pin against"
        )
    return path


def chart_dir(chart: str, version: str) -> Path:
    return _pinned_dir("charts", chart, version)


def crd_dir(app: str, version: str) -> Path:
    return _pinned_dir("crds", app, version)


def template_vars(env: Environment) -> dict[str, str]:
    """What modules/addons passes to its values/*.tftpl (local.template_vars)."""
    return {"platform_namespace": PLATFORM_NAMESPACE, "serving_namespace": env.serving_namespace}


def render_tftpl(name: str, env: Environment) -> Any:
    """A values/*.tftpl file as Terraform's templatefile would render it (only ${var} interpolation is used)."""
    text = (ADDON_VALUES / name).read_text()
    if "%{" in text:
        raise ValueError(f"{name}: template directives are not supported by this renderer")
    return yaml.safe_load(string.Template(text).substitute(template_vars(env)))


def render_chart(
    chart: str, release: str, namespace: str, values: dict[str, Any], version: str, api_versions: list[str]
) -> list[dict]:
    """Render an upstream chart with helm-python-sdk: every object, NOTES excluded. ``api_versions`` are
    the API groups the cluster serves when the release installs (Helm's .Capabilities.APIVersions)."""
    import json

    import helm_python as helm
    from helm_python import _native
    from helm_python.chart import _dumps

    with helm.Chart.load(str(chart_dir(chart, version))) as loaded:
        # Chart.render has no api_versions argument; the native renderer takes it in its options.
        options = {"name": release, "namespace": namespace, "api_versions": api_versions}
        manifests = json.loads(
            _native.call_string("helm_render", loaded._raw(), _dumps(values), json.dumps(options))
        )
    docs = manifest_documents(manifests, namespace)
    for doc in docs:
        doc["_source"] = f"{chart} {version}: {doc['_source']}"
    return docs


def manifest_documents(manifests: dict[str, str], namespace: str) -> list[dict[str, Any]]:
    """Every object of a Helm render ({template path: text}, NOTES excluded), namespaced as Helm installs
    it; ``_source`` is the template path."""
    docs = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc:
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
                doc["_source"] = path
                docs.append(doc)
    return docs


def _strict(schema: Any) -> Any:
    """A CRD schema as the API server applies it with strict field validation: unknown fields rejected."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def argo_workflows_schemas() -> dict[str, dict[str, Any]]:
    """kind -> strict openAPIV3Schema of the pinned Argo Workflows version's CRDs."""
    version = versions()["apps"]["argo_workflows"]
    out = {}
    for path in sorted(crd_dir("argo-workflows", version).glob("argoproj.io_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        kind = crd["spec"]["names"]["kind"]
        (served,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
        out[kind] = _strict(served["schema"]["openAPIV3Schema"])
    return out
