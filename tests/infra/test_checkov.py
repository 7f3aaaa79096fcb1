"""checkov on the Terraform, the rendered chart and the Dockerfiles; no failed check, no parse error.

checkov runs from its own virtual environment (.venv-checkov, `make checkov-venv`): its pins clash with
the project's. Skips: inline `# checkov:skip=<id>: <why>` in the Terraform, and infra/checkov.yaml
(each with its reason) for the rendered YAML and the Dockerfiles.
"""

from __future__ import annotations

from tests.conftest import REPO_ROOT
from tests.infra.conftest import FIXTURES, TERRAFORM_DIR, failed_checks, parsing_errors, run_checkov

DOCKERFILES = ("Dockerfile.train", "Dockerfile.serve")


def _checked(reports, framework: str) -> int:
    summary = next((r["summary"] for r in reports if r.get("check_type") == framework), {})
    return summary.get("passed", 0) + summary.get("failed", 0) + summary.get("skipped", 0)


def test_terraform() -> None:
    reports = run_checkov("-d", str(TERRAFORM_DIR), "--framework", "terraform")
    assert not parsing_errors(reports)
    assert _checked(reports, "terraform") > 50, reports
    assert not failed_checks(reports), "\n".join(failed_checks(reports))


def test_rendered_chart(rendered_dir) -> None:
    reports = run_checkov("-d", str(rendered_dir), "--framework", "kubernetes")
    assert not parsing_errors(reports)
    assert _checked(reports, "kubernetes") > 50, reports
    assert not failed_checks(reports), "\n".join(failed_checks(reports))


def test_dockerfiles() -> None:
    args = [a for name in DOCKERFILES for a in ("-f", str(REPO_ROOT / name))]
    reports = run_checkov(*args, "--framework", "dockerfile")
    assert not parsing_errors(reports)
    assert _checked(reports, "dockerfile") > 0
    assert not failed_checks(reports), "\n".join(failed_checks(reports))


def test_checkov_bites_on_insecure_fixtures(tmp_path) -> None:
    """The public bucket, the privileged container and the bad Dockerfile all fail; a .tf that does not
    parse is reported as a parsing error (checkov's exit code alone would call it a pass)."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "main.tf").write_text('resource "google_storage_bucket" "b" {\n  name = \n')
    reports = run_checkov(
        "-d", str(FIXTURES), "-d", str(broken), "--framework", "terraform", "kubernetes", "dockerfile"
    )
    failed = "\n".join(failed_checks(reports))
    assert "CKV_GCP_114" in failed  # public access prevention not enforced
    assert "CKV_GCP_29" in failed  # no uniform bucket-level access
    assert "CKV_GCP_28" in failed  # bucket readable by allUsers
    assert "CKV_K8S_16" in failed  # privileged container
    assert "CKV_K8S_19" in failed  # hostNetwork
    assert "CKV_DOCKER_3" in failed  # no USER
    assert "CKV_DOCKER_7" in failed  # :latest base image
    assert parsing_errors(reports)
