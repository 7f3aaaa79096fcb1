"""Build the Argo objects (with hera) from ``workflows.spec``: the one pipeline definition, a second runner.

- ``sentiment-retrain`` (WorkflowTemplate): a DAG of ``spec.STEPS``, one container template per step, the
  arguments rendered from the spec's templates with ``{param}`` -> ``{{workflow.parameters.param}}``.
- ``sentiment-retrain-cron`` (CronWorkflow): runs ``sentiment-retrain`` on a schedule (``workflowTemplateRef``).
- ``batch-score`` (WorkflowTemplate): scores a dataset URI with the ``champion`` model, fanned out over
  shards: ``plan`` (cut the input, pin the model) -> ``score-shard`` x N in parallel -> ``merge``.

Every run writes its outputs under ``<artifacts_root>/<workflow uid>`` on GCS: the steps hand each other gs://
URIs, never Argo artifacts. Retries cover transient failures (spot preemption, a lost node, a crash) but
never a gate's refusal (exit code 2): the retry ``expression`` excludes the step's ``gate_exit_codes``.
"""

from __future__ import annotations

import string
from typing import Any

from hera.workflows import (
    DAG,
    Container,
    CronWorkflow,
    Env,
    Parameter,
    Resources,
    RetryPolicy,
    RetryStrategy,
    SecretEnv,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as hera_models

from workflows.cluster import DEFAULT_CLUSTER, STEP_RESOURCES, ClusterConfig, StepResources
from workflows.spec import PARAMETERS, STEPS, Step, topological_order

RETRAIN_TEMPLATE = "sentiment-retrain"
RETRAIN_CRON = "sentiment-retrain-cron"
BATCH_SCORE_TEMPLATE = "batch-score"
PART_OF = "sentimentops"

# Parameters whose values Argo itself checks at submission (anything else is rejected before a pod starts).
PARAMETER_ENUMS: dict[str, tuple[str, ...]] = {
    "precision": ("auto", "fp16", "fp32"),
    "smoke": ("true", "false"),
    "kaggle_label": ("review_type", "review_score"),
    "gate_metric": ("auto", "accuracy", "f1", "precision", "recall", "macro_f1", "weighted_f1"),
    "class_weight": ("none", "balanced"),
}
# Parameters with no default in the cluster: a submission without them is refused by Argo
# ("spec.arguments.<name>.value is required").
REQUIRED_PARAMETERS: tuple[str, ...] = ("dataset_uri",)
# Environment every step gets, as templates over the parameters (GIT_COMMIT is read by components).
# The registry name is the task's: evaluate finds its champion there and register promotes into it.
PARAMETER_ENV: dict[str, str] = {
    "GIT_COMMIT": "{git_revision}",
    "SENTIMENTOPS_REGISTERED_MODEL": "{registered_model}",
}

BATCH_SCORE_PARAMETERS: tuple[tuple[str, str | None, str], ...] = (
    ("dataset_uri", None, "CSV/parquet/JSON-lines file (gs:// URI) with a text column to score"),
    ("model_uri", "models:/sentiment@champion", "models:/<name>@<alias>, models:/<name>/<version> or a dir"),
    (
        "output_uri",
        "",
        "where the predictions parquet goes (empty: <input stem>.predictions.parquet beside it)",
    ),
    ("text_column", "text", "column holding the texts"),
    ("batch_size", "256", "texts per forward pass"),
    ("shard_rows", "1000000", "rows per shard: one score-shard pod each (100 M rows -> 100 shards)"),
    (
        "work_uri",
        "",
        "the shards' folder (empty: <output stem>.shards beside the output); resubmitting resumes there",
    ),
)
# Where the plan pod writes the shard indices that the fan-out iterates (Argo reads it as an output).
SHARD_LIST_PATH = "/tmp/outputs/shards.json"


def workflow_parameter(name: str) -> str:
    """The Argo reference to a workflow parameter."""
    return "{{workflow.parameters." + name + "}}"


def argo_value(template: str, parameter_names: set[str] | None = None) -> str:
    """Render one spec template (``"{artifacts_root}/validated"``) as an Argo string.

    ``{artifacts_root}`` becomes ``{{workflow.parameters.artifacts_root}}/{{workflow.uid}}`` so that every run
    (scheduled, drift-triggered or manual) gets its own folder without the submitter computing one.
    """
    names = parameter_names if parameter_names is not None else {p.name for p in PARAMETERS}
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ValueError(f"template {template!r} uses unknown parameter(s) {unknown}; known: {sorted(names)}")
    values = {name: workflow_parameter(name) for name in names}
    if "artifacts_root" in values:
        values["artifacts_root"] = workflow_parameter("artifacts_root") + "/{{workflow.uid}}"
    return template.format(**values)


def step_args(step: Step) -> list[str]:
    """The step's command-line arguments with Argo parameter references."""
    out: list[str] = []
    for flag, template in step.args:
        out += [flag, argo_value(template)]
    return out


def retry_expression(gate_exit_codes: tuple[int, ...]) -> str:
    """Retry unless the last attempt ended with a gate's exit code (compared as strings: a preempted pod has
    no exit code, ``-1``, and must still be retried)."""
    codes = ", ".join(f"'{code}'" for code in gate_exit_codes)
    return f"lastRetry.exitCode not in [{codes}]"


def _retry(resources: StepResources, gate_exit_codes: tuple[int, ...]) -> RetryStrategy:
    return RetryStrategy(
        limit=resources.retry_limit,
        retry_policy=RetryPolicy.always,
        expression=retry_expression(gate_exit_codes),
        backoff=hera_models.Backoff(duration="1m", factor=2, max_duration="30m"),
        # Do not retry on the node that was just preempted or lost.
        affinity=hera_models.RetryAffinity(node_anti_affinity=hera_models.RetryNodeAntiAffinity()),
    )


def _container_security_context(cfg: ClusterConfig) -> hera_models.SecurityContext:
    return hera_models.SecurityContext(
        run_as_non_root=True,
        run_as_user=cfg.run_as_user,
        run_as_group=cfg.run_as_group,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=hera_models.Capabilities(drop=["ALL"]),
        seccomp_profile=hera_models.SeccompProfile(type="RuntimeDefault"),
    )


def _pod_security_context(cfg: ClusterConfig) -> hera_models.PodSecurityContext:
    return hera_models.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=cfg.run_as_user,
        run_as_group=cfg.run_as_group,
        fs_group=cfg.run_as_group,
        seccomp_profile=hera_models.SeccompProfile(type="RuntimeDefault"),
    )


