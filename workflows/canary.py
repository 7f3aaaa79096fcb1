"""Build the ``canary-analysis`` WorkflowTemplate (``k8s/argo/canary-analysis.yaml``), like the retrain one.

After a rollout (docs/runbooks/canary.md):
  1. revisions:   read the InferenceService's canary (latestCreatedRevision) and stable
                  (latestRolledoutRevision) Knative revisions;
  2. analyse:     ``python -m serving.rollout canary-analyse`` against Prometheus; HOLD (exit 3) is retried
                  with backoff until the canary has served enough requests, errors (exit 1) fail the workflow;
  3. open-change: on PROMOTE or ROLLBACK, ``canary-apply`` runs promote / rollback on a checkout of the base
                  branch (they also move the registry alias / tag the reason), then ``canary-push`` commits
                  the new overlay on rollout/<env>/<verdict>-<workflow> and pushes it when ``push`` is "true"
                  (Git credentials: Secret sentimentops-gitops, keys ssh-privatekey and known_hosts).

Every container runs ``python -m serving.rollout <step>`` (``serving/rollout/workflow_steps.py``); workflow
parameters reach it only as ``SENTIMENTOPS_*`` environment variables, never in a command line or a script.
It runs in the platform namespace as ServiceAccount canary-analysis (k8s/argo/rbac.yaml);
workflows/manifests/<env>/kustomization.yaml patches the environment's parameters
(``workflows.generate.canary_parameters``).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import WorkflowTemplate
from hera.workflows import models as m

from workflows.argo import _pod_security_context, workflow_parameter
from workflows.cluster import DEFAULT_CLUSTER, ClusterConfig

CANARY_TEMPLATE = "canary-analysis"
SERVICE_ACCOUNT = "canary-analysis"
GITOPS_SECRET = "sentimentops-gitops"
OUTPUT_DIR = "/tmp/outputs"
ROLLOUT_MODULE = "serving.rollout"
# analyse's exit code for HOLD (serving.rollout.analysis.Verdict.HOLD): the only one retried.
HOLD_EXIT_CODE = 3
HOLD_RETRIES = 8
HOLD_BACKOFF = "5m"
# ssh refuses a key readable by others; the Secret volume's files are group-readable (fsGroup), so
# canary-push installs a 0600 copy where this command expects it.
# The user, group and seccomp profile are the pod's (the image's user, which ssh needs a passwd entry for).
CONTAINER_SECURITY = m.SecurityContext(
    allow_privilege_escalation=False,
    read_only_root_filesystem=True,
    capabilities=m.Capabilities(drop=["ALL"]),
)
GIT_SSH_COMMAND = (
    "ssh -i /tmp/ssh/id -o UserKnownHostsFile=/etc/gitops/known_hosts -o StrictHostKeyChecking=yes "
    "-o ConnectTimeout=20"
)


def parameters(cfg: ClusterConfig) -> list[m.Parameter]:
    """The template's parameters; ``workflows.generate.canary_parameters`` patches the per-environment ones."""
    return [
        m.Parameter(name="environment", value=cfg.environment, enum=["staging", "prod"]),
        m.Parameter(name="serving-namespace", value=cfg.topology.serving_namespace),
        m.Parameter(name="inferenceservice", value="sentiment"),
        m.Parameter(
            name="image",
            value=cfg.image,
            description="the sentimentops training image (serving.rollout, git and ssh)",
        ),
        m.Parameter(name="prometheus-url", value="http://prometheus-operated.monitoring.svc:9090"),
        m.Parameter(name="analysis-window", value="30m"),
        m.Parameter(name="min-requests", value="500"),
        m.Parameter(name="tracking-uri", value=cfg.tracking_uri),
        m.Parameter(name="git-repo", value="git@github.com:sentimentops/sentimentops.git"),
        m.Parameter(name="git-base-branch", value="main"),
        m.Parameter(
            name="push",
            value="true",
            enum=["true", "false"],
            description="push the change branch to the git host (false = dry run; the commit stays in the pod)",
        ),
    ]


def _env(values: dict[str, str]) -> list[m.EnvVar]:
    return [m.EnvVar(name=name, value=value) for name, value in values.items()]


