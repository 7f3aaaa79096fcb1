"""Every step reads and writes artifacts by URI, as the Argo steps do with gs://: here through fsspec's
in-memory filesystem (the same code path as gcsfs, offline)."""

from __future__ import annotations

import fsspec
import pytest

from components.blend.blend import BlendSettings
from components.blend.cli import STEP as BLEND_STEP
from components.common.model_source import resolve_model
from components.common.results import TrainResult
from components.common.tracking import log_model_dir, run_tracked_step, step_run
from components.evaluate.evaluation import EvaluateSettings, evaluate, read_evaluation
from components.finetune.train import FinetuneSettings, finetune
from components.register.registration import RegisterSettings, register
from components.train_baseline.train import BaselineSettings, train_baseline
from components.validate.gate import ValidateSettings, validate_dataset
from tests.conftest import RT_CSV

ROOT = "memory://sentimentops-test/runs/r1"


@pytest.fixture()
def memory_fs():
    fs = fsspec.filesystem("memory")
    yield fs
    if fs.exists("/sentimentops-test"):
        fs.rm("/sentimentops-test", recursive=True)


def test_pipeline_steps_pass_artifacts_by_uri(memory_fs, tracking_env: str, tiny_checkpoint_dir) -> None:
    validated = f"{ROOT}/validated"
    assert validate_dataset(
        ValidateSettings(dataset_uri=str(RT_CSV), output_dir=validated, smoke=True, track=False)
    ).success
    assert memory_fs.exists(f"{validated}/dataset.parquet")

    def tracked(settings, train_fn) -> TrainResult:
        with step_run(settings, "train") as run:
            result = train_fn(settings, run_id=run.info.run_id)
            result.model_artifact_uri = log_model_dir(result.model_dir, result.dataset_hash, validated)
        result.write()
        return result

    tracked(BaselineSettings(validated_dir=validated, output_dir=f"{ROOT}/baseline"), train_baseline)
    tracked(
        FinetuneSettings(
            validated_dir=validated,
            output_dir=f"{ROOT}/finetuned",
            base_model=str(tiny_checkpoint_dir),
            batch_size=16,
            max_length=32,
        ),
        finetune,
    )
    assert memory_fs.exists(f"{ROOT}/finetuned/model/manifest.json")
    assert TrainResult.read(f"{ROOT}/finetuned").model_dir == f"{ROOT}/finetuned/model"

    # blend, as its Argo step runs (its tracked run, record and outputs), made to choose an ensemble
    blend_settings = BlendSettings(
        validated_dir=validated,
        baseline_dir=f"{ROOT}/baseline",
        finetuned_dir=f"{ROOT}/finetuned",
        output_dir=f"{ROOT}/blended",
        baseline_weights="0.5",
    )
    run_tracked_step(BLEND_STEP, blend_settings)
    assert memory_fs.exists(f"{ROOT}/blended/model/members/transformer/manifest.json")
    assert memory_fs.exists(f"{ROOT}/blended/blend.json")

    evaluate(
        EvaluateSettings(
            validated_dir=validated,
            baseline_dir=f"{ROOT}/baseline",
            challenger_dir=f"{ROOT}/blended",
            output_dir=f"{ROOT}/evaluation",
            latency_samples=3,
        )
    )
    assert memory_fs.exists(f"{ROOT}/evaluation/confusion_challenger.png")
    assert read_evaluation(f"{ROOT}/evaluation").models["challenger"].flavor == "ensemble"

    assert memory_fs.exists(f"{ROOT}/evaluation/predictions.parquet")
    result = register(
        RegisterSettings(
            evaluation_dir=f"{ROOT}/evaluation",
            promotion_margin=-1.0,
            registered_model="sentiment-smoke",
            gate_min_samples=0,
            gate_test="none",
        )
    )
    loaded = resolve_model("models:/sentiment-smoke@challenger")
    assert loaded.version == result.version and loaded.model.flavor == "ensemble"
