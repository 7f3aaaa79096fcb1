"""sentiment-retrain really matches the components: DAG, command lines, parameters, GPU, retries, hardening."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from components.common.settings import ComponentError, settings_from_args
from tests.workflows.conftest import SAMPLE_PARAMETERS, SAMPLE_UID, container_templates, substitute
from workflows.argo import PARAMETER_ENUMS, REQUIRED_PARAMETERS, retry_expression
from workflows.cluster import DEFAULT_CLUSTER, STEP_RESOURCES, missing_step_resources
from workflows.spec import PARAMETERS, STEPS, Step

STEP_IDS = [s.name for s in STEPS]
REPO_ROOT = Path(__file__).resolve().parents[2]
_REF = re.compile(r"\{\{workflow\.parameters\.([A-Za-z0-9_-]+)\}\}")


def _dag(manifest: dict[str, Any]) -> dict[str, Any]:
    entry = manifest["spec"]["entrypoint"]
    return next(t for t in manifest["spec"]["templates"] if t["name"] == entry)["dag"]


def _container(manifest: dict[str, Any], step: Step) -> dict[str, Any]:
    return container_templates(manifest)[step.name]["container"]


def test_dag_order_matches_the_spec(retrain: dict[str, Any]) -> None:
    tasks = {t["name"]: t for t in _dag(retrain)["tasks"]}
    assert list(tasks) == ["validate", "train-baseline", "finetune", "blend", "evaluate", "register"]
    deps = {name: set(t.get("dependencies", [])) for name, t in tasks.items()}
    assert deps == {
        "validate": set(),
        "train-baseline": {"validate"},
        "finetune": {"validate"},  # in parallel with train-baseline
        "blend": {"train-baseline", "finetune"},  # averages the two: needs both
        "evaluate": {"train-baseline", "blend"},
        "register": {"evaluate"},
    }
    assert deps == {s.name: set(s.depends) for s in STEPS}
    assert all(t["template"] == name for name, t in tasks.items())


def test_container_per_step_runs_the_component_module(retrain: dict[str, Any]) -> None:
    containers = container_templates(retrain)
    assert set(containers) == set(STEP_IDS)
    for step in STEPS:
        command = _container(retrain, step)["command"]
        if step.held_exit_codes:
            assert command[:2] == ["sh", "-c"] and command[3] == step.module
            assert command[2].startswith(f'python -m {step.module} "$@";')
        else:
            assert command == ["python", "-m", step.module]
        assert _container(retrain, step)["image"] == DEFAULT_CLUSTER.image


@pytest.mark.parametrize(("exit_code", "argo_sees"), [(0, 0), (1, 1), (2, 2), (3, 0)])
def test_a_held_gate_ends_the_step_successfully_and_nothing_else_does(
    exit_code: int, argo_sees: int, tmp_path: Path
) -> None:
    """register's hold (exit 3: too little evidence) is an outcome, not a failure Argo retries or alerts
    on; a refusal (2) and an error (1) still fail the step. Runs the generated wrapper for real."""
    from workflows.argo import _command

    command = _command("tests.workflows.exit_code_probe", (3,))
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [*command, str(exit_code)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == argo_sees, proc.stderr
    assert ("nothing promoted" in proc.stdout) is (exit_code == 3)


def _cli(step_module: str) -> Any:
    try:
        return importlib.import_module(f"{step_module}.cli")
    except ModuleNotFoundError as exc:  # the lead's components land separately
        pytest.fail(f"{step_module}.cli is missing: {exc}")


def _settings_class(cli_module: Any, dests: set[str]) -> type[BaseSettings] | None:
    """The settings class the CLI builds its flags from (the one whose fields are the parser's dests)."""
    for _, obj in inspect.getmembers(cli_module, inspect.isclass):
        if issubclass(obj, BaseSettings) and dests <= set(obj.model_fields) and dests:
            if set(obj.model_fields) <= dests | {"help"}:
                return obj
    return None


@pytest.mark.parametrize("step", STEPS, ids=STEP_IDS)
def test_rendered_args_parse_with_the_real_component_cli(retrain: dict[str, Any], step: Step) -> None:
    args = [substitute(a) for a in _container(retrain, step)["args"]]
    cli = _cli(step.module)
    parser = cli.build_parser()
    parsed = parser.parse_args(args)  # an unknown flag exits with SystemExit(2) and fails the test
    # Every flag carries exactly the value the template rendered.
    for flag, value in zip(args[::2], args[1::2], strict=True):
        assert getattr(parsed, flag.removeprefix("--").replace("-", "_")) == value
    # And the values are valid for the component's typed settings (ints, floats, enums, bools).
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    settings_cls = _settings_class(cli, dests)
    assert settings_cls is not None, f"no settings class behind {step.module}.cli"
    try:
        settings_from_args(settings_cls, parsed)
    except ComponentError as exc:
        pytest.fail(f"{step.name}: sample parameters rejected by its settings: {exc}")


@pytest.mark.parametrize("step", STEPS, ids=STEP_IDS)
def test_argo_and_local_runner_get_the_same_command_line(retrain: dict[str, Any], step: Step) -> None:
    """One definition, two runners: Argo's args equal the local runner's argv for the same values."""
    local_values = {
        **SAMPLE_PARAMETERS,
        "artifacts_root": f"{SAMPLE_PARAMETERS['artifacts_root']}/{SAMPLE_UID}",
    }
    argo_args = [substitute(a) for a in _container(retrain, step)["args"]]
    assert argo_args == step.argv(local_values)


def test_every_parameter_flows_into_the_commands(retrain: dict[str, Any]) -> None:
    declared = [p["name"] for p in retrain["spec"]["arguments"]["parameters"]]
    assert declared == [p.name for p in PARAMETERS]
    used: set[str] = set()
    for template in container_templates(retrain).values():
        container = template["container"]
        texts = container["args"] + [e["value"] for e in container["env"] if "value" in e]
        for text in texts:
            used |= set(_REF.findall(text))
            assert "{" not in substitute(text), f"unrendered template left in {text!r}"
    assert used == set(declared), (
        f"declared but unused: {set(declared) - used}; undeclared: {used - set(declared)}"
    )


def test_cluster_defaults_and_submission_checks(retrain: dict[str, Any]) -> None:
    params = {p["name"]: p for p in retrain["spec"]["arguments"]["parameters"]}
    # The checkpoint mirrored into the environment's models bucket: training pods have no internet.
    assert params["base_model"]["value"] == DEFAULT_CLUSTER.topology.base_model_uri
    assert params["base_model"]["value"].startswith(f"gs://{DEFAULT_CLUSTER.project}-models/")
    assert params["artifacts_root"]["value"] == f"gs://{DEFAULT_CLUSTER.artifacts_bucket}/runs"
    assert params["precision"]["value"] == "fp16"  # mixed precision on the GPU pool
    for name in REQUIRED_PARAMETERS:  # no default: Argo refuses a submission without it
        assert "value" not in params[name] and "default" not in params[name]
    for name, allowed in PARAMETER_ENUMS.items():
        assert params[name]["enum"] == list(allowed) and params[name]["value"] in allowed
    assert all(p.get("description") for p in params.values())


def test_outputs_are_gs_uris_per_run_not_argo_artifacts(retrain: dict[str, Any]) -> None:
    for name, template in container_templates(retrain).items():
        assert not template.get("outputs", {}).get("artifacts"), name
        assert not template.get("inputs", {}).get("artifacts"), name
        for arg in template["container"]["args"]:
            if "artifacts_root" in arg:
                assert arg.startswith("{{workflow.parameters.artifacts_root}}/{{workflow.uid}}/"), arg
                assert substitute(arg).startswith(f"gs://sample-bucket/runs/{SAMPLE_UID}/")


def test_finetune_is_scheduled_on_the_gpu_pool(retrain: dict[str, Any]) -> None:
    templates = container_templates(retrain)
    gpu_steps = [s for s in STEPS if s.gpu]
    assert [s.name for s in gpu_steps] == ["finetune"]
    for step in STEPS:
        template = templates[step.name]
        resources = template["container"]["resources"]
        if step.gpu:
            assert resources["limits"]["nvidia.com/gpu"] == "1"
            assert template["nodeSelector"]["cloud.google.com/gke-accelerator"] == "nvidia-l4"
            # On the template itself: workflow-level tolerations are ignored with workflowTemplateRef.
            gpu_toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            assert gpu_toleration in template["tolerations"]
            assert any(m["mountPath"] == "/dev/shm" for m in template["container"]["volumeMounts"])
            args = template["container"]["args"]
            assert args[args.index("--precision") + 1] == "{{workflow.parameters.precision}}"
        else:
            assert "nvidia.com/gpu" not in resources.get("limits", {})
            assert "nodeSelector" not in template and "tolerations" not in template
    assert "tolerations" not in retrain["spec"]  # would be ignored for workflowTemplateRef submissions


def _retried(expression: str, exit_code: str) -> bool:
    """Evaluate the retry expression for one exit code (the expr-lang subset used is also Python)."""
    assert re.fullmatch(r"lastRetry\.exitCode not in \[('-?\d+'(, )?)+\]", expression), expression
    return bool(eval(expression.replace("lastRetry.exitCode", repr(exit_code)), {"__builtins__": {}}))  # noqa: S307


@pytest.mark.parametrize("step", STEPS, ids=STEP_IDS)
def test_retries_cover_transient_failures_but_never_a_failed_gate(
    retrain: dict[str, Any], step: Step
) -> None:
    strategy = container_templates(retrain)[step.name]["retryStrategy"]
    assert strategy["retryPolicy"] == "Always" and int(strategy["limit"]) >= 1
    assert strategy["expression"] == retry_expression(step.gate_exit_codes)
    assert strategy["affinity"] == {"nodeAntiAffinity": {}}
    assert strategy["backoff"]["duration"]
    for code in step.gate_exit_codes:
        assert not _retried(strategy["expression"], str(code)), f"gate exit {code} would be retried"
    # Preempted/evicted pods have no exit code (-1); crashes exit 1 or 137 (OOM/SIGKILL): all retried.
    for code in ("-1", "1", "137", "143"):
        assert _retried(strategy["expression"], code)


def test_workflow_level_limits_identity_and_cleanup(retrain: dict[str, Any]) -> None:
    spec = retrain["spec"]
    assert spec["serviceAccountName"] == DEFAULT_CLUSTER.service_account != "default"
    assert 0 < spec["activeDeadlineSeconds"] <= 24 * 3600
    assert spec["podGC"]["strategy"] in {"OnPodSuccess", "OnPodCompletion", "OnWorkflowCompletion"}
    assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0 and spec["ttlStrategy"]["secondsAfterFailure"] > 0
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_every_step_is_hardened_and_bounded(retrain: dict[str, Any]) -> None:
    assert missing_step_resources() == []
    for name, template in container_templates(retrain).items():
        container = template["container"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["runAsNonRoot"] is True and security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]}, name
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in template["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be a writable emptyDir"
        resources = container["resources"]
        for kind in ("cpu", "memory"):
            assert resources["requests"][kind] and resources["limits"][kind], f"{name}: {kind}"
        assert template["activeDeadlineSeconds"] == STEP_RESOURCES[name].deadline_seconds
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert env["SENTIMENTOPS_TRACKING_URI"] == DEFAULT_CLUSTER.tracking_uri
        assert env["GIT_COMMIT"] == "{{workflow.parameters.git_revision}}"
        assert env["HOME"].startswith("/tmp") and env["HF_HOME"].startswith("/tmp")
        # MLflow's pipeline identity: the password comes from the chart's Secret, never inline.
        assert env["MLFLOW_TRACKING_USERNAME"] == "pipeline"
        (password,) = [e for e in container["env"] if e["name"] == "MLFLOW_TRACKING_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"] == {
            "name": DEFAULT_CLUSTER.mlflow_auth_secret,
            "key": "pipeline-password",
        }


def test_a_failed_gate_run_as_rendered_exits_2_and_is_not_retried(
    retrain: dict[str, Any], tmp_path: Path
) -> None:
    """The validate container, rendered with local values, refuses bad data with exit 2: final, not retried."""
    bad = tmp_path / "bad.csv"
    bad.write_text("review,stars\ngreat film,5\nawful,1\n")
    values = {**SAMPLE_PARAMETERS, "dataset_uri": str(bad), "artifacts_root": str(tmp_path / "runs")}
    values["label_map"] = (
        ""  # offline: the sample's gs:// label map cannot be read (labels= declares the classes)
    )
    template = container_templates(retrain)["validate"]
    container = template["container"]
    command = [sys.executable, *container["command"][1:], *(substitute(a, values) for a in container["args"])]
    env = {
        **{e["name"]: substitute(e["value"], values) for e in container["env"] if "value" in e},
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "HF_HOME": str(tmp_path / "hf"),
        "SENTIMENTOPS_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO_ROOT),
    }
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "validation gate failed" in proc.stderr and "missing required column(s) label, text" in proc.stderr
    assert not _retried(template["retryStrategy"]["expression"], str(proc.returncode))
    out = tmp_path / "runs" / SAMPLE_UID / "validated"
    assert (out / "validation.json").is_file() and not (out / "dataset.parquet").exists()


def test_cluster_config_matches_the_helm_chart_and_terraform() -> None:
    """Names the templates rely on exist under the same spelling where the cluster is defined."""
    values_file = REPO_ROOT / "helm" / "sentimentops" / "values.yaml"
    variables_file = REPO_ROOT / "infra" / "terraform" / "variables.tf"
    values = yaml.safe_load(values_file.read_text())
    # DEFAULT_CLUSTER is prod: compare with the chart as values-prod.yaml configures it.
    prod = yaml.safe_load((values_file.parent / "values-prod.yaml").read_text())
    values["gcp"] = prod["gcp"]
    values["mlflow"].update(prod["mlflow"])
    values["drift"].update(prod["drift"])
    cfg = DEFAULT_CLUSTER
    assert values["serviceAccounts"]["training"]["name"] == cfg.service_account
    assert values["securityContext"] == {"runAsUser": cfg.run_as_user, "runAsGroup": cfg.run_as_group}
    assert values["gcp"]["projectId"] == cfg.project and values["gcp"]["region"] == cfg.region
    assert cfg.image.startswith(values["mlflow"]["image"]["repository"] + ":")  # the same train image

    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [s for v in node.values() for s in strings(v)]
        if isinstance(node, list):
            return [s for v in node for s in strings(v)]
        return [node] if isinstance(node, str) else []

    gs_values = [v for v in strings(values) if v.startswith("gs://")]
    assert any(v.startswith(f"gs://{cfg.artifacts_bucket}/") for v in gs_values), gs_values
    variables = variables_file.read_text()

    def default(name: str) -> str:
        match = re.search(rf'variable "{name}" {{.*?default\s*=\s*"([^"]+)"', variables, re.S)
        assert match, f"no default for {name} in {variables_file}"
        return match.group(1)

    assert default("gpu_accelerator_type") == cfg.gpu_pool.accelerator
    assert default("k8s_namespace") == cfg.namespace
    assert default("name_prefix") == cfg.name_prefix


def test_one_retraining_at_a_time_whatever_the_trigger(retrain: dict[str, Any], cron: dict[str, Any]) -> None:
    assert retrain["spec"]["synchronization"] == {"mutexes": [{"name": "sentiment-retrain"}]}
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