def _step(
    name: str,
    command: str,
    env: dict[str, str],
    requests: tuple[str, str],
    memory_limit: str,
    outputs: tuple[str, ...] = (),
    extra_env: list[m.EnvVar] | None = None,
    mounts: list[m.VolumeMount] | None = None,
    volumes: list[m.Volume] | None = None,
    **template: Any,
) -> m.Template:
    """A template running ``python -m serving.rollout <command>`` with its parameters in ``env``; each
    output parameter is a file the step writes to OUTPUT_DIR."""
    return m.Template(
        name=name,
        container=m.Container(
            image=workflow_parameter("image"),
            command=["python", "-m", ROLLOUT_MODULE, command],
            env=_env({"HOME": "/tmp", **({"SENTIMENTOPS_OUTPUT_DIR": OUTPUT_DIR} if outputs else {}), **env})
            + (extra_env or []),
            resources=m.ResourceRequirements(
                requests={"cpu": requests[0], "memory": requests[1]}, limits={"memory": memory_limit}
            ),
            security_context=CONTAINER_SECURITY,
            volume_mounts=[m.VolumeMount(name="tmp", mount_path="/tmp"), *(mounts or [])],
        ),
        volumes=[m.Volume(name="tmp", empty_dir=m.EmptyDirVolumeSource()), *(volumes or [])],
        outputs=m.Outputs(
            parameters=[
                m.Parameter(name=out, value_from=m.ValueFrom(path=f"{OUTPUT_DIR}/{out}")) for out in outputs
            ]
        )
        if outputs
        else None,
        **template,
    )


def _inputs(*names: str, enums: dict[str, list[str]] | None = None) -> m.Inputs:
    return m.Inputs(parameters=[m.Parameter(name=n, enum=(enums or {}).get(n)) for n in names])


def _input(name: str) -> str:
    return "{{inputs.parameters." + name + "}}"


def _arguments(values: dict[str, str]) -> m.Arguments:
    return m.Arguments(parameters=[m.Parameter(name=k, value=v) for k, v in values.items()])


def _sequence(*steps: m.WorkflowStep) -> list[m.ParallelSteps]:
    """Steps run one after the other (each its own group)."""
    return [m.ParallelSteps([step]) for step in steps]


def _main_steps() -> m.Template:
    analysed = "{{steps.analyse.outputs.parameters.%s}}"
    revision = "{{steps.revisions.outputs.parameters.%s}}"
    return m.Template(
        name="main",
        steps=_sequence(
            m.WorkflowStep(name="revisions", template="revisions"),
            m.WorkflowStep(
                name="analyse",
                template="analyse",
                arguments=_arguments({"canary": revision % "canary", "stable": revision % "stable"}),
            ),
            m.WorkflowStep(
                name="open-change",
                template="open-change",
                when=f"'{analysed % 'verdict'}' != 'hold'",
                arguments=_arguments({"verdict": analysed % "verdict", "reason": analysed % "reason"}),
            ),
        ),
    )


def _revisions() -> m.Template:
    manifest = (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n"
        f"  name: {workflow_parameter('inferenceservice')}\n"
        f"  namespace: {workflow_parameter('serving-namespace')}\n"
    )
    return m.Template(
        name="revisions",
        resource=m.ResourceTemplate(action="get", manifest=manifest),
        outputs=m.Outputs(
            parameters=[
                m.Parameter(
                    name=name,
                    value_from=m.ValueFrom(json_path="{.status.components.predictor." + field + "}"),
                )
                for name, field in (
                    ("canary", "latestCreatedRevision"),
                    ("stable", "latestRolledoutRevision"),
                )
            ]
        ),
    )


def _analyse() -> m.Template:
    return _step(
        "analyse",
        "canary-analyse",
        {
            "SENTIMENTOPS_PROMETHEUS_URL": workflow_parameter("prometheus-url"),
            "SENTIMENTOPS_ANALYSIS_WINDOW": workflow_parameter("analysis-window"),
            "SENTIMENTOPS_MIN_REQUESTS": workflow_parameter("min-requests"),
            "SENTIMENTOPS_CANARY_REVISION": _input("canary"),
            "SENTIMENTOPS_STABLE_REVISION": _input("stable"),
        },
        ("100m", "256Mi"),
        "512Mi",
        outputs=("verdict", "reason"),
        inputs=_inputs("canary", "stable"),
        # Only HOLD (too few requests yet) is retried; ROLLBACK/PROMOTE are outputs, errors fail.
        retry_strategy=m.RetryStrategy(
            limit=str(HOLD_RETRIES),
            expression=f"asInt(lastRetry.exitCode) == {HOLD_EXIT_CODE}",
            backoff=m.Backoff(duration=HOLD_BACKOFF, factor="1"),
        ),
    )


def _open_change() -> m.Template:
    applied = "{{steps.apply.outputs.parameters.%s}}"
    change = {"verdict": _input("verdict"), "reason": _input("reason")}
    return m.Template(
        name="open-change",
        inputs=_inputs("verdict", "reason", enums={"verdict": ["promote", "rollback"]}),
        steps=_sequence(
            m.WorkflowStep(name="apply", template="apply", arguments=_arguments(change)),
            m.WorkflowStep(
                name="push",
                template="push",
                when=f"'{applied % 'changed'}' == 'true'",
                arguments=_arguments(
                    {**change, "overlay": applied % "overlay", "version": applied % "version"}
                ),
            ),
        ),
    )


def _overlay() -> str:
    return "k8s/overlays/" + workflow_parameter("environment")