def _env(
    cfg: ClusterConfig, extra: dict[str, str] | None = None, mlflow_role: str = "pipeline"
) -> list[Env | SecretEnv]:
    """Environment of every step: tracking (as the MLflow identity ``mlflow_role``), lineage, and caches
    on the writable /tmp."""
    values = {
        "SENTIMENTOPS_TRACKING_URI": cfg.tracking_uri,
        "SENTIMENTOPS_PIPELINE_ID": "{{workflow.name}}",
        "HOME": "/tmp",
        "HF_HOME": "/tmp/huggingface",
        "XDG_CACHE_HOME": "/tmp/.cache",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # No hub at run time (the training NetworkPolicy blocks the internet): fail fast, never hang.
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(extra or {}),
    }
    plain: list[Env | SecretEnv] = [Env(name=k, value=v) for k, v in values.items()]
    # MLflow's basic-auth identity (helm/sentimentops mlflow.auth): username in plain text, password from
    # the chart's Secret, never in the manifest.
    return plain + [
        Env(name="MLFLOW_TRACKING_USERNAME", value=cfg.mlflow_users[mlflow_role]),
        SecretEnv(
            name="MLFLOW_TRACKING_PASSWORD",
            secret_name=cfg.mlflow_auth_secret,
            secret_key=f"{mlflow_role}-password",
        ),
    ]


