"""The cron and batch-score manifests, the documented parameter contract, and refusal of bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from components.batch_score.cli import build_parser as batch_parser
from components.batch_score.score import BatchScoreSettings
from components.common.settings import ComponentError, TrackingSettings, settings_from_args
from tests.workflows.conftest import container_templates, substitute
from workflows import generate, submit
from workflows.argo import RETRAIN_TEMPLATE, argo_value
from workflows.spec import PARAMETERS, Step

README = Path(__file__).resolve().parents[2] / "workflows" / "README.md"


def test_cron_runs_the_template_never_concurrently(cron: dict[str, Any], retrain: dict[str, Any]) -> None:
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedules"] and all(len(s.split()) == 5 for s in spec["schedules"])
    workflow = spec["workflowSpec"]
    assert workflow["workflowTemplateRef"] == {"name": RETRAIN_TEMPLATE}
    assert retrain["metadata"]["name"] == RETRAIN_TEMPLATE
    values = {p["name"]: p["value"] for p in workflow["arguments"]["parameters"]}
    # Only template parameters, with everything required: Argo would accept this submission.
    full = submit.check_parameters(values)
    assert full["dataset_uri"].startswith("gs://")


def test_batch_score_template_matches_its_cli(batch: dict[str, Any]) -> None:
    """Three stages of one CLI, each parsed by the component's real parser: plan, score-shard, merge."""
    templates = container_templates(batch)
    assert set(templates) == {"batch-score-plan", "batch-score-shard", "batch-score-merge"}
    params = {p["name"]: p for p in batch["spec"]["arguments"]["parameters"]}
    assert params["model_uri"]["value"] == "models:/sentiment@champion"
    assert params["output_uri"]["value"] == ""  # beside the input
    assert "value" not in params["dataset_uri"]  # required at submission
    stages = {}
    for name, template in templates.items():
        container = template["container"]
        assert container["command"] == ["python", "-m", "components.batch_score"]
        args = [substitute(a.replace("{{inputs.parameters.shard_index}}", "3")) for a in container["args"]]
        settings = settings_from_args(BatchScoreSettings, batch_parser().parse_args(args))
        stages[settings.stage] = (name, settings)
        assert settings.dataset_uri == "gs://sample-bucket/datasets/reviews.csv"
        assert (settings.text_column, settings.batch_size, settings.output_uri) == ("review", 64, "")
        used = {
            a.split("workflow.parameters.")[1].rstrip("}")
            for a in container["args"]
            if "workflow.parameters" in a
        }
        assert used == set(params)  # every stage gets the same parameters: they agree on the work folder
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "retryStrategy" in template and "'2'" in template["retryStrategy"]["expression"]
    assert set(stages) == {"plan", "score-shard", "merge"}
    assert stages["score-shard"][1].shard_index == 3
    plan_name, plan_settings = stages["plan"]
    (output,) = templates[plan_name]["outputs"]["parameters"]
    assert output["valueFrom"]["path"] == plan_settings.shard_list_path
    assert plan_settings.shard_list_path.startswith("/tmp/")  # the writable emptyDir
    (dag,) = [t for t in batch["spec"]["templates"] if "dag" in t]
    assert batch["spec"]["entrypoint"] == dag["name"] and dag["parallelism"] >= 1
    tasks = {t["name"]: t for t in dag["dag"]["tasks"]}
    fan_out = tasks["score-shard"]
    assert fan_out["template"] == stages["score-shard"][0]
    assert (
        fan_out["withParam"] == "{{tasks.plan.outputs.parameters.shards}}"
        and tasks["plan"]["template"] == plan_name
    )
    assert fan_out["arguments"]["parameters"] == [{"name": "shard_index", "value": "{{item}}"}]
    assert fan_out["depends"] == "plan" and tasks["merge"]["depends"] == "score-shard"
    assert batch["spec"]["serviceAccountName"] and batch["spec"]["activeDeadlineSeconds"] > 0


