"""Serving settings: one pydantic class, overridable by ``SENTIMENTOPS_*`` env vars and CLI flags."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components.common.labels import DEFAULT_MAX_METRIC_CLASSES
from components.common.settings import ComponentSettings

# The engine choices, shared with batch-score (which scores through the same engine).
Runtime = Literal["auto", "torch", "onnx"]
Quantize = Literal["auto", "none", "dynamic_int8"]


class ServingSettings(ComponentSettings):
    """Everything the predictor reads at start-up (KServe's own flags are parsed separately)."""

    model_dir: str = Field(
        "/mnt/models",
        description="local dir, fsspec URI (gs://...) or MLflow ref models:/<name>@<alias>",
    )
    expected_model_digest: str | None = Field(
        None,
        description="the registry's model_digest of the model to serve (64 hex): the predictor refuses to "
        "start unless the model directory hashes to exactly this (rollout writes it into the overlay)",
    )
    allow_unpinned_model: bool = Field(
        False, description="local development only: serve a directory model without an expected digest"
    )
    model_version: str | None = Field(
        None, description="version reported in responses (default: registry version, else digest[:12])"
    )
    host: str = Field("127.0.0.1", description="REST bind address (the image sets 0.0.0.0)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="torch device; fp16 on cuda")
    runtime: Runtime = Field(
        "auto",
        description="transformer runtime: onnx (the ONNX graphs shipped in the model directory) on CPU, torch; "
        "auto = torch on CUDA or for a model without graphs, else onnx",
    )
    quantize: Quantize = Field(
        "auto",
        description="CPU int8 weights (onnx: the shipped per-channel int8 graph; torch: dynamic Linear layers); "
        "auto = int8 only when its recorded accuracy loss is at most --max-int8-accuracy-loss",
    )
    int8_accuracy_loss: float | None = Field(
        None,
        description="the int8 graph's validation accuracy loss in points, as evaluate recorded it in the registry "
        "(tag int8_accuracy_loss_validation; rollout writes it next to the digest; models:/ refs read the tag)",
    )
    max_int8_accuracy_loss: float = Field(
        0.5,
        ge=0,
        description="quantize auto serves int8 only when its recorded accuracy loss is at most this",
    )
    inference_threads: int = Field(0, ge=0, description="intra-op threads; 0 = from the cgroup CPU limit")
    call_cost_tokens: int = Field(
        48,
        ge=0,
        description="fixed cost of one model call in tokens: sub-batches split when padding costs more",
    )
    onnx_allow_spinning: bool = Field(False, description="ORT worker threads spin between batches")
    onnx_max_prob_diff: float = Field(
        1e-4, gt=0, description="fp32 ONNX vs torch: max probability difference on any probe text"
    )
    int8_max_prob_diff: float = Field(
        0.05, gt=0, description="int8 ONNX vs fp32 torch: max mean probability difference on the probe texts"
    )

    # Input contract
    max_text_chars: int = Field(2000, ge=1, description="longer texts are rejected with 400 (not truncated)")
    max_instances: int = Field(64, ge=1, description="max texts per request")
    max_body_bytes: int = Field(1 << 20, ge=1024, description="max request body size (413 above)")
    max_id_chars: int = Field(256, ge=8, description="max length of a V2 id / x-request-id (400 above)")
    max_header_bytes: int = Field(
        8192, ge=1024, description="max total size of a request's header names and values (431 above)"
    )
    max_headers: int = Field(64, ge=8, description="max number of request headers (431 above)")

    # Micro-batching
    max_batch_size: int = Field(32, ge=1, description="max texts per model call")
    max_batch_wait_ms: float = Field(2.0, ge=0, description="how long a batch waits to fill")
    max_queue: int = Field(1024, ge=1, description="queued texts before requests get 503")
    warmup_rounds: int = Field(
        1,
        ge=0,
        description="warm-up passes per batch size at load (after the probe check ran the graph once)",
    )

    # Metrics: bounded label cardinality for tasks with many classes
    max_metric_classes: int = Field(
        DEFAULT_MAX_METRIC_CLASSES,
        ge=1,
        le=200,
        description="classes (by id) labelled by name in metrics; the rest count as 'other'",
    )

    # Payload logging (drift monitoring)
    payload_log_uri: str | None = Field(None, description="sink dir or gs:// URI; unset = off")
    payload_log_sample_rate: float = Field(1.0, ge=0, le=1, description="fraction of texts logged")
    payload_log_flush_s: float = Field(10.0, gt=0, description="flush interval in seconds")
    payload_log_max_buffer: int = Field(50_000, ge=1, description="records held; beyond this, dropped")
    payload_log_max_buffer_bytes: int = Field(
        32 << 20, ge=1 << 16, description="bytes of serialised records held; beyond this, dropped (counted)"
    )

    # HTTP
    direct_predict: bool = Field(
        True, description="answer valid V1/V2 predictions in our middleware, not via KServe's router"
    )
    access_log: bool = Field(False, description="uvicorn access log line per request (costs CPU)")
    drain_timeout_s: int = Field(30, ge=1, description="max seconds to finish in-flight requests")

    # Fault injection for canary drills (off by default)
    fault_latency_ms: float = Field(0.0, ge=0, description="latency added to every prediction request")
    fault_error_rate: float = Field(0.0, ge=0, le=1, description="fraction of requests answered 500")