def _apply(cfg: ClusterConfig) -> m.Template:
    """promote/rollback on a checkout of the base branch (Argo's git artifact): the new overlay file leaves
    as an output parameter, so this step needs no git."""
    repo = m.Artifact(
        name="repo",
        path="/work/repo",
        git=m.GitArtifact(
            repo=workflow_parameter("git-repo"),
            revision=workflow_parameter("git-base-branch"),
            depth=1,
            ssh_private_key_secret=m.SecretKeySelector(name=GITOPS_SECRET, key="ssh-privatekey"),
        ),
    )
    template = _step(
        "apply",
        "canary-apply",
        {
            "SENTIMENTOPS_TRACKING_URI": workflow_parameter("tracking-uri"),
            "SENTIMENTOPS_OVERLAY": _overlay(),
            "SENTIMENTOPS_VERDICT": _input("verdict"),
            "SENTIMENTOPS_REASON": _input("reason"),
            # MLflow's `rollout` identity: EDIT on the registered model only (helm/sentimentops mlflow.auth).
            "MLFLOW_TRACKING_USERNAME": cfg.mlflow_users["rollout"],
        },
        ("100m", "256Mi"),
        "512Mi",
        outputs=("changed", "overlay", "version"),
        extra_env=[
            m.EnvVar(
                name="MLFLOW_TRACKING_PASSWORD",
                value_from=m.EnvVarSource(
                    secret_key_ref=m.SecretKeySelector(name=cfg.mlflow_auth_secret, key="rollout-password")
                ),
            )
        ],
        inputs=m.Inputs(parameters=_inputs("verdict", "reason").parameters, artifacts=[repo]),
    )
    assert template.container is not None
    template.container.working_dir = "/work/repo"
    return template


def _push() -> m.Template:
    """Commit the new overlay on a branch and push it to the git host (push=false: commit only)."""
    return _step(
        "push",
        "canary-push",
        {
            "SENTIMENTOPS_ENVIRONMENT": workflow_parameter("environment"),
            "SENTIMENTOPS_OVERLAY": _overlay(),
            "SENTIMENTOPS_VERDICT": _input("verdict"),
            "SENTIMENTOPS_VERSION": _input("version"),
            "SENTIMENTOPS_REASON": _input("reason"),
            "SENTIMENTOPS_OVERLAY_TEXT": _input("overlay"),
            "SENTIMENTOPS_WORKFLOW_NAME": "{{workflow.name}}",
            "SENTIMENTOPS_GIT_REPO": workflow_parameter("git-repo"),
            "SENTIMENTOPS_GIT_BASE_BRANCH": workflow_parameter("git-base-branch"),
            "SENTIMENTOPS_PUSH": workflow_parameter("push"),
            "SENTIMENTOPS_SSH_KEY": "/etc/gitops/ssh-privatekey",
            "GIT_SSH_COMMAND": GIT_SSH_COMMAND,
        },
        ("50m", "128Mi"),
        "256Mi",
        inputs=_inputs("verdict", "reason", "overlay", "version"),
        mounts=[m.VolumeMount(name="gitops", mount_path="/etc/gitops", read_only=True)],
        volumes=[
            m.Volume(
                name="gitops", secret=m.SecretVolumeSource(secret_name=GITOPS_SECRET, default_mode=0o440)
            )
        ],
    )


def build_canary_template(cfg: ClusterConfig = DEFAULT_CLUSTER) -> WorkflowTemplate:
    """``canary-analysis``: revisions -> analyse -> (promote | rollback) -> push the GitOps change."""
    return WorkflowTemplate(
        name=CANARY_TEMPLATE,
        labels={
            "app.kubernetes.io/name": CANARY_TEMPLATE,
            "app.kubernetes.io/part-of": "sentimentops",
            "app.kubernetes.io/managed-by": "workflows.generate",
        },
        annotations={
            "workflows.argoproj.io/description": (
                "Canary analysis after a rollout: promote or roll back, and push the GitOps change "
                "(docs/runbooks/canary.md). Generated by `make regen` from workflows/canary.py; do not edit."
            ),
        },
        entrypoint="main",
        service_account_name=SERVICE_ACCOUNT,
        active_deadline_seconds=4 * 3600,
        ttl_strategy=m.TTLStrategy(seconds_after_completion=7 * 24 * 3600),
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        pod_metadata=m.Metadata(
            labels={
                "app.kubernetes.io/part-of": "sentimentops",
                "app.kubernetes.io/component": CANARY_TEMPLATE,
            }
        ),
        # The training image's user (Dockerfile.train): a passwd entry, which ssh needs.
        security_context=_pod_security_context(cfg),
        arguments=parameters(cfg),
        templates=[_main_steps(), _revisions(), _analyse(), _open_change(), _apply(cfg), _push()],
    )