def test_readme_documents_every_template_parameter(retrain: dict[str, Any], batch: dict[str, Any]) -> None:
    text = README.read_text()
    for manifest in (retrain, batch):
        for parameter in manifest["spec"]["arguments"]["parameters"]:
            assert f"`{parameter['name']}`" in text, (
                f"workflows/README.md does not document {parameter['name']}"
            )
    assert "sentiment-retrain" in text and "workflowTemplateRef" in text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dataset_uri": "gs://b/d.csv", "epoch": "2"}, "unknown parameter(s) epoch for sentiment-retrain"),
        ({"epochs": "2"}, "parameter dataset_uri is required"),
        ({"dataset_uri": "  "}, "parameter dataset_uri is required"),
        (
            {"dataset_uri": "gs://b/d.csv", "precision": "bf16"},
            "precision='bf16' is not one of auto, fp16, fp32",
        ),
        ({"dataset_uri": "gs://b/d.csv", "smoke": "yes"}, "smoke='yes' is not one of true, false"),
        ({"dataset_uri": "gs://b/d.csv", "artifacts_root": "artifacts/run"}, "must be a gs:// prefix"),
        ({"dataset_uri": "gs://b/d.csv", "artifacts_root": "gs://b/runs/"}, "without a trailing slash"),
    ],
)
def test_bad_submissions_are_refused_with_a_clear_message(values: dict[str, str], message: str) -> None:
    with pytest.raises(submit.ParameterError) as excinfo:
        submit.check_parameters(values)
    assert message in str(excinfo.value)


