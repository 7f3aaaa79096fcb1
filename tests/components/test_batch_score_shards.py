"""Sharded batch scoring: the same predictions as one shard, stage by stage, resumable, one pinned model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from components.batch_score import shards as sharding
from components.batch_score.score import BatchScoreSettings, batch_score
from components.common.artifacts import ArtifactError, read_manifest, write_manifest
from components.common.data import DataError, iter_table_chunks, read_table
from components.common.settings import ComponentError
from tests.components.test_batch_score import _register, write_reviews


@pytest.fixture()
def reviews_csv(tmp_path: Path, rt_frame: pd.DataFrame) -> Path:
    return write_reviews(tmp_path, rt_frame, 43)  # 43: the last shard is a short one


def _settings(dataset: Path, model_dir: Path, **overrides: object) -> BatchScoreSettings:
    digest = read_manifest(model_dir).digest
    return BatchScoreSettings(
        dataset_uri=str(dataset), model_uri=str(model_dir), expected_digest=digest, **overrides
    )


def _registry_stages(dataset: Path, tmp_path: Path) -> dict[str, object]:
    """Settings every stage of one registry-model run shares (the model is the default champion alias)."""
    return {
        "dataset_uri": str(dataset),
        "work_uri": str(tmp_path / "work"),
        "output_uri": str(tmp_path / "out.parquet"),
        "shard_rows": 20,
    }


@pytest.mark.parametrize("name", ["r.csv", "r.tsv", "r.parquet", "r.jsonl", "r.csv.gz"])
def test_chunks_have_exact_sizes_and_concatenate_to_the_whole_table(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame(
        {"id": [f"r{i}" for i in range(23)], "text": [f"line, {i}\nnext" for i in range(23)]}
    )
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, row_group_size=4)  # row groups that do not line up with the chunks
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="\t" if ".tsv" in name else ",", index=False)
    chunks = list(iter_table_chunks(str(path), 5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    whole = pd.concat(chunks, ignore_index=True)
    assert whole.to_dict("list") == read_table(str(path)).to_dict("list") == frame.to_dict("list")


def test_chunked_reading_refuses_bad_input_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text\n\xff\xfe broken\n")
    with pytest.raises(DataError, match="not valid UTF-8"):
        list(iter_table_chunks(str(bad), 10))
    with pytest.raises(DataError, match="chunk size"):
        list(iter_table_chunks(str(bad), 0))


def test_many_shards_give_exactly_the_one_shard_predictions(
    tmp_path: Path, reviews_csv: Path, baseline_model_dir: Path
) -> None:
    one = batch_score(_settings(reviews_csv, baseline_model_dir, output_uri=str(tmp_path / "one.parquet")))
    many = batch_score(
        _settings(reviews_csv, baseline_model_dir, output_uri=str(tmp_path / "many.parquet"), shard_rows=10)
    )
    assert (one.shards, many.shards, many.shards_scored) == (1, 5, 5)
    a, b = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "many.parquet")
    pd.testing.assert_frame_equal(a, b)  # same rows, same order, same columns and dtypes
    assert b["review_id"].tolist() == [str(i) for i in range(43)]
    assert one.class_shares == many.class_shares and many.rows == 43
    # The work folders are deleted after a successful merge.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "many.parquet", "one.parquet"]


def test_stages_run_separately_merge_waits_for_every_shard_and_reruns_resume(
    tmp_path: Path, reviews_csv: Path, baseline_model_dir: Path
) -> None:
    work = tmp_path / "work"
    out = tmp_path / "out.parquet"
    base = {"output_uri": str(out), "work_uri": str(work), "shard_rows": 10}
    shard_list = tmp_path / "argo" / "shards.json"
    planned = batch_score(
        _settings(reviews_csv, baseline_model_dir, stage="plan", shard_list_path=str(shard_list), **base)
    )
    assert planned.shards == 5 and json.loads(shard_list.read_text()) == [0, 1, 2, 3, 4]
    plan = sharding.read_plan(str(work))
    assert plan is not None and [s.rows for s in plan.shards] == [10, 10, 10, 10, 3]
    assert plan.model_digest == read_manifest(baseline_model_dir).digest

    for index in (0, 2):
        batch_score(
            _settings(reviews_csv, baseline_model_dir, stage="score-shard", shard_index=index, **base)
        )
    with pytest.raises(ComponentError, match=r"3 of 5 shard\(s\) not scored .*: 1, 3, 4"):
        batch_score(_settings(reviews_csv, baseline_model_dir, stage="merge", **base))
    assert not out.exists()  # nothing half-written

    # A shard scored again is skipped; the all-stage rerun scores only what is missing.
    again = batch_score(
        _settings(reviews_csv, baseline_model_dir, stage="score-shard", shard_index=0, **base)
    )
    assert again.shards_scored == 0
    resumed = batch_score(_settings(reviews_csv, baseline_model_dir, keep_shards=True, **base))
    assert resumed.shards_scored == 3 and resumed.rows == 43 and len(pd.read_parquet(out)) == 43
    # A lost part (or one from another model) is rescored, the rest are not.
    (work / plan.shards[4].output).unlink()
    assert batch_score(_settings(reviews_csv, baseline_model_dir, **base)).shards_scored == 1
    assert not work.exists()

    with pytest.raises(ComponentError, match="needs --shard-index"):
        batch_score(_settings(reviews_csv, baseline_model_dir, stage="score-shard", **base))
    with pytest.raises(ComponentError, match="no plan in"):
        batch_score(_settings(reviews_csv, baseline_model_dir, stage="merge", **base))


def test_a_changed_input_gets_a_new_plan_and_an_out_of_range_shard_is_refused(
    tmp_path: Path, reviews_csv: Path, baseline_model_dir: Path
) -> None:
    base = {"work_uri": str(tmp_path / "work"), "shard_rows": 20, "stage": "plan"}
    batch_score(_settings(reviews_csv, baseline_model_dir, **base))
    frame = pd.read_csv(reviews_csv)
    frame.head(30).to_csv(reviews_csv, index=False)
    replanned = batch_score(_settings(reviews_csv, baseline_model_dir, **base))
    assert replanned.rows == 30 and replanned.shards == 2
    with pytest.raises(ComponentError, match="outside the plan's 2 shard"):
        batch_score(
            _settings(reviews_csv, baseline_model_dir, **{**base, "stage": "score-shard", "shard_index": 2})
        )


def test_an_alias_is_pinned_once_so_a_promotion_mid_run_cannot_mix_models(
    tracking_env: str, tmp_path: Path, reviews_csv: Path, baseline_model_dir: Path
) -> None:
    digest = read_manifest(baseline_model_dir).digest
    first = _register(baseline_model_dir, tracking_env, digest)
    base = _registry_stages(reviews_csv, tmp_path)
    batch_score(BatchScoreSettings(stage="plan", **base))
    plan = sharding.read_plan(base["work_uri"])
    assert plan is not None and plan.model_uri == f"models:/sentiment/{first}"
    second = _register(baseline_model_dir, tracking_env, digest)  # champion moves on mid-run
    assert second != first
    for index in range(len(plan.shards)):
        batch_score(BatchScoreSettings(stage="score-shard", shard_index=index, **base))
    merged = batch_score(BatchScoreSettings(stage="merge", **base))
    assert merged.model_version == first
    assert pd.read_parquet(base["output_uri"])["model_version"].unique().tolist() == [first]


def test_a_work_folder_from_another_model_is_not_reused(
    tmp_path: Path, reviews_csv: Path, baseline_model_dir: Path, four_class_model_dirs: dict[str, Path]
) -> None:
    base = {"work_uri": str(tmp_path / "work"), "stage": "plan"}
    batch_score(_settings(reviews_csv, baseline_model_dir, **base))
    with pytest.raises(ComponentError, match="with model digest .* use another --work-uri"):
        batch_score(_settings(reviews_csv, four_class_model_dirs["tfidf"], **base))


def test_a_transformer_is_scored_through_the_predictors_engine(
    tmp_path: Path, reviews_csv: Path, four_class_model_dirs: dict[str, Path]
) -> None:
    """The shipped ONNX graph (checked against torch's probe answers at load) gives torch's answers; int8 is
    only used when asked for or proven; a model without graphs cannot be forced onto ONNX."""
    model_dir = four_class_model_dirs["transformer"]
    outputs = {}
    for runtime, quantize in (("torch", "none"), ("onnx", "none"), ("onnx", "dynamic_int8")):
        out = tmp_path / f"{runtime}-{quantize}.parquet"
        batch_score(
            _settings(
                reviews_csv, model_dir, output_uri=str(out), runtime=runtime, quantize=quantize, shard_rows=20
            )
        )
        outputs[(runtime, quantize)] = pd.read_parquet(out)
    columns = [c for c in outputs["torch", "none"].columns if c.startswith("probability_")]
    assert len(columns) == 4
    torch_probs = outputs["torch", "none"][columns].to_numpy()
    assert abs(outputs["onnx", "none"][columns].to_numpy() - torch_probs).max() < 1e-4
    assert abs(outputs["onnx", "dynamic_int8"][columns].to_numpy() - torch_probs).mean() < 0.05

    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns("onnx"))
    manifest = read_manifest(model_dir)
    metadata = {k: v for k, v in manifest.metadata.items() if k != "onnx"}
    write_manifest(bare, manifest.flavor, metadata)
    with pytest.raises(ArtifactError, match="ships no verified ONNX fp32 graph"):
        batch_score(_settings(reviews_csv, bare, output_uri=str(tmp_path / "x.parquet"), runtime="onnx"))


def test_the_plan_pins_a_registry_alias_from_the_manifest_alone_and_the_shards_verify_the_files(
    tracking_env: str, tmp_path: Path, reviews_csv: Path, ensemble_model_dir: Path
) -> None:
    from mlflow import MlflowClient

    from components.common.artifacts import local_path

    digest = read_manifest(ensemble_model_dir).digest
    version = _register(ensemble_model_dir, tracking_env, digest)
    source = MlflowClient(tracking_env).get_model_version("sentiment", version).source
    weights = local_path(source) / "members" / "transformer" / "model.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original + b"\0")  # the stored files no longer hash to the registered digest
    base = _registry_stages(reviews_csv, tmp_path)
    # The plan reads the manifest only (the digest covers it): it neither downloads nor hashes the weights.
    batch_score(BatchScoreSettings(stage="plan", **base))
    plan = sharding.read_plan(base["work_uri"])
    assert plan is not None and plan.model_uri == f"models:/sentiment/{version}"
    assert (plan.model_digest, plan.model_flavor) == (digest, "ensemble")
    # Every shard pod verifies the files it loads.
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        batch_score(BatchScoreSettings(stage="score-shard", shard_index=0, **base))
    weights.write_bytes(original)
    batch_score(BatchScoreSettings(stage="all", **base))
    scored = pd.read_parquet(base["output_uri"])
    assert len(scored) == 43 and scored["model_version"].unique().tolist() == [version]
