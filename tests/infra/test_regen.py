"""``make regen``: every generated file is what its generator writes, and the check sees any difference.

This is the one staleness test of the repository (dashboards, monitoring CRs, chart copies, topology
outputs, Argo manifests and the canary template, docs/flows.md): ``infra/regen.py`` lists the generators.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import regen, topology
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def generated() -> dict[str, regen.Outputs]:
    """Each generator's outputs, computed once from the checkout."""
    return {gen.module: gen.outputs() for gen in regen.GENERATORS}


def test_no_generated_file_is_stale(generated: dict[str, regen.Outputs]) -> None:
    stale = [str(p.relative_to(REPO_ROOT)) for outs in generated.values() for p in regen.stale_files(outs)]
    assert stale == [], f"stale generated files {stale}: run `make regen` and commit the result"


def test_every_generator_owns_files_in_the_repository(generated: dict[str, regen.Outputs]) -> None:
    """A generator that writes nothing (or outside the checkout) would make the check above vacuous."""
    for module, outs in generated.items():
        written = [p for p, content in outs.items() if content is not None]
        assert written, f"{module} generates no file"
        assert all(p.is_relative_to(REPO_ROOT) for p in outs), module
    assert REPO_ROOT / "k8s" / "argo" / "canary-analysis.yaml" in generated["workflows.generate"]


def _copy_to(outs: regen.Outputs, root: Path) -> regen.Outputs:
    """The same outputs re-rooted under ``root``, with the committed files copied there."""
    moved: regen.Outputs = {}
    for path, content in outs.items():
        target = root / path.relative_to(REPO_ROOT)
        if path.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        moved[target] = content
    return moved


@pytest.mark.parametrize("module", [gen.module for gen in regen.GENERATORS])
def test_an_edited_generated_file_is_reported_and_rewritten(
    module: str, generated: dict[str, regen.Outputs], tmp_path: Path
) -> None:
    outs = _copy_to(generated[module], tmp_path)
    assert regen.stale_files(outs) == []
    edited = next(p for p, content in outs.items() if content is not None)
    edited.write_bytes(edited.read_bytes() + b"# edited by hand\n")
    assert regen.stale_files(outs) == [edited]
    assert regen.write_outputs(outs) == [edited]
    assert regen.stale_files(outs) == []
    edited.unlink()  # a deleted generated file is stale too
    assert regen.stale_files(outs) == [edited]


def test_check_mode_names_the_stale_file_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through ``python -m infra.regen``'s entry point, with the topology generator's outputs in tmp."""
    for name in ("ARCHITECTURE_DOC", "TERRAFORM_TOPOLOGY"):
        path: Path = getattr(topology, name)
        copy = tmp_path / path.name
        shutil.copyfile(path, copy)
        monkeypatch.setattr(topology, name, copy)
    monkeypatch.setattr(regen, "GENERATORS", (regen.Generator("infra.topology"),))
    assert regen.main(["--check"]) == 0
    doc = tmp_path / "topology.json"
    doc.write_text(doc.read_text().replace('"roles/storage.objectViewer"', '"roles/storage.admin"', 1))
    assert regen.main(["--check"]) == 1
    out, err = capsys.readouterr()
    assert f"stale: {doc}" in out and "run `make regen`" in err
    assert regen.main([]) == 0
    assert regen.main(["--check"]) == 0


def test_write_deletes_a_file_its_generator_disowns(tmp_path: Path) -> None:
    """``None`` content (a chart copy whose source is gone) means the file must not exist."""
    orphan = tmp_path / "files" / "removed-upstream.json"
    orphan.parent.mkdir()
    orphan.write_text("{}\n")
    assert regen.stale_files({orphan: None}) == [orphan]
    assert regen.write_outputs({orphan: None}) == [orphan] and not orphan.exists()
