"""Settings of the drift job (``SENTIMENTOPS_*`` env vars or CLI flags, like every component)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from components.common.labels import DEFAULT_MAX_METRIC_CLASSES
from components.common.settings import ComponentSettings

NumMethod = Literal["psi", "ks", "wasserstein"]
NUM_METHODS = ("psi", "ks", "wasserstein")
CAT_METHODS = ("psi", "jensenshannon", "chisquare", "z")


def parse_mapping(text: str, name: str) -> dict[str, str]:
    """``"a=x,b=y"`` -> ``{"a": "x", "b": "y"}`` (empty string -> empty mapping)."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{name}: expected feature=value pairs, got {item!r}")
        out[key.strip()] = value.strip()
    return out


class DriftSettings(ComponentSettings):
    """Where the logs and the reference are, which window, which tests and thresholds, where to push."""

    log_root: str = Field("payload-logs", description="payload log sink (local path or gs://...)")
    model_name: str = Field("sentiment", description="model name: the first folder under the sink")
    model_version: str | None = Field(
        None, description="compare only this model version (default: the version that served most rows)"
    )
    window_end: str | None = Field(None, description="ISO-8601 end of the window (default: now, UTC)")
    window_hours: float = Field(24.0, gt=0, description="window length in hours")
    reference_uri: str = Field(
        "artifacts/validated",
        description="validated dataset dir (dataset.parquet), a parquet, or a CSV; may hold a probability column",
    )
    reference_split: str = Field("train", description="split used as reference (train|validation|test|all)")
    model_uri: str | None = Field(
        None,
        description="model for predictions on the reference (when it has no probability): models:/<name>@<alias> "
        "(checked against the registry's model_digest) or a model directory (needs --model-digest)",
    )
    model_digest: str | None = Field(
        None, description="the registry's model_digest a model directory must hash to exactly"
    )
    allow_unpinned_model: bool = Field(
        False, description="local use only: a model directory without --model-digest"
    )
    max_line_bytes: int = Field(
        64 * 1024, ge=1024, description="longer payload log lines are skipped and counted as malformed"
    )
    max_rows: int = Field(2_000_000, ge=1, description="payload rows read per run; beyond this, ignored")
    output_uri: str | None = Field(
        None, description="where report.html and summary.json go (default: <log_root>/<model>/drift/<end>)"
    )
    pushgateway_url: str | None = Field(None, description="Pushgateway base URL; unset = do not push")
    push_timeout_s: float = Field(5.0, gt=0, description="timeout of the push request")
    num_method: NumMethod = Field("psi", description="drift test for numeric features: psi, ks, wasserstein")
    cat_method: str = Field(
        "psi", description="drift test for the predicted label, i.e. the class mix (psi, jensenshannon, ...)"
    )
    class_mix_threshold: float | None = Field(
        None, gt=0, description="class-mix (predicted_label) drift threshold (default: the method's own)"
    )
    class_confidence_threshold: float = Field(
        0.1,
        gt=0,
        le=1,
        description="per-class confidence drift: Wasserstein distance of a class's confidence",
    )
    min_class_rows: int = Field(
        30, ge=1, description="per-class confidence is compared with this many rows a side"
    )
    max_metric_classes: int = Field(
        DEFAULT_MAX_METRIC_CLASSES,
        ge=1,
        le=200,
        description="classes (by id) pushed by name; the rest are pushed as 'other'",
    )
    feature_methods: str = Field(
        "", description="per-feature overrides, e.g. oov_rate=ks,confidence=wasserstein"
    )
    threshold: float | None = Field(None, description="numeric-feature threshold (default: the method's own)")
    feature_thresholds: str = Field("", description="per-feature thresholds, e.g. oov_rate=0.2")
    text_threshold: float | None = Field(
        None, description="text content drift ROC AUC threshold (default 0.55)"
    )
    drift_share: float = Field(0.5, gt=0, le=1, description="dataset drift when this share of features drift")
    min_rows: int = Field(200, ge=1, description="fewer current rows than this -> insufficient_data")
    max_text_rows: int = Field(5000, ge=100, description="rows sampled per side for the text content test")
    seed: int = 42

    @field_validator("cat_method")
    @classmethod
    def _cat_method(cls, value: str) -> str:
        if value not in CAT_METHODS:
            raise ValueError(f"must be one of {', '.join(CAT_METHODS)}")
        return value

    @field_validator("feature_methods", "feature_thresholds")
    @classmethod
    def _mapping(cls, value: str) -> str:
        parse_mapping(value, "mapping")
        return value

    def methods(self) -> dict[str, str]:
        return parse_mapping(self.feature_methods, "feature_methods")

    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in parse_mapping(self.feature_thresholds, "feature_thresholds").items()}
