"""Typed settings of each rollout subcommand (CLI flag > ``SENTIMENTOPS_*`` env var > default)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from components.common.settings import ComponentSettings, TrackingSettings

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d))+$")


class ManifestSettings(TrackingSettings):
    """Where the overlay is, and the registry it follows (propose / promote / rollback)."""

    overlay: str = Field("k8s/overlays/prod", description="overlay dir holding inferenceservice.yaml")


class ProposeSettings(ManifestSettings):
    """propose: the challenger becomes the canary."""

    canary_traffic_percent: int = Field(10, ge=1, le=99, description="share of traffic the canary gets")
    storage_schemes: str = Field(
        "gs",
        description="URI schemes a rolled-out model may come from (gs only: the bucket is access-controlled; "
        "https and the rest are refused)",
    )

    def scheme_list(self) -> tuple[str, ...]:
        """``storage_schemes`` as a tuple."""
        return tuple(s.strip() for s in self.storage_schemes.split(",") if s.strip())


class RollbackSettings(ManifestSettings):
    """rollback: why (recorded as the ``rollback_reason`` tag of the canary's model version)."""

    reason: str = Field("manual rollback", min_length=1, description="recorded on the model version")


class AnalysisSettings(ComponentSettings):
    """analyse: where Prometheus is, which series are canary/stable, and the thresholds."""

    prometheus_url: str = Field(
        "http://prometheus-operated.monitoring.svc:9090", description="Prometheus base URL"
    )
    prometheus_timeout_s: float = Field(10.0, gt=0, le=120, description="timeout of each query")
    canary_selector: str = Field(
        ...,
        min_length=1,
        description='required: PromQL label matchers of the canary, e.g. revision="sentiment-predictor-00002"',
    )
    stable_selector: str = Field(
        ..., min_length=1, description="required: PromQL label matchers of the stable model"
    )
    analysis_window: str = Field("10m", description="PromQL duration the analysis looks back over")
    min_requests: int = Field(100, ge=1, description="fewer canary (or stable) requests than this: hold")
    max_error_rate: float = Field(0.02, ge=0, le=1, description="canary 5xx rate limit")
    max_error_rate_increase: float = Field(0.01, ge=0, le=1, description="canary minus stable 5xx rate limit")
    max_p95_latency_s: float = Field(0.5, gt=0, description="canary p95 latency limit (seconds)")
    max_p99_latency_s: float = Field(1.0, gt=0, description="canary p99 latency limit (seconds)")
    max_latency_ratio: float = Field(
        1.5, ge=1, description="canary p95/p99 may be this many times stable's (plus the tolerance)"
    )
    latency_tolerance_s: float = Field(0.05, ge=0, description="absolute slack on the latency ratio check")
    max_positive_rate_shift: float = Field(0.15, ge=0, le=1, description="|canary - stable| positive rate")
    max_confidence_shift: float = Field(0.1, ge=0, le=1, description="|canary - stable| mean confidence")
    max_class_mix_shift: float = Field(
        0.15,
        ge=0,
        le=1,
        description="multi-class: |canary - stable| share of any class (binary: positive rate)",
    )
    decision_file: str | None = Field(None, description="also write the decision and evidence here (JSON)")

    @field_validator("analysis_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        if not DURATION.match(value):
            raise ValueError(f"not a PromQL duration: {value!r}")
        return value

    @field_validator("canary_selector", "stable_selector")
    @classmethod
    def _matchers(cls, value: str) -> str:
        value = value.strip().removeprefix("{").removesuffix("}").strip()
        if not value or "=" not in value:
            raise ValueError('expected PromQL label matchers like revision="sentiment-predictor-00002"')
        return value


# The canary-analysis WorkflowTemplate's steps (``python -m serving.rollout canary-*``): the workflow passes
# every parameter as a SENTIMENTOPS_* environment variable, never on a command line or in a script.
OUTPUT_DIR_DESCRIPTION = "folder the step writes its Argo output parameters to, one file each"
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class CanaryAnalysisSettings(AnalysisSettings):
    """canary-analyse: the analysis of two Knative revisions (selectors ``revision="<name>"``)."""

    canary_revision: str = Field(..., min_length=1, description="the canary's Knative revision")
    stable_revision: str = Field(..., min_length=1, description="the stable Knative revision")
    canary_selector: str = Field("", description='default: revision="<canary_revision>"')
    stable_selector: str = Field("", description='default: revision="<stable_revision>"')
    output_dir: str = Field("/tmp/outputs", description=OUTPUT_DIR_DESCRIPTION)

    @model_validator(mode="before")
    @classmethod
    def _revision_selectors(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for side in ("canary", "stable"):
                revision = data.get(f"{side}_revision")
                if revision and not data.get(f"{side}_selector"):
                    data[f"{side}_selector"] = f'revision="{revision}"'
        return data


class CanaryApplySettings(RollbackSettings):
    """canary-apply: promote or roll back on a checkout of the GitOps repository (``overlay`` in it)."""

    verdict: Literal["promote", "rollback"] = Field(..., description="promote or rollback")
    reason: str = Field("", description="the analysis' reason (rollback: recorded on the model version)")
    output_dir: str = Field("/tmp/outputs", description=OUTPUT_DIR_DESCRIPTION)


class CanaryPushSettings(ComponentSettings):
    """canary-push: commit the new overlay on a rollout branch and push it to the git host."""

    git_repo: str = Field(..., min_length=1, description="the GitOps repository to clone")
    git_base_branch: str = Field("main", min_length=1, description="branch the change starts from")
    environment: str = Field(..., description="the environment (names the branch)")
    overlay: str = Field(..., min_length=1, description="overlay dir in the repository")
    verdict: Literal["promote", "rollback"] = Field(..., description="promote or rollback")
    version: str = Field(..., min_length=1, description="the model version now served")
    reason: str = Field("", description="the analysis' reason (commit message body)")
    overlay_text: str = Field(..., min_length=1, description="the new inferenceservice.yaml")
    workflow_name: str = Field(..., description="the Argo workflow (names the branch)")
    push: bool = Field(True, description="push the branch (false: commit only, a dry run)")
    clone_dir: str = Field("/tmp/repo", description="where the repository is cloned (must not exist)")
    ssh_key: str | None = Field(
        None, description="private key file to install as ssh_key_copy with mode 0600 (ssh refuses others)"
    )
    ssh_key_copy: str = Field("/tmp/ssh/id", description="where GIT_SSH_COMMAND expects the key")
    git_timeout_s: float = Field(120, gt=0, description="timeout of each git clone / push")

    @field_validator("environment", "workflow_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"not a Kubernetes name: {value!r}")
        return value
