"""Fine-tuning a tiny transformer: precision handling, checkpoints, resume after SIGKILL, GPU FP16."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from components.common.models import load_model
from components.common.settings import ComponentError
from components.finetune.train import (
    FinetuneSettings,
    build_trainer,
    choose_precision,
    finetune,
    latest_checkpoint,
    load_base_model,
    prepare_data,
    tokenise,
    training_arguments,
)


def _finetune_cmd(validated: Path, out: Path, checkpoint: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "components.finetune",
        "--validated-dir",
        str(validated),
        "--output-dir",
        str(out),
        "--base-model",
        str(checkpoint),
        "--batch-size",
        "4",
        "--track",
        "false",
        *extra,
    ]


def test_fp16_needs_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        assert choose_precision("auto") == "fp16"
    else:
        assert choose_precision("auto") == "fp32"
        with pytest.raises(ComponentError, match="no CUDA device"):
            choose_precision("fp16")


def _tiny_settings(out: Path, validated: Path, checkpoint: Path, **overrides: Any) -> FinetuneSettings:
    """Settings for fine-tuning the tiny checkpoint on the smoke data, untracked."""
    return FinetuneSettings(
        validated_dir=str(validated),
        output_dir=str(out),
        base_model=str(checkpoint),
        track=False,
        **overrides,
    )


def test_finetune_writes_a_loadable_model_with_lineage(
    tmp_path: Path, validated_smoke_dir: Path, tiny_checkpoint_dir: Path
) -> None:
    settings = _tiny_settings(
        tmp_path,
        validated_smoke_dir,
        tiny_checkpoint_dir,
        epochs=1,
        batch_size=16,
        eval_steps=2,
        max_length=32,
    )
    result = finetune(settings)
    model = load_model(Path(result.model_dir))
    assert model.flavor == "transformer" and model.predict_proba(["fine"]).shape == (1, 2)
    assert model.labels.is_binary and model.model.config.id2label == {0: "negative", 1: "positive"}
    metadata = model.manifest.metadata
    assert metadata["precision"] == result.precision == "fp32"
    assert metadata["max_length"] == 32 and metadata["dataset_hash"] == result.dataset_hash
    assert metadata["params"]["padding"] == "dynamic" and metadata["params"]["group_by_length"] is True
    assert not (Path(result.model_dir) / "training_args.bin").exists(), "no pickles in the served model"
    assert {"onnx/model-fp32.onnx", "onnx/model-int8.onnx"} <= set(model.manifest.files)  # exported here
    assert metadata["onnx"]["checks"]["fp32"]["max_abs_diff"] < 1e-4
    assert latest_checkpoint(tmp_path / "checkpoints") is not None
    # The recorded validation metrics (taken from the kept checkpoint's in-training evaluation) are the
    # published model's own on the validation split.
    from components.common.data import read_validated
    from components.common.metrics import classification_metrics

    frame = read_validated(validated_smoke_dir / "dataset.parquet")
    validation = frame[frame["split"] == "validation"]
    scored = classification_metrics(
        validation["label"].tolist(), model.predict_proba(validation["text"].tolist())
    ).headline()
    assert result.validation_metrics["accuracy"] == pytest.approx(scored["accuracy"])
    assert result.validation_metrics["roc_auc"] == pytest.approx(scored["roc_auc"], abs=1e-6)


def _train_batch_widths(
    tmp_path: Path, validated: Path, checkpoint: Path, **overrides: Any
) -> list[tuple[int, int]]:
    """(padded width, longest real row) of every training batch the Trainer's own dataloader yields."""
    settings = _tiny_settings(tmp_path, validated, checkpoint, batch_size=8, max_length=48, **overrides)
    data = prepare_data(settings, cuda=False)
    tokenizer, model = load_base_model(settings.base_model)
    args = training_arguments(settings, tmp_path / "checkpoints", len(data.train), "fp32", cuda=False)
    trainer = build_trainer(
        settings,
        args,
        model,
        tokenizer,
        tokenise(data.train, tokenizer, settings.max_length, settings.padding),
        tokenise(data.validation, tokenizer, settings.max_length, settings.padding),
    )
    return [
        (batch["input_ids"].shape[1], int(batch["attention_mask"].sum(dim=1).max()))
        for batch in trainer.get_train_dataloader()
    ]


