"""Every kustomization under k8s/ builds with ``kubectl kustomize`` and validates: custom resources
against the real CRD schemas (jsonschema; unknown keys rejected), built-in kinds with
``kubernetes-validate --strict``; plus the platform's own rules (non-root, read-only root FS, probes,
resources, Workload Identity, a PDB, Argo CD pointing at existing overlays)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import CRD_SCHEMAS, REPO_ROOT, require_binary

K8S = REPO_ROOT / "k8s"
KUSTOMIZATIONS = ("base", "overlays/staging", "overlays/prod", "argocd/staging", "argocd/prod", "argo")
ENVS = ("staging", "prod")
K8S_VERSION = "1.32.0"


def build(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` a directory into its documents."""
    out = subprocess.run([require_binary("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The CRD schema of a custom kind, or None for built-in kinds."""
    if (
        "/" not in api_version
        or "." not in api_version.split("/")[0]
        or api_version.startswith(
            ("rbac.authorization.k8s.io/", "policy/", "apps/", "batch/", "networking.k8s.io/")
        )
    ):
        return None
    group, version = api_version.split("/")
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    assert path.is_file(), f"no CRD schema for {api_version} {kind} at {path}"
    return json.loads(path.read_text())


def validate(doc: dict[str, Any]) -> None:
    """Raise if ``doc`` does not validate against its kind's schema."""
    schema = crd_schema(doc["apiVersion"], doc["kind"])
    if schema is None:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    else:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_kustomization_builds_and_validates(directory: str) -> None:
    docs = build(K8S / directory)
    assert docs
    for doc in docs:
        try:
            validate(doc)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            pytest.fail(f"{directory}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_canary_workflow_template_validates_against_its_crd() -> None:
    (template,) = [d for d in yaml.safe_load_all((K8S / "argo" / "canary-analysis.yaml").read_text()) if d]
    validate(template)
    steps = [s["name"] for group in template["spec"]["templates"][0]["steps"] for s in group]
    assert steps == ["revisions", "analyse", "open-change"]
    analyse = next(t for t in template["spec"]["templates"] if t["name"] == "analyse")
    assert analyse["container"]["command"] == ["python", "-m", "serving.rollout", "canary-analyse"]
    assert analyse["retryStrategy"]["expression"] == "asInt(lastRetry.exitCode) == 3"


def test_schemas_reject_a_typo() -> None:
    """The checks can fail: an unknown key in an InferenceService is rejected."""
    isvc = by_kind(build(K8S / "overlays" / "prod"), "InferenceService")[0]
    isvc["spec"]["predictor"]["canaryTraficPercent"] = 10
    with pytest.raises(jsonschema.ValidationError, match="canaryTraficPercent"):
        validate(isvc)
    pdb = by_kind(build(K8S / "base"), "PodDisruptionBudget")[0]
    pdb["spec"]["maxUnavailabel"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(pdb)


@pytest.mark.parametrize("env", ENVS)
def test_overlay_serves_a_hardened_predictor(env: str) -> None:
    docs = build(K8S / "overlays" / env)
    assert {d["metadata"].get("namespace") for d in docs} == {f"sentiment-{env}"}
    (isvc,) = by_kind(docs, "InferenceService")
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Serverless"  # canary needs Knative
    assert annotations["sentimentops.io/model-version"].isdigit()
    predictor = isvc["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor  # steady state in Git
    assert predictor["minReplicas"] >= (2 if env == "prod" else 1)
    assert predictor["serviceAccountName"] == "sentiment-predictor"
    assert predictor["securityContext"]["runAsNonRoot"] is True
    model = predictor["model"]
    assert model["storageUri"].startswith(f"gs://sentimentops-{env}-")
    assert model["runtime"] == "sentimentops-predictor"
    assert model["readinessProbe"]["httpGet"]["path"] == "/v1/models/sentiment"
    assert model["livenessProbe"]["httpGet"]["path"]
    assert model["resources"]["requests"]["cpu"] and model["resources"]["limits"]["memory"]
    assert model["securityContext"]["readOnlyRootFilesystem"] is True
    assert model["securityContext"]["allowPrivilegeEscalation"] is False
    tmp = {v["name"] for v in predictor["volumes"] if "emptyDir" in v}
    assert {m["mountPath"] for m in model["volumeMounts"] if m["name"] in tmp} == {"/tmp"}

    (runtime,) = by_kind(docs, "ServingRuntime")
    (container,) = runtime["spec"]["containers"]
    assert container["image"].startswith(f"europe-west4-docker.pkg.dev/sentimentops-{env}/")
    assert container["image"].rsplit(":", 1)[1] != "latest"
    assert container["command"] == ["python", "-m", "serving"]
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        f"sentiment-predictor@sentimentops-{env}.iam.gserviceaccount.com"
    )
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"] == "sentiment"
    (monitor,) = by_kind(docs, "PodMonitor")
    labels = [r["targetLabel"] for r in monitor["spec"]["podMetricsEndpoints"][0]["relabelings"]]
    assert "revision" in labels  # the canary analysis selects by it


@pytest.mark.parametrize("env", ENVS)
def test_argocd_application_points_at_the_overlay(env: str) -> None:
    docs = build(K8S / "argocd" / env)
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    app = apps[f"sentiment-{env}"]
    assert app["spec"]["project"] == "sentimentops" != "default"
    (project,) = [d for d in docs if d["kind"] == "AppProject"]
    assert project["spec"]["clusterResourceWhitelist"] == []
    assert app["spec"]["source"]["path"] == f"k8s/overlays/{env}"
    assert (REPO_ROOT / app["spec"]["source"]["path"] / "kustomization.yaml").is_file()
    assert app["spec"]["destination"]["namespace"] == f"sentiment-{env}"
    assert app["spec"]["syncPolicy"]["automated"]["selfHeal"] is True


@pytest.mark.parametrize("env", ENVS)
def test_overlay_with_a_canary_still_builds_and_validates(env: str, tmp_path: Path) -> None:
    """What ``propose`` writes is a valid InferenceService with the canary split."""
    from serving.rollout.manifest import with_canary

    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    overlay = tree / "overlays" / env / "inferenceservice.yaml"
    digest = "ab" * 32
    overlay.write_text(with_canary(overlay.read_text(), "999", "gs://bucket/m/999/model", 10, digest).text)
    (isvc,) = by_kind(build(tree / "overlays" / env), "InferenceService")
    validate(isvc)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "gs://bucket/m/999/model"
    assert isvc["metadata"]["annotations"]["sentimentops.io/stable-model-version"].isdigit()


def _canary_template() -> dict[str, Any]:
    (template,) = [d for d in yaml.safe_load_all((K8S / "argo" / "canary-analysis.yaml").read_text()) if d]
    return template


def _unread_settings(template: dict[str, Any]) -> list[str]:
    """SENTIMENTOPS_* variables a step sets that its ``serving.rollout`` subcommand does not read (settings
    ignore unknown variables, so a misspelt one would silently fall back to a default)."""
    from components.common.settings import ENV_PREFIX
    from serving.rollout.cli import COMMANDS

    found = []
    for t in template["spec"]["templates"]:
        container = t.get("container")
        if container is None:
            continue
        settings_cls, _ = COMMANDS[container["command"][3]]
        names = {f"{ENV_PREFIX}{name.upper()}" for name in settings_cls.model_fields}
        for env in container.get("env", []):
            if env["name"].startswith(ENV_PREFIX) and env["name"] not in names:
                found.append(f"{t['name']}: {env['name']}")
    return found


def test_workflow_steps_run_rollout_subcommands_that_read_every_variable_they_get() -> None:
    """Each step runs ``python -m serving.rollout <subcommand>`` and the subcommand's settings read every
    SENTIMENTOPS_* variable the step sets; the HOLD retry matches the CLI's exit code."""
    from serving.rollout.analysis import Verdict

    template = _canary_template()
    commands = {
        t["name"]: t["container"]["command"] for t in template["spec"]["templates"] if "container" in t
    }
    assert commands == {
        name: ["python", "-m", "serving.rollout", f"canary-{name}"] for name in ("analyse", "apply", "push")
    }
    assert not any("script" in t for t in template["spec"]["templates"])
    assert _unread_settings(template) == []
    broken = copy.deepcopy(template)
    push = next(t for t in broken["spec"]["templates"] if t["name"] == "push")
    push["container"]["env"].append({"name": "SENTIMENTOPS_GIT_BRANCH", "value": "main"})
    assert _unread_settings(broken) == ["push: SENTIMENTOPS_GIT_BRANCH"]
    retry = next(t for t in template["spec"]["templates"] if t["name"] == "analyse")["retryStrategy"]
    assert retry["expression"] == f"asInt(lastRetry.exitCode) == {Verdict.HOLD.value}"


def _spliced_parameters(template: dict[str, Any]) -> list[str]:
    """Argo placeholders ({{...}}) in a step's command, arguments or script: a parameter value that could be
    read as a flag or as shell."""
    found = []
    for t in template["spec"]["templates"]:
        main = t.get("container") or t.get("script") or {}
        words = [*main.get("command", []), *main.get("args", []), main.get("source", "")]
        found += [f"{t['name']}: {m}" for word in words for m in re.findall(r"\{\{[^}]+\}\}", word)]
    return found


def test_canary_steps_take_parameters_only_from_the_environment() -> None:
    """A reason string or branch name with shell metacharacters cannot run code or become a flag: steps
    read parameters from env vars (Argo substitutes those as data), never from their command line."""
    template = _canary_template()
    assert _spliced_parameters(template) == []
    broken = copy.deepcopy(template)
    push = next(t for t in broken["spec"]["templates"] if t["name"] == "push")
    push["container"]["args"] = ["--reason", "{{inputs.parameters.reason}}"]
    assert _spliced_parameters(broken) == ["push: {{inputs.parameters.reason}}"]
