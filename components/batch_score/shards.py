"""Sharded batch scoring: plan -> score each shard (in parallel on Argo) -> merge; resumable per shard.

The work folder (``--work-uri``, default ``<output stem>.shards`` beside the output) holds:

- ``inputs/part-NNNNN.parquet``: the dataset cut into shards of ``shard_rows`` rows, in input order;
- ``plan.json``: the shards, the input's fingerprint and the model pinned for every shard (an alias such as
  ``@champion`` is resolved once, here, so that a promotion during the run cannot mix two models);
- ``scored/part-NNNNN.parquet``: each shard's predictions, published atomically; a shard whose output
  already names the plan's model digest is skipped, which is what makes a rerun resume.

``merge`` checks that every shard is scored by the pinned model, then streams the parts, in order, into
the one predictions parquet. The local runner (stage ``all``) and the Argo fan-out run this same code.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.common.artifacts import atomic_write_chunks, atomic_write_json, is_remote, local_path
from components.common.data import DataError, iter_table_chunks, read_parquet
from components.common.model_source import PinnedManifest
from components.common.models import manifest_labels
from components.common.settings import ComponentError

PLAN_NAME = "plan.json"
PLAN_VERSION = 1
INPUTS_DIR = "inputs"
SCORED_DIR = "scored"
SHARD_METADATA_KEY = b"sentimentops_shard"


@dataclass(frozen=True)
class Shard:
    """One slice of the input: its rows and where its input and predictions live (relative to the plan)."""

    index: int
    rows: int
    input: str
    output: str


@dataclass(frozen=True)
class ShardPlan:
    """What ``plan`` decided; every later stage reads it from ``plan.json``."""

    dataset_uri: str
    dataset_fingerprint: dict[str, str]
    shard_rows: int
    total_rows: int
    model_uri: str  # pinned: models:/<name>/<version> or the directory as given
    model_digest: str
    model_name: str
    model_version: str
    model_source: str
    model_flavor: str
    class_names: list[str]  # the model's classes in id order: merge reports shares without loading it
    shards: list[Shard] = field(default_factory=list)
    version: int = PLAN_VERSION

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardPlan:
        shards = [Shard(**s) for s in data.get("shards", [])]
        return cls(**{**data, "shards": shards})


def join_uri(root: str, *parts: str) -> str:
    """``root/part/...`` for a local path or an fsspec URI."""
    return "/".join([root.rstrip("/"), *parts])


def default_work_uri(output_uri: str) -> str:
    """``.../reviews.predictions.parquet`` -> ``.../reviews.predictions.shards``."""
    return output_uri.removesuffix(".parquet") + ".shards"


def _filesystem(uri: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(uri)


def dataset_fingerprint(uri: str) -> dict[str, str]:
    """The input's size and version marker (GCS generation, etag or mtime): a changed input gets a new plan."""
    fs, path = _filesystem(uri)
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise DataError(f"dataset not found: {uri}") from exc
    marker = next(
        (str(info[k]) for k in ("generation", "md5Hash", "etag", "ETag", "mtime", "updated") if info.get(k)),
        "",
    )
    if not marker and not is_remote(uri):
        marker = str(local_path(uri).stat().st_mtime_ns)
    return {"size": str(info.get("size", "")), "version": marker}


def _exists(uri: str) -> bool:
    fs, path = _filesystem(uri)
    return bool(fs.exists(path))


