"""Where and how the pipeline runs on GKE: image, identity, storage, per-step resources.

Everything here is cluster-only (the local runner ignores it). The names match the Helm chart
(``helm/sentimentops/values.yaml``: project, image, ServiceAccount, UID/GID) and the MLflow Service it creates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.topology import ENVIRONMENTS, PLATFORM_NAMESPACE, Environment
from workflows.spec import STEPS


@dataclass(frozen=True)
class StepResources:
    """Requests/limits and a time limit for one step's pod (Kubernetes quantities)."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    # Size of the writable emptyDir mounted at /tmp (the root filesystem is read-only).
    tmp_size: str = "10Gi"
    # Per-attempt deadline; the workflow as a whole has its own ``active_deadline_seconds``.
    deadline_seconds: int = 3600
    retry_limit: int = 2
    gpus: int = 0


# What infra/terraform's gpu_accelerator_type accepts.
GPU_ACCELERATORS = (
    "nvidia-l4",
    "nvidia-tesla-t4",
    "nvidia-tesla-a100",
    "nvidia-a100-80gb",
    "nvidia-h100-80gb",
)


@dataclass(frozen=True)
class GpuPool:
    """The GKE GPU node pool the ``gpu=True`` steps are scheduled on (infra/terraform gpu_accelerator_type)."""

    accelerator: str = "nvidia-l4"
    # GKE taints GPU nodes with nvidia.com/gpu=present:NoSchedule; spot pools may carry the spot taint.
    tolerate_spot: bool = True


# Per step of workflows.spec.STEPS (a test checks every step has one).
STEP_RESOURCES: dict[str, StepResources] = {
    "validate": StepResources("1", "2", "3Gi", "6Gi", deadline_seconds=1800),
    "train-baseline": StepResources("2", "4", "4Gi", "8Gi", deadline_seconds=1800),
    # L4 node (g2-standard-8: 8 vCPU, 32 GB): leave room for the GKE system pods and the Argo executor.
    "finetune": StepResources(
        "4", "7", "16Gi", "24Gi", tmp_size="40Gi", deadline_seconds=4 * 3600, retry_limit=3, gpus=1
    ),
    # CPU steps fit one node of the smallest CPU pool (staging e2-standard-4: ~3.5 CPU, ~12 GiB left to
    # pods after GKE's reservations and DaemonSets; tests/platform checks every request against
    # infra.topology's node pools).
    # blend fetches both models and stages the ensemble (a copy of both) before its upload: ~1.5 GB of /tmp
    # for DistilBERT with its graphs, within the default.
    "blend": StepResources("3", "4", "8Gi", "12Gi", deadline_seconds=3600),
    "evaluate": StepResources("3", "4", "8Gi", "12Gi", deadline_seconds=3600),
    "register": StepResources("500m", "1", "1Gi", "2Gi", deadline_seconds=900),
    # batch-score fans out: one plan pod cuts the input into shards (and pins the model), one pod per shard
    # scores it, one merge pod streams the parts into the output object (no local staging: small /tmp).
    "batch-score-plan": StepResources("1", "2", "4Gi", "6Gi", tmp_size="10Gi", deadline_seconds=2 * 3600),
    "batch-score": StepResources("3", "4", "8Gi", "12Gi", tmp_size="20Gi", deadline_seconds=4 * 3600),
    "batch-score-merge": StepResources("1", "2", "4Gi", "6Gi", tmp_size="2Gi", deadline_seconds=2 * 3600),
}


# The share of the CPU pool's ceiling that one batch-score run may fill: predictors, MLflow, the drift job
# and a retraining's CPU steps share the pool.
BATCH_SCORE_POOL_SHARE = 0.5


def cpu_millicores(quantity: str) -> int:
    """A Kubernetes CPU quantity (``"3"``, ``"500m"``) in millicores."""
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def batch_score_parallelism(env: Environment) -> int:
    """How many score-shard pods may run at once: those that fit on the CPU pool at its autoscaling ceiling
    (each node's room for pods, over the shard pod's CPU request), times ``BATCH_SCORE_POOL_SHARE``."""
    per_node = env.cpu_pool.room()[0] // cpu_millicores(STEP_RESOURCES["batch-score"].cpu_request)
    return max(1, int(per_node * env.cpu_pool.max_nodes * BATCH_SCORE_POOL_SHARE))