def _volumes(resources: StepResources) -> tuple[list[hera_models.Volume], list[hera_models.VolumeMount]]:
    volumes = [
        hera_models.Volume(
            name="tmp", empty_dir=hera_models.EmptyDirVolumeSource(size_limit=resources.tmp_size)
        )
    ]
    mounts = [hera_models.VolumeMount(name="tmp", mount_path="/tmp")]
    if resources.gpus:
        # PyTorch data loaders and NCCL use shared memory; the default /dev/shm is 64 MiB.
        volumes.append(
            hera_models.Volume(
                name="dshm", empty_dir=hera_models.EmptyDirVolumeSource(medium="Memory", size_limit="8Gi")
            )
        )
        mounts.append(hera_models.VolumeMount(name="dshm", mount_path="/dev/shm"))
    return volumes, mounts


def _gpu_scheduling(cfg: ClusterConfig) -> dict[str, Any]:
    """Node selector and tolerations for the GPU pool, set on the template itself: workflow-level
    tolerations are ignored when a Workflow runs this template through ``workflowTemplateRef``."""
    tolerations = [hera_models.Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
    if cfg.gpu_pool.tolerate_spot:
        tolerations.append(
            hera_models.Toleration(
                key="cloud.google.com/gke-spot", operator="Equal", value="true", effect="NoSchedule"
            )
        )
    return {
        "node_selector": {"cloud.google.com/gke-accelerator": cfg.gpu_pool.accelerator},
        "tolerations": tolerations,
    }


def _command(module: str, held_exit_codes: tuple[int, ...]) -> list[str]:
    """``python -m <module> <args>``; with held exit codes, wrapped so that they end the step with 0. The
    arguments stay arguments ("$@"), never spliced into the shell text."""
    if not held_exit_codes:
        return ["python", "-m", module]
    codes = " ".join(str(c) for c in held_exit_codes)
    script = (
        f'python -m {module} "$@"; code=$?; '
        f'for held in {codes}; do if [ "$code" -eq "$held" ]; then '
        'echo "held (exit $code): nothing promoted; the run ends here"; exit 0; fi; done; exit "$code"'
    )
    return ["sh", "-c", script, module]


def component_container(
    name: str,
    module: str,
    args: list[str],
    resources: StepResources,
    cfg: ClusterConfig,
    gate_exit_codes: tuple[int, ...] = (2,),
    extra_env: dict[str, str] | None = None,
    gpu: bool = False,
    mlflow_role: str = "pipeline",
    held_exit_codes: tuple[int, ...] = (),
    inputs: list[Parameter] | None = None,
    outputs: list[Parameter] | None = None,
) -> Container:
    """One component CLI as a hardened container template. ``held_exit_codes`` end the step successfully
    (a gate that could not decide is an outcome, not a failure Argo should retry or alert on)."""
    if gpu != bool(resources.gpus):
        raise ValueError(f"step {name}: gpu={gpu} in the spec but {resources.gpus} GPU(s) in STEP_RESOURCES")
    volumes, mounts = _volumes(resources)
    scheduling = _gpu_scheduling(cfg) if gpu else {}
    return Container(
        name=name,
        image=cfg.image,
        image_pull_policy="IfNotPresent",
        command=_command(module, held_exit_codes),
        args=args,
        env=_env(cfg, extra_env, mlflow_role),
        resources=Resources(
            cpu_request=resources.cpu_request,
            cpu_limit=resources.cpu_limit,
            memory_request=resources.memory_request,
            memory_limit=resources.memory_limit,
            gpus=resources.gpus or None,
        ),
        security_context=_container_security_context(cfg),
        volumes=volumes,
        volume_mounts=mounts,
        retry_strategy=_retry(resources, gate_exit_codes),
        active_deadline_seconds=resources.deadline_seconds,
        labels={"sentimentops/step": name},
        inputs=inputs,
        outputs=outputs,
        **scheduling,
    )


def _metadata_labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "workflows.generate",
    }


