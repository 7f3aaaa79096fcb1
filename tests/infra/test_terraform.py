"""infra/terraform: parses, documents and validates its inputs, and keeps the security settings on."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.conftest import require_binary
from tests.infra.conftest import FIXTURES, TERRAFORM_DIR
from tests.infra.terraform_model import first, load_config, load_file, security_problems

TF_FILES = sorted(
    p
    for p in TERRAFORM_DIR.rglob("*")
    if p.suffix in {".tf", ".tfvars"} or p.name.endswith(".tfvars.example")
)


@pytest.fixture(scope="module")
def config():
    return load_config(TERRAFORM_DIR)


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM_DIR)))
def test_every_file_parses(path) -> None:
    load_file(path)


def test_a_syntax_error_does_not_parse(tmp_path) -> None:
    broken = tmp_path / "broken.tf"
    broken.write_text('resource "google_storage_bucket" "b" {\n  name = \n}\n')
    with pytest.raises(Exception):  # noqa: B017 - any lark/hcl2 parse error
        load_file(broken)


def test_terraform_fmt() -> None:
    """`terraform fmt` finds nothing to change (the machine image's terraform, else `make terraform`'s)."""
    proc = subprocess.run(
        [require_binary("terraform"), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_security_settings(config) -> None:
    assert security_problems(config) == []


def test_security_assertions_bite_on_an_insecure_config() -> None:
    problems = security_problems(load_config(FIXTURES / "insecure_terraform"))
    for expected in [
        "nodes are not private",
        "Workload Identity is off",
        "shielded nodes are off",
        "no release channel",
        "public access prevention not enforced",
        "ACLs allowed",
        "public member",
        "no nvidia.com/gpu NO_SCHEDULE taint",
        "does not scale to zero",
    ]:
        assert any(expected in p for p in problems), f"{expected!r} not reported: {problems}"


def test_gpu_pool_is_tainted_spot_capable_and_typed(config) -> None:
    (gpu,) = [
        p
        for p in config.of_type("google_container_node_pool").values()
        if first(p["node_config"]).get("guest_accelerator")
    ]
    node = first(gpu["node_config"])
    assert node["spot"] == "${var.gpu_spot}"
    assert first(node["guest_accelerator"])["type"] == "${var.gpu_accelerator_type}"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in node["taint"]


def test_workload_identity_binds_each_ksa_in_the_platform_namespace(config) -> None:
    bindings = config.of_type("google_service_account_iam_member")
    members = {b["member"] for b in bindings.values() if b["role"] == "roles/iam.workloadIdentityUser"}
    assert "serviceAccount:${var.workload_pool}[${each.value.namespace}/${each.value.name}]" in members
    # No project-wide storage roles: buckets are granted one by one.
    project_roles = {m["role"] for m in config.of_type("google_project_iam_member").values()}
    assert not {r for r in project_roles if r.startswith("roles/storage.")}


def test_every_variable_has_a_description_and_a_type(config) -> None:
    for name, var in config.variables.items():
        assert var.get("description"), f"variable {name} has no description"
        assert var.get("type"), f"variable {name} has no type"


def test_root_inputs_are_validated(config) -> None:
    """Free-form root inputs (names, CIDRs, enums, bounds) reject bad values at plan time."""
    unvalidated_ok = {
        "labels",
        "cpu_machine_type",
        "gpu_machine_type",
        "cloudsql_tier",
        "gpu_spot",
        "deletion_protection",
        "cloudsql_high_availability",
        "install_addons",
    }
    root = {k.split(":", 1)[1]: v for k, v in config.variables.items() if k.startswith(".:")}
    missing = [name for name, var in root.items() if name not in unvalidated_ok and not var.get("validation")]
    assert not missing, f"root variables without validation: {missing}"


def test_every_output_has_a_description(config) -> None:
    for name, output in config.outputs.items():
        assert output.get("description"), f"output {name} has no description"


def test_helm_releases_pin_their_chart_versions(config) -> None:
    releases = config.of_type("helm_release")
    charts = {r["chart"] for r in releases.values()}
    for chart in [
        "kube-prometheus-stack",
        "argo-workflows",
        "argo-events",
        "argo-cd",
        "cert-manager",
        "kserve",
        "knative-operator",
        "istiod",
        "external-secrets",
    ]:
        assert chart in charts, f"add-on {chart} is not installed"
    # One place pins every chart: infra/versions.yaml, which modules/addons reads.
    assert "versions.yaml" in str(config.locals["modules/addons:chart_versions"])
    versions = yaml.safe_load((TERRAFORM_DIR.parent / "versions.yaml").read_text())["charts"]
    for name, release in releases.items():
        if str(release["chart"]).startswith("${path.module}/"):  # a chart of this repository
            local_chart = (
                TERRAFORM_DIR / name.split(":")[0] / release["chart"].removeprefix("${path.module}/")
            )
            assert (local_chart / "Chart.yaml").exists(), local_chart
            continue
        match = re.fullmatch(r"\$\{local\.chart_versions\.(\w+)\}", str(release.get("version", "")))
        assert match, f"helm_release {name} has no pinned version"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", versions[match.group(1)]), versions[match.group(1)]


@pytest.mark.parametrize(
    "tfvars", sorted((TERRAFORM_DIR / "environments").glob("*.tfvars")), ids=lambda p: p.name
)
def test_environment_tfvars_set_only_declared_variables(config, tfvars) -> None:
    root = {k.split(":", 1)[1] for k in config.variables if k.startswith(".:")}
    values = load_file(tfvars)
    assert set(values) <= root, set(values) - root
    required = {
        k.split(":", 1)[1] for k, v in config.variables.items() if k.startswith(".:") and "default" not in v
    }
    assert required <= set(values), required - set(values)