@dataclass(frozen=True)
class ClusterConfig:
    """Deployment settings of the generated manifests (``for_environment``: one of infra.topology's).

    Names follow infra/terraform: buckets ``<project>-<purpose>``, the Artifact Registry repository
    ``<region>-docker.pkg.dev/<project>/<name_prefix>``, ServiceAccounts ``<name_prefix>-<workload>``.
    """

    project: str = "sentimentops-prod"
    region: str = "europe-west4"
    name_prefix: str = "sentimentops"
    namespace: str = PLATFORM_NAMESPACE
    environment: str = "prod"
    image_tag: str = "0.1.0"
    # The curated training data the scheduled retraining reads, relative to the data bucket.
    training_dataset_path: str = "rotten_tomatoes/rotten_tomatoes.csv"
    run_as_user: int = 10001
    run_as_group: int = 10001
    gpu_pool: GpuPool = field(default_factory=GpuPool)
    # Whole-workflow limits.
    retrain_deadline_seconds: int = 8 * 3600
    # 100 M rows through the fp32 graph on prod's pool take ~8.5 h of scoring (docs/benchmarks.md, batch scoring).
    batch_score_deadline_seconds: int = 24 * 3600
    # Shard pods running at once (a DAG's parallelism is a number, not a parameter); for_environment sizes
    # it to the CPU pool (see batch_score_parallelism).
    batch_score_max_parallel_shards: int = 1
    ttl_after_success_seconds: int = 24 * 3600
    ttl_after_failure_seconds: int = 7 * 24 * 3600
    # Scheduled retraining: Mondays 03:00 UTC.
    cron_schedule: str = "0 3 * * 1"
    cron_timezone: str = "Etc/UTC"
    # MLflow basic-auth identities (helm/sentimentops values mlflow.auth.users / secretName).
    mlflow_auth_secret: str = "sentimentops-mlflow-auth"
    mlflow_users: dict[str, str] = field(
        default_factory=lambda: {"pipeline": "pipeline", "rollout": "rollout", "reader": "reader"}
    )
    # Further parameter defaults to bake in (``python -m workflows.generate --param name=value``).
    extra_parameter_defaults: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_environment(cls, env: Environment) -> ClusterConfig:
        """The generated manifests' settings for one environment of infra.topology."""
        if env.gpu_pool.gpu not in GPU_ACCELERATORS:
            raise ValueError(f"{env.name}: unknown GPU accelerator {env.gpu_pool.gpu!r}")
        return cls(
            project=env.project,
            region=env.region,
            environment=env.name,
            gpu_pool=GpuPool(accelerator=env.gpu_pool.gpu),
            batch_score_max_parallel_shards=batch_score_parallelism(env),
        )

    @property
    def topology(self) -> Environment:
        return ENVIRONMENTS[self.environment]

    @property
    def image(self) -> str:
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.name_prefix}/train:{self.image_tag}"

    @property
    def service_account(self) -> str:
        """Kubernetes ServiceAccount bound to the training Google SA through Workload Identity (created by
        the Helm chart with the Argo executor's RBAC; read on the data bucket, read/write on artifacts)."""
        return f"{self.name_prefix}-training"

    @property
    def tracking_uri(self) -> str:
        """The Helm chart's MLflow Service (release ``<name_prefix>`` in the namespace)."""
        return f"http://{self.name_prefix}-mlflow.{self.namespace}.svc.cluster.local:5000"

    @property
    def artifacts_bucket(self) -> str:
        return f"{self.project}-artifacts"

    @property
    def data_bucket(self) -> str:
        return f"{self.project}-data"

    @property
    def training_dataset_uri(self) -> str:
        return f"gs://{self.data_bucket}/{self.training_dataset_path}"

    @property
    def runs_root(self) -> str:
        """Prefix of every run's outputs; each Argo run writes under ``<runs_root>/<workflow uid>``."""
        return f"gs://{self.artifacts_bucket}/runs"

    def parameter_overrides(self) -> dict[str, str]:
        """Cluster defaults that differ from ``workflows.spec`` (a test checks each name is a parameter)."""
        return {
            "artifacts_root": self.runs_root,
            # The cluster never reaches the model hub: the base checkpoint is mirrored into the models
            # bucket once (docs/operations.md, "Mirror the base checkpoint").
            "base_model": self.topology.base_model_uri,
            # Where the drift CronJob (helm/sentimentops drift.referenceUri) reads each version's reference.
            "drift_reference_root": self.topology.drift_reference_uri,
            # Mixed precision on the GPU pool (the finetune component records the precision it used).
            "precision": "fp16",
            **dict(self.extra_parameter_defaults),
        }


DEFAULT_CLUSTER = ClusterConfig.for_environment(ENVIRONMENTS["prod"])
CLUSTERS = {name: ClusterConfig.for_environment(env) for name, env in ENVIRONMENTS.items()}


def missing_step_resources() -> list[str]:
    """Steps of the spec without a resources entry (must be empty)."""
    return [s.name for s in STEPS if s.name not in STEP_RESOURCES]
