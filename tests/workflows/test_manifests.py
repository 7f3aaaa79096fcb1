"""The committed manifests: regenerated identically, valid against the real Argo CRD schemas, lint-clean."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.conftest import load_manifest, manifest_files
from workflows import generate, submit
from workflows.argo import BATCH_SCORE_TEMPLATE, RETRAIN_CRON, RETRAIN_TEMPLATE

Validate = Callable[[dict[str, Any]], list[str]]


def test_a_fresh_folder_is_written_byte_identically(tmp_path: Path) -> None:
    """(tests/infra/test_regen.py checks the committed files are current.)"""
    expected = {f"{RETRAIN_TEMPLATE}.yaml", f"{RETRAIN_CRON}.yaml", f"{BATCH_SCORE_TEMPLATE}.yaml"}
    assert expected <= {p.name for p in manifest_files()}
    assert generate.main(["--out", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.yaml"))
    assert {str(p.parent) for p in written} == {"staging", "prod"}
    for path in written:
        assert (tmp_path / path).read_text() == (generate.MANIFESTS_DIR / path).read_text()
    assert generate.write(tmp_path) == []  # nothing changed: nothing rewritten


def test_outputs_cover_every_environment_and_the_canary_template() -> None:
    outs = generate.outputs()
    for env in ("staging", "prod"):
        assert generate.MANIFESTS_DIR / env / f"{RETRAIN_TEMPLATE}.yaml" in outs
    assert outs[generate.CANARY_TEMPLATE].startswith(generate.CANARY_HEADER)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_validates_against_the_argo_crd_schema(
    path: Path, validate_manifest: Validate
) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert validate_manifest(doc) == [], f"{path.name} does not validate"


def _broken(manifest: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    edit(out)
    return out


BROKEN_RETRAIN: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown container key": lambda d: d["spec"]["templates"][0]["container"].update(
        imagePullPolice="Always"
    ),
    "unknown retryStrategy key": lambda d: d["spec"]["templates"][0]["retryStrategy"].update(retries=3),
    "wrong type: deadline as text": lambda d: d["spec"].update(activeDeadlineSeconds="8h"),
    "wrong type: args not a list": lambda d: d["spec"]["templates"][0]["container"].update(args="--x y"),
    "wrong type: env value a number": lambda d: d["spec"]["templates"][0]["container"]["env"][0].update(
        value=5
    ),
    "unknown spec key": lambda d: d["spec"].update(tolerationz=[]),
    "unknown top-level key": lambda d: d.update(extra={"a": 1}),
    "misspelt dag dependency key": lambda d: next(t for t in d["spec"]["templates"] if "dag" in t)["dag"][
        "tasks"
    ][1].update(dependecies=["validate"]),
    "wrong kind": lambda d: d.update(kind="Workflowtemplate"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_RETRAIN))
def test_schema_rejects_unknown_keys_and_wrong_types(case: str, validate_manifest: Validate) -> None:
    good = load_manifest(f"{RETRAIN_TEMPLATE}.yaml")
    assert validate_manifest(good) == []
    assert validate_manifest(_broken(good, BROKEN_RETRAIN[case])), f"broken fixture accepted: {case}"


def test_schema_rejects_a_broken_cron(validate_manifest: Validate) -> None:
    good = load_manifest(f"{RETRAIN_CRON}.yaml")
    assert validate_manifest(_broken(good, lambda d: d["spec"].update(concurencyPolicy="Forbid")))
    assert validate_manifest(_broken(good, lambda d: d["spec"].update(schedules="0 3 * * 1")))
    assert validate_manifest(_broken(good, lambda d: d["spec"].pop("workflowSpec")))


def test_submitted_workflow_validates(validate_manifest: Validate) -> None:
    manifest = submit.workflow_manifest({"dataset_uri": "gs://b/reviews.csv", "epochs": "1"})
    assert validate_manifest(manifest) == []
    assert manifest["spec"]["workflowTemplateRef"] == {"name": RETRAIN_TEMPLATE}


def test_manifests_pass_yamllint() -> None:
    """The repository's .yamllint (strict: warnings count too), or yamllint's defaults with long lines."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    repo_config = generate.MANIFESTS_DIR.parents[1] / ".yamllint"
    config = (
        YamlLintConfig(file=str(repo_config))
        if repo_config.is_file()
        else YamlLintConfig("{extends: default, rules: {line-length: {max: 120}}}")
    )
    for path in manifest_files():
        problems = [str(p) for p in linter.run(path.read_text(), config, str(path))]
        assert problems == [], f"{path.name}: {problems}"
