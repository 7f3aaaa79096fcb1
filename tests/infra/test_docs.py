"""The infrastructure docs stay true: the checks docs/security.md names exist, links resolve."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO_ROOT

DOCS = ("docs/architecture.md", "docs/operations.md", "docs/security.md", "infra/terraform/README.md")


def test_every_check_named_in_security_md_exists() -> None:
    text = (REPO_ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"\btest_\w+", text))
    assert len(named) >= 15, named
    defined = {
        name
        for path in (REPO_ROOT / "tests").rglob("*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M)
    }
    modules = {p.stem for p in (REPO_ROOT / "tests").rglob("test_*.py")}
    missing = sorted(n for n in named if n not in defined and n not in modules)
    assert not missing, f"docs/security.md names checks that do not exist: {missing}"


def test_every_checkov_skip_is_documented() -> None:
    """A skip in the Terraform or in infra/checkov.yaml must appear in security.md's skip table."""
    table = (REPO_ROOT / "docs" / "security.md").read_text().split("## checkov skips and why", 1)[1]
    skips = set(
        re.findall(
            r"checkov:skip=(CKV\w+)", "".join(p.read_text() for p in (REPO_ROOT / "infra").rglob("*.tf"))
        )
    )
    skips |= set(
        re.findall(r"^\s*-\s*(CKV\w+)", (REPO_ROOT / "infra" / "checkov.yaml").read_text(), flags=re.M)
    )
    assert skips
    assert not [s for s in skips if s not in table], skips


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc: str) -> None:
    path = REPO_ROOT / doc
    for target in re.findall(r"\]\(([^)#]+?)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{doc}: broken link {target}"


def test_architecture_has_its_diagrams() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    assert text.count("```mermaid") >= 3