def test_submit_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert submit.main(["--param", "dataset_uri=gs://b/d.csv", "--param", "epochs=1"]) == 0
    manifest = yaml.safe_load(capsys.readouterr().out)
    assert {p["name"]: p["value"] for p in manifest["spec"]["arguments"]["parameters"]} == {
        "dataset_uri": "gs://b/d.csv",
        "epochs": "1",
    }
    assert submit.main(["--param", "dataset_uri=gs://b/d.csv", "--param", "nope=1"]) == 2
    assert "unknown parameter(s) nope" in capsys.readouterr().err
    assert submit.main(["--param", "dataset_uri"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_generator_refuses_unknown_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--out", str(tmp_path), "--param", "learning-rate=1e-4"]) == 2
    assert "unknown parameter(s) learning-rate" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written
    assert generate.main(["--out", str(tmp_path), "--param", "epochs=5"]) == 0
    written = yaml.safe_load((tmp_path / f"{RETRAIN_TEMPLATE}.yaml").read_text())
    assert {p["name"]: p.get("value") for p in written["spec"]["arguments"]["parameters"]}["epochs"] == "5"


def test_local_runner_has_the_same_parameters_and_refuses_bad_input() -> None:
    from components.pipeline.cli import build_parser
    from components.pipeline.runner import run_pipeline

    parser = build_parser()
    dests = [a.dest for a in parser._actions if a.dest != "help"]
    # every pipeline parameter, then the one flag about how the runner runs them (not a parameter of the run)
    assert dests == [p.name for p in PARAMETERS] + ["max_parallel_steps"]
    with pytest.raises(SystemExit) as excinfo:
        parser.parse_args(["--dataset-uri", "x.csv", "--learning-rte", "1"])
    assert excinfo.value.code == 2
    with pytest.raises(ComponentError, match="dataset_uri is required"):
        run_pipeline({**vars(parser.parse_args([])), "dataset_uri": ""}, TrackingSettings())


def test_a_misspelt_flag_in_the_spec_would_fail_the_cli_check(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI check is real: a flag the component does not define does not parse."""
    from components.validate.cli import build_parser as validate_parser

    step = Step(name="validate", module="components.validate", args=(("--dataset-url", "{dataset_uri}"),))
    with pytest.raises(SystemExit) as excinfo:
        validate_parser().parse_args(step.argv({"dataset_uri": "gs://b/d.csv"}))
    assert excinfo.value.code == 2 and "unrecognized arguments: --dataset-url" in capsys.readouterr().err


def test_generator_refuses_a_spec_template_with_an_unknown_parameter() -> None:
    assert argo_value("{artifacts_root}/x") == "{{workflow.parameters.artifacts_root}}/{{workflow.uid}}/x"
    assert argo_value("{epochs}") == "{{workflow.parameters.epochs}}"
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['epoch'\]"):
        argo_value("{epoch}")


def test_batch_score_template_command_runs_as_rendered(
    batch: dict[str, Any], baseline_model_dir: Path, rt_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """The DAG run as Argo would: the plan pod's rendered command, one shard pod per item of the list it
    wrote, then merge; the predictions land beside the input in input order, and the work folder is gone."""
    dataset = tmp_path / "data" / "reviews.csv"
    dataset.parent.mkdir()
    rt_frame.head(25)[["text"]].rename(columns={"text": "review"}).to_csv(dataset, index=False)
    values = {p["name"]: p.get("value", "") for p in batch["spec"]["arguments"]["parameters"]}
    values.update(
        dataset_uri=str(dataset), model_uri=str(baseline_model_dir), text_column="review", shard_rows="10"
    )
    templates = container_templates(batch)
    shard_list = tmp_path / "outputs" / "shards.json"

    def run(name: str, shard_index: str = "") -> None:
        container = templates[name]["container"]
        args = [
            substitute(a.replace("{{inputs.parameters.shard_index}}", shard_index), values).replace(
                templates["batch-score-plan"]["outputs"]["parameters"][0]["valueFrom"]["path"],
                str(shard_list),
            )
            for a in container["args"]
        ]
        command = [sys.executable, *container["command"][1:], *args]
        env = {e["name"]: substitute(e["value"], values) for e in container["env"] if "value" in e}
        env.update(
            HOME=str(tmp_path),
            HF_HOME=str(tmp_path / "hf"),
            XDG_CACHE_HOME=str(tmp_path / "cache"),
            MPLCONFIGDIR=str(tmp_path / "mpl"),
            SENTIMENTOPS_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
            PATH=os.environ["PATH"],
            PYTHONPATH=str(README.parents[1]),
            # A bare directory has no registry digest to pin; the template's default is models:/ (pinned).
            SENTIMENTOPS_ALLOW_UNPINNED_MODEL="true",
        )
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]

    run("batch-score-plan")
    items = json.loads(shard_list.read_text())
    assert items == [0, 1, 2]
    for item in items:
        run("batch-score-shard", str(item))
    run("batch-score-merge")
    scored = pd.read_parquet(dataset.with_name("reviews.predictions.parquet"))
    assert len(scored) == 25 and {"review", "predicted_label", "positive_probability"} <= set(scored.columns)
    assert scored["review"].tolist() == rt_frame.head(25)["text"].tolist()
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["reviews.csv", "reviews.predictions.parquet"]


def test_the_drift_sensor_submits_with_declared_parameters(validate_manifest: Any) -> None:
    """Contract with the chart's retrain trigger: the Sensor's Workflow names only template parameters."""
    from tests.infra.conftest import documents, load_values, render

    rendered = documents(render(load_values("values-prod.yaml")))
    sensor = next(d for d in rendered if d.get("kind") == "Sensor")
    workflows = [
        t["template"]["k8s"]["source"]["resource"]
        for t in sensor["spec"]["triggers"]
        if "k8s" in t.get("template", {})
    ]
    assert workflows, "the Sensor submits no Workflow"
    for workflow in workflows:
        assert workflow["kind"] == "Workflow"
        assert workflow["spec"]["workflowTemplateRef"] == {"name": RETRAIN_TEMPLATE}
        values = {p["name"]: p.get("value", "") for p in workflow["spec"]["arguments"]["parameters"]}
        submit.check_parameters(values)  # unknown names, a missing dataset_uri, bad enums are refused
        assert validate_manifest(workflow) == []