def _parquet_bytes(frame: pd.DataFrame, metadata: dict[bytes, bytes] | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_plan(work_uri: str) -> ShardPlan | None:
    """The plan in ``work_uri``, or None when there is none yet."""
    import fsspec

    uri = join_uri(work_uri, PLAN_NAME)
    if not _exists(uri):
        return None
    with fsspec.open(uri, "rb") as handle:
        data = json.loads(handle.read())
    if data.get("version") != PLAN_VERSION:
        raise ComponentError(f"{uri} is a version {data.get('version')} plan; this code reads {PLAN_VERSION}")
    return ShardPlan.from_json(data)


def _plan_matches(plan: ShardPlan, dataset_uri: str, fingerprint: dict[str, str], shard_rows: int) -> bool:
    return (
        plan.dataset_uri == dataset_uri
        and plan.dataset_fingerprint == fingerprint
        and plan.shard_rows == shard_rows
    )


@dataclass(frozen=True)
class PinnedModel:
    """The exact model every shard is scored with: a registry version (never an alias) or a directory."""

    uri: str
    digest: str
    name: str
    version: str
    source: str
    flavor: str
    class_names: tuple[str, ...]

    @classmethod
    def of(cls, pinned: PinnedManifest) -> PinnedModel:
        """The plan's record of a model pinned by its manifest (nothing downloaded or loaded but that)."""
        manifest = pinned.manifest
        return cls(
            pinned.uri,
            pinned.digest,
            pinned.name,
            pinned.version,
            pinned.source,
            manifest.flavor,
            manifest_labels(manifest).names,
        )


def make_plan(
    dataset_uri: str,
    fingerprint: dict[str, str],
    work_uri: str,
    shard_rows: int,
    text_column: str,
    model: PinnedModel,
) -> ShardPlan:
    """Cut the dataset (``fingerprint``: its ``dataset_fingerprint``) into shard inputs and write
    ``plan.json`` last (a plan is complete once it exists). An existing plan for the same input, shard size
    and model is reused."""
    if shard_rows < 1:
        raise ComponentError(f"--shard-rows must be >= 1, got {shard_rows}")
    existing = read_plan(work_uri)
    if existing is not None and _plan_matches(existing, dataset_uri, fingerprint, shard_rows):
        if existing.model_digest != model.digest:
            raise ComponentError(
                f"{work_uri} holds a run of this dataset with model digest {existing.model_digest[:12]}…, "
                f"not {model.digest[:12]}…: use another --work-uri or delete that folder"
            )
        return existing
    shards: list[Shard] = []
    total = 0
    for index, chunk in enumerate(iter_table_chunks(dataset_uri, shard_rows)):
        if index == 0 and text_column not in chunk.columns:
            raise ComponentError(
                f"text column {text_column!r} not in the dataset; columns: {list(chunk.columns)}"
            )
        name = f"part-{index:05d}.parquet"
        shard = Shard(index, len(chunk), f"{INPUTS_DIR}/{name}", f"{SCORED_DIR}/{name}")
        atomic_write_chunks(join_uri(work_uri, shard.input), (_parquet_bytes(chunk),))
        shards.append(shard)
        total += len(chunk)
    if not shards:
        raise DataError(f"{dataset_uri} has no rows to score")
    plan = ShardPlan(
        dataset_uri=dataset_uri,
        dataset_fingerprint=fingerprint,
        shard_rows=shard_rows,
        total_rows=total,
        model_uri=model.uri,
        model_digest=model.digest,
        model_name=model.name,
        model_version=model.version,
        model_source=model.source,
        model_flavor=model.flavor,
        class_names=list(model.class_names),
        shards=shards,
    )
    atomic_write_json(join_uri(work_uri, PLAN_NAME), asdict(plan))
    return plan


def _scored_schema(plan: ShardPlan, work_uri: str, shard: Shard) -> Any | None:
    """The schema of the shard's predictions when they exist, from this plan's model, with all of its rows
    (read from the file's footer only); None otherwise."""
    import fsspec
    import pyarrow.parquet as pq

    uri = join_uri(work_uri, shard.output)
    if not _exists(uri):
        return None
    with fsspec.open(uri, "rb") as handle:
        parquet = pq.ParquetFile(handle, pre_buffer=False)
        schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
    recorded = json.loads((schema.metadata or {}).get(SHARD_METADATA_KEY, b"{}"))
    return schema if recorded.get("model_digest") == plan.model_digest and rows == shard.rows else None


def shard_is_done(plan: ShardPlan, work_uri: str, shard: Shard) -> bool:
    """Whether the shard's predictions exist, from this plan's model, with all of its rows."""
    return _scored_schema(plan, work_uri, shard) is not None


def read_shard_input(work_uri: str, shard: Shard) -> pd.DataFrame:
    import fsspec

    with fsspec.open(join_uri(work_uri, shard.input), "rb") as handle:
        return read_parquet(handle).to_pandas()


def write_shard_output(plan: ShardPlan, work_uri: str, shard: Shard, scored: pd.DataFrame) -> None:
    """Publish one shard's predictions atomically, stamped with the model that made them."""
    stamp = {"model_digest": plan.model_digest, "shard": shard.index, "rows": len(scored)}
    payload = _parquet_bytes(scored, {SHARD_METADATA_KEY: json.dumps(stamp).encode()})
    atomic_write_chunks(join_uri(work_uri, shard.output), (payload,))


def shard_by_index(plan: ShardPlan, index: int) -> Shard:
    if not 0 <= index < len(plan.shards):
        raise ComponentError(f"--shard-index {index} is outside the plan's {len(plan.shards)} shard(s)")
    return plan.shards[index]


@dataclass(frozen=True)
class MergeResult:
    """The merged output's row count, its per-class counts (by class index) and its empty texts."""

    rows: int
    class_counts: np.ndarray
    empty_texts: int


@contextmanager
def _published(uri: str) -> Iterator[Any]:
    """A handle on a temporary object beside ``uri``, moved onto ``uri`` only when the block succeeds (a
    rename locally, a server-side copy on GCS): readers never see a torn file, and nothing is staged on
    the pod's disk, whatever the output's size."""
    fs, path = _filesystem(uri)
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{parent}/.{path.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp"
    try:
        with fs.open(temporary, "wb") as handle:
            yield handle
        fs.mv(temporary, path)
    except BaseException:
        if fs.exists(temporary):
            fs.rm(temporary)
        raise


def merge_shards(
    plan: ShardPlan, work_uri: str, output_uri: str, metadata: dict[str, Any], text_column: str
) -> MergeResult:
    """Stream every shard's predictions, in input order, into ``output_uri`` (published atomically, with
    ``metadata`` under the output's metadata key). Refuses while any shard is missing or from another model."""
    import fsspec
    import pyarrow as pa
    import pyarrow.parquet as pq

    from components.batch_score.score import METADATA_KEY

    schemas = [_scored_schema(plan, work_uri, s) for s in plan.shards]
    missing = [s.index for s, schema in zip(plan.shards, schemas, strict=True) if schema is None]
    if missing:
        listed = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise ComponentError(
            f"{len(missing)} of {len(plan.shards)} shard(s) not scored by model {plan.model_digest[:12]}… "
            f"yet: {listed}; run --stage score-shard for them (or --stage all to resume)"
        )
    # A JSON-lines column can be read as int in one shard and float (or all-null) in another.
    schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    schema = schema.with_metadata({METADATA_KEY: json.dumps(metadata).encode()})
    num_classes = len(plan.class_names)
    counts = np.zeros(num_classes, dtype=np.int64)
    rows = empty = 0
    with _published(output_uri) as sink, pq.ParquetWriter(sink, schema) as writer:
        for shard in plan.shards:
            with fsspec.open(join_uri(work_uri, shard.output), "rb") as handle:
                table = read_parquet(handle).cast(schema)  # the output's types and metadata
            writer.write_table(table)
            ids = table.column("class_index").to_numpy()
            counts += np.bincount(ids.astype(np.int64), minlength=num_classes)[:num_classes]
            rows += table.num_rows
            texts = table.column(text_column).to_pandas()
            empty += int((texts.fillna("").astype(str).str.strip() == "").sum())
    if rows != plan.total_rows:
        raise ComponentError(f"merged {rows} rows but the plan has {plan.total_rows}")
    return MergeResult(rows, counts, empty)


def remove_work(work_uri: str) -> None:
    """Delete the work folder after a successful merge (its shards are in the output now)."""
    fs, path = _filesystem(work_uri)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def write_shard_indices(path: str, plan: ShardPlan) -> None:
    """The shard indices as a JSON list, for Argo's ``withParam`` fan-out."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps([s.index for s in plan.shards]))
