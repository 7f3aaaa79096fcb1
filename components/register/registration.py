"""Register the challenger only when it beats the baseline and the champion by a margin on the same split,
with a significant paired lead (``components.register.gate``); too little evidence holds (exit 3).

Idempotent: a model is identified by its manifest digest, so a rerun finds the existing version instead
of creating a duplicate, and an alias already pointing at it is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from components.common import registry
from components.common.settings import ComponentError, GateFailed, GateHeld, TrackingSettings
from components.common.tracking import git_commit
from components.evaluate.evaluation import (
    EvaluationResult,
    ModelEvaluation,
    read_evaluation,
    read_predictions,
)
from components.evaluate.int8 import loss_tag
from components.register.gate import HOLD, REFUSE, GateDecision, GateMetric, GateTest, decide_paired
from components.register.reference import publish_reference

SMOKE_SUFFIX = "-smoke"


class RegisterSettings(TrackingSettings):
    """The promotion gate and registry target."""

    evaluation_dir: str = Field("artifacts/evaluation", description="output folder of evaluate")
    promotion_margin: float = Field(0.005, description="required lead over baseline and champion")
    gate_metric: GateMetric = Field(
        "auto",
        description="metric the gate compares: auto = accuracy for two classes, macro_f1 for more",
    )
    gate_test: GateTest = Field(
        "auto",
        description="paired significance test: auto (McNemar for accuracy, else paired bootstrap), mcnemar, "
        "bootstrap, none (no test: for tests only)",
    )
    gate_alpha: float = Field(0.05, gt=0, le=1, description="one-sided significance level of the lead")
    gate_min_samples: int = Field(
        500, ge=0, description="fewer evaluation rows than this: hold, never promote"
    )
    gate_bootstrap_samples: int = Field(2000, ge=100, description="resamples of the paired bootstrap")
    seed: int = Field(42, description="seed of the bootstrap")
    bootstrap_champion: bool = Field(True, description="the first registered version also becomes champion")
    validated_dir: str | None = Field(None, description="output folder of validate (the drift reference)")
    drift_reference_root: str | None = Field(
        None, description="publish the version's drift reference under <root>/<version>/ (unset: do not)"
    )


@dataclass
class RegistrationResult:
    """What changed in the registry (nothing, when ``created`` and ``aliases_moved`` are empty)."""

    model_name: str
    version: str
    created: bool
    aliases_moved: list[str]
    aliases: list[str]
    decision: GateDecision


def decide(evaluation: EvaluationResult, predictions: Any, settings: RegisterSettings) -> GateDecision:
    """Compare the challenger with the baseline and (if any) the champion on the same rows.

    A challenger that *is* the champion (same manifest digest: a rerun of the same training) is not compared
    with itself; it still has to beat the baseline, and registering it again changes nothing.
    """
    challenger = evaluation.models["challenger"]
    return decide_paired(
        {
            role: model.metrics
            for role, model in evaluation.models.items()
            if not (role == "champion" and model.digest == challenger.digest)
        },
        predictions,
        settings.gate_metric,
        settings.promotion_margin,
        test=settings.gate_test,
        alpha=settings.gate_alpha,
        min_samples=settings.gate_min_samples,
        bootstrap_samples=settings.gate_bootstrap_samples,
        seed=settings.seed,
    )


def lineage_tags(
    evaluation: EvaluationResult, candidate: ModelEvaluation, parent_run_id: str | None
) -> dict[str, str]:
    """Tags every registered version carries: code, data, runs, and test metrics."""
    tags = {
        "git_commit": git_commit(),
        "dataset_hash": evaluation.dataset_hash,
        "train_run_id": candidate.train_run_id or "",
        "parent_run_id": parent_run_id or "",
        registry.DIGEST_TAG: candidate.digest,
        "flavor": candidate.flavor,
        "eval_split": evaluation.split,
    }
    for name, value in candidate.metrics.items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            tags[f"metric_{name}"] = f"{value:.6f}" if isinstance(value, float) else str(value)
    # The predictor serves the int8 graph by default only when the validation loss recorded here is small.
    for split, change in (candidate.int8 or {}).items():
        tags[loss_tag(split)] = f"{change['loss_points']:.4f}"
    return tags


def _set_alias(mlflow_client: Any, name: str, alias: str, version: str) -> bool:
    current = registry.version_by_alias(mlflow_client, name, alias)
    if current is not None and str(current.version) == version:
        return False
    mlflow_client.set_registered_model_alias(name, alias, version)
    return True


def register(settings: RegisterSettings, register_run_id: str | None = None) -> RegistrationResult:
    """Apply the gate; on success register (or reuse) the version and point ``challenger`` at it."""
    if settings.drift_reference_root and not settings.validated_dir:
        raise ComponentError(
            "--drift-reference-root needs --validated-dir (the data the version was trained on)"
        )
    evaluation = read_evaluation(settings.evaluation_dir)
    if evaluation.smoke and not settings.registered_model.endswith(SMOKE_SUFFIX):
        raise ComponentError(
            f"the evaluation is on the smoke subset: refusing to register it as {settings.registered_model!r} "
            f"(smoke runs register as '<name>{SMOKE_SUFFIX}' in their own store)"
        )
    decision = decide(evaluation, read_predictions(settings.evaluation_dir, evaluation), settings)
    if decision.outcome == REFUSE:
        raise GateFailed("promotion gate failed: " + "; ".join(decision.reasons))
    if decision.outcome == HOLD:
        raise GateHeld("promotion gate held, nothing registered: " + "; ".join(decision.reasons))
    candidate = evaluation.models["challenger"]
    if not candidate.model_artifact_uri:
        raise GateFailed("challenger has no tracked model artifact (was it trained with --track false?)")
    mlflow_client = registry.write_client(settings)
    name = settings.registered_model
    if not mlflow_client.search_registered_models(f"name = '{name}'"):
        mlflow_client.create_registered_model(name, description="Rotten Tomatoes sentiment classifier")
    existing = registry.versions_with_digest(mlflow_client, name, candidate.digest)
    created = not existing
    if existing:
        version = str(existing[0].version)
    else:
        tags = lineage_tags(evaluation, candidate, settings.parent_run_id or register_run_id)
        version = str(
            mlflow_client.create_model_version(
                name, source=candidate.model_artifact_uri, run_id=candidate.train_run_id, tags=tags
            ).version
        )
    moved = [registry.CHALLENGER] if _set_alias(mlflow_client, name, registry.CHALLENGER, version) else []
    if (
        settings.bootstrap_champion
        and registry.version_by_alias(mlflow_client, name, registry.CHAMPION) is None
    ):
        _set_alias(mlflow_client, name, registry.CHAMPION, version)
        moved.append(registry.CHAMPION)
    aliases = [
        a
        for a in (registry.CHAMPION, registry.CHALLENGER)
        if (v := registry.version_by_alias(mlflow_client, name, a)) and str(v.version) == version
    ]
    if settings.drift_reference_root:
        publish_reference(
            settings.validated_dir,
            settings.drift_reference_root,
            version,
            candidate.model_artifact_uri,
            candidate.digest,
        )
    return RegistrationResult(name, version, created, moved, aliases, decision)