def test_batches_are_padded_to_their_longest_row_and_grouped_by_length(
    tmp_path: Path, validated_smoke_dir: Path, tiny_checkpoint_dir: Path
) -> None:
    grouped = _train_batch_widths(tmp_path / "g", validated_smoke_dir, tiny_checkpoint_dir)
    assert all(width == longest for width, longest in grouped), (
        "dynamic: each batch as wide as its longest row"
    )
    assert min(width for width, _ in grouped) < 48, "no batch should be padded to max_length for nothing"
    static = _train_batch_widths(
        tmp_path / "s", validated_smoke_dir, tiny_checkpoint_dir, padding="max_length", group_by_length=False
    )
    assert {width for width, _ in static} == {48}, "the old static path pads every row to max_length"
    random_order = _train_batch_widths(
        tmp_path / "r", validated_smoke_dir, tiny_checkpoint_dir, group_by_length=False
    )
    # Same rows, same batch size: grouping by length must compute fewer padded positions than random batches.
    assert sum(w for w, _ in grouped) < sum(w for w, _ in random_order)


def test_killed_finetune_resumes_from_its_last_checkpoint(
    tmp_path: Path, validated_smoke_dir: Path, tiny_checkpoint_dir: Path
) -> None:
    out = tmp_path / "ft"
    # 76 rows / batch 4 = 19 steps an epoch; 3 epochs = 57 steps, a checkpoint every 10.
    cmd = _finetune_cmd(
        validated_smoke_dir,
        out,
        tiny_checkpoint_dir,
        "--epochs",
        "3",
        "--eval-steps",
        "10",
        "--early-stopping-patience",
        "1000",
        "--save-total-limit",
        "3",
    )
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        checkpoint = latest_checkpoint(out / "checkpoints")
        if checkpoint is not None and int(checkpoint.name.split("-")[1]) >= 10:
            os.killpg(proc.pid, signal.SIGKILL)
            killed_at = int(checkpoint.name.split("-")[1])
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed_at is not None, "the run finished before it could be killed"
    assert not (out / "model" / "manifest.json").exists(), "a killed run must not publish a model"

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    resumed_from = json.loads((out / "model" / "manifest.json").read_text())["metadata"]["resumed_from"]
    assert resumed_from is not None and int(resumed_from.split("-")[1]) >= killed_at
    state = json.loads((latest_checkpoint(out / "checkpoints") / "trainer_state.json").read_text())
    assert state["global_step"] == 57


@pytest.mark.gpu
def test_fp16_finetune_on_gpu(tmp_path: Path, validated_smoke_dir: Path, tiny_checkpoint_dir: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    settings = FinetuneSettings(
        validated_dir=str(validated_smoke_dir),
        output_dir=str(tmp_path),
        base_model=str(tiny_checkpoint_dir),
        epochs=1,
        batch_size=16,
        precision="fp16",
        track=False,
    )
    result = finetune(settings)
    assert result.precision == "fp16"
    assert load_model(Path(result.model_dir)).manifest.metadata["precision"] == "fp16"


def test_a_capped_run_says_so(tmp_path: Path, validated_smoke_dir: Path, tiny_checkpoint_dir: Path) -> None:
    proc = subprocess.run(
        _finetune_cmd(
            validated_smoke_dir,
            tmp_path,
            tiny_checkpoint_dir,
            "--max-train-samples",
            "8",
            "--max-length",
            "16",
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "note: fine-tuning on 8 of 76 training rows (--max-train-samples 8: a capped run" in proc.stdout


def test_training_cap_on_cpu_and_gpu() -> None:
    from components.finetune.train import auto_eval_steps, training_cap

    full = FinetuneSettings(max_train_samples=0, cpu_max_train_samples=20_000)
    assert training_cap(full, cuda=True) == (0, "all rows")
    cap, why = training_cap(full, cuda=False)
    assert cap == 20_000 and "no CUDA device: --cpu-max-train-samples 20000" in why
    assert training_cap(full.model_copy(update={"max_train_samples": 64}), cuda=False)[0] == 64
    assert training_cap(full.model_copy(update={"cpu_max_train_samples": 0}), cuda=False) == (0, "all rows")
    assert [auto_eval_steps(s) for s in (267, 5_000, 25_300)] == [100, 500, 2000]