def _workflow_common(cfg: ClusterConfig, deadline: int, component: str) -> dict[str, Any]:
    return {
        # Pod labels the namespace's NetworkPolicies select on (egress to MLflow, GCS, the hub).
        "pod_metadata": hera_models.Metadata(
            labels={"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/component": component}
        ),
        "namespace": cfg.namespace,
        "service_account_name": cfg.service_account,
        "security_context": _pod_security_context(cfg),
        "active_deadline_seconds": deadline,
        # Keep failed pods for their logs; the TTL removes the whole workflow later.
        "pod_gc": hera_models.PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        "ttl_strategy": hera_models.TTLStrategy(
            seconds_after_success=cfg.ttl_after_success_seconds,
            seconds_after_failure=cfg.ttl_after_failure_seconds,
        ),
    }


def retrain_parameters(cfg: ClusterConfig = DEFAULT_CLUSTER) -> list[hera_models.Parameter]:
    """The WorkflowTemplate's parameters: exactly ``spec.PARAMETERS`` with the cluster's defaults."""
    overrides = cfg.parameter_overrides()
    unknown = sorted(set(overrides) - {p.name for p in PARAMETERS})
    if unknown:
        raise ValueError(f"cluster overrides name unknown parameter(s) {unknown}")
    out = []
    for p in PARAMETERS:
        description = p.description
        if p.name == "artifacts_root":
            description += "; each run writes under <artifacts_root>/<workflow uid>"
        value = None if p.name in REQUIRED_PARAMETERS else overrides.get(p.name, p.default)
        out.append(
            hera_models.Parameter(
                name=p.name,
                value=value,
                description=description,
                enum=list(PARAMETER_ENUMS[p.name]) if p.name in PARAMETER_ENUMS else None,
            )
        )
    return out


def build_retrain_template(cfg: ClusterConfig = DEFAULT_CLUSTER) -> WorkflowTemplate:
    """``sentiment-retrain``: validate -> (train-baseline || finetune) -> evaluate -> register."""
    env = {name: argo_value(template) for name, template in PARAMETER_ENV.items()}
    with WorkflowTemplate(
        name=RETRAIN_TEMPLATE,
        labels=_metadata_labels(RETRAIN_TEMPLATE),
        annotations={
            "workflows.argoproj.io/description": (
                "Retrain the sentiment classifier: validate -> (train-baseline || finetune) -> evaluate -> "
                "register. Generated from workflows/spec.py by `python -m workflows.generate`; do not edit."
            ),
        },
        entrypoint="retrain",
        arguments=retrain_parameters(cfg),
        # One retraining at a time, whatever submitted it (cron, drift sensor, a person): runs queue
        # instead of racing for the GPU pool and for the registry's aliases.
        synchronization=hera_models.Synchronization(mutexes=[hera_models.Mutex(name=RETRAIN_TEMPLATE)]),
        **_workflow_common(cfg, cfg.retrain_deadline_seconds, "training"),
    ) as template:
        containers = {
            step.name: component_container(
                step.name,
                step.module,
                step_args(step),
                STEP_RESOURCES[step.name],
                cfg,
                gate_exit_codes=step.gate_exit_codes,
                extra_env=env,
                gpu=step.gpu,
                held_exit_codes=step.held_exit_codes,
            )
            for step in STEPS
        }
        with DAG(name="retrain"):
            tasks = {}
            for step in topological_order():
                tasks[step.name] = Task(
                    name=step.name,
                    template=containers[step.name],
                    dependencies=list(step.depends) or None,
                )
    return template


def build_retrain_cron(cfg: ClusterConfig = DEFAULT_CLUSTER) -> CronWorkflow:
    """Scheduled retraining: submits ``sentiment-retrain`` with the curated dataset; never two at once."""
    return CronWorkflow(
        name=RETRAIN_CRON,
        namespace=cfg.namespace,
        labels=_metadata_labels(RETRAIN_CRON),
        schedules=[cfg.cron_schedule],
        timezone=cfg.cron_timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=5,
        workflow_template_ref=hera_models.WorkflowTemplateRef(name=RETRAIN_TEMPLATE),
        arguments=[Parameter(name="dataset_uri", value=cfg.training_dataset_uri)],
        workflow_metadata=hera_models.WorkflowMetadata(labels={"sentimentops/trigger": "schedule"}),
    )


def build_batch_score_template(cfg: ClusterConfig = DEFAULT_CLUSTER) -> WorkflowTemplate:
    """``batch-score``: predictions for a dataset URI from the champion model, written beside the input.

    A DAG over ``components.batch_score``'s stages: ``plan`` cuts the input into shards and pins the model
    (an alias is resolved once), ``score-shard`` runs once per shard (``withParam`` over the plan's shard
    list, at most ``cfg.batch_score_max_parallel_shards`` at a time), ``merge`` writes the one output. A
    shard already scored by the pinned model is skipped, so resubmitting after a failure resumes."""
    # Every parameter is the component flag of the same name (tests parse them with its real CLI).
    names = {name for name, _, _ in BATCH_SCORE_PARAMETERS}
    args: list[str] = []
    for name, _, _ in BATCH_SCORE_PARAMETERS:
        args += ["--" + name.replace("_", "-"), argo_value("{" + name + "}", names)]
    with WorkflowTemplate(
        name=BATCH_SCORE_TEMPLATE,
        labels=_metadata_labels(BATCH_SCORE_TEMPLATE),
        annotations={
            "workflows.argoproj.io/description": (
                "Score a dataset with the champion model, fanned out over shards (plan -> score-shard x N "
                "-> merge); predictions parquet beside the input. Generated by `python -m workflows.generate`; "
                "do not edit."
            ),
        },
        entrypoint="batch-score",
        arguments=[
            hera_models.Parameter(name=name, value=default, description=description)
            for name, default, description in BATCH_SCORE_PARAMETERS
        ],
        **_workflow_common(cfg, cfg.batch_score_deadline_seconds, "batch-score"),
    ) as template:
        plan = component_container(
            "batch-score-plan",
            "components.batch_score",
            [*args, "--stage", "plan", "--shard-list-path", SHARD_LIST_PATH],
            STEP_RESOURCES["batch-score-plan"],
            cfg,
            mlflow_role="reader",
            outputs=[Parameter(name="shards", value_from=hera_models.ValueFrom(path=SHARD_LIST_PATH))],
        )
        score_shard = component_container(
            "batch-score-shard",
            "components.batch_score",
            [*args, "--stage", "score-shard", "--shard-index", "{{inputs.parameters.shard_index}}"],
            STEP_RESOURCES["batch-score"],
            cfg,
            mlflow_role="reader",
            inputs=[Parameter(name="shard_index")],
        )
        merge = component_container(
            "batch-score-merge",
            "components.batch_score",
            [*args, "--stage", "merge"],
            STEP_RESOURCES["batch-score-merge"],
            cfg,
            mlflow_role="reader",
        )
        with DAG(name="batch-score", parallelism=cfg.batch_score_max_parallel_shards):
            planned = Task(name="plan", template=plan)
            scored = Task(
                name="score-shard",
                template=score_shard,
                with_param=f"{{{{tasks.{planned.name}.outputs.parameters.shards}}}}",
                arguments={"shard_index": "{{item}}"},
            )
            merged = Task(name="merge", template=merge)
            planned >> scored >> merged
    return template


def build_all(cfg: ClusterConfig = DEFAULT_CLUSTER) -> dict[str, dict[str, Any]]:
    """Every generated manifest as a plain dict, keyed by file name."""
    return {
        f"{RETRAIN_TEMPLATE}.yaml": build_retrain_template(cfg).to_dict(),
        f"{RETRAIN_CRON}.yaml": build_retrain_cron(cfg).to_dict(),
        f"{BATCH_SCORE_TEMPLATE}.yaml": build_batch_score_template(cfg).to_dict(),
    }
