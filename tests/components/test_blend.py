"""blend: the baseline weight chosen on the validation split, the ensemble it writes, the hand-off to evaluate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.blend.blend import BlendSettings, blend, choose_weight, parse_weights, write_outputs
from components.common.artifacts import verify_manifest, write_manifest
from components.common.models import EnsembleModel, load_model
from components.common.results import TrainResult
from components.common.settings import ComponentError


@pytest.fixture(scope="module")
def finetuned_output_dir(tmp_path_factory: pytest.TempPathFactory, tiny_transformer_model_dir: Path) -> Path:
    """A finetune step's output folder holding the tiny transformer (its model/ and train_result.json)."""
    out = tmp_path_factory.mktemp("finetuned")
    shutil.copytree(tiny_transformer_model_dir, out / "model")
    manifest = verify_manifest(out / "model")
    write_manifest(out / "model", manifest.flavor, manifest.metadata | {"labels": ["negative", "positive"]})
    TrainResult(str(out), "transformer", "sha256:test", {"accuracy": 0.5}, 1.0, 1.0, run_id="ft-run").write()
    return out


def _settings(validated: Path, baseline: Path, finetuned: Path, out: Path, weights: str) -> BlendSettings:
    return BlendSettings(
        validated_dir=str(validated),
        baseline_dir=str(baseline.parent),
        finetuned_dir=str(finetuned),
        output_dir=str(out),
        baseline_weights=weights,
        track=False,
    )


def test_choose_weight_takes_the_best_validation_score_and_ties_go_to_the_smaller_weight() -> None:
    y = np.array([1, 1, 0, 0])
    # The fine-tuned model is wrong on row 0, the baseline on row 2; their average is right on all four.
    finetuned = np.array([[0.6, 0.4], [0.1, 0.9], [0.8, 0.2], [0.9, 0.1]])
    baseline = np.array([[0.2, 0.8], [0.3, 0.7], [0.45, 0.55], [0.7, 0.3]])
    weight, curve = choose_weight(y, finetuned, baseline, [0.0, 0.3, 0.5, 0.9], "accuracy")
    assert curve == {"0": 0.75, "0.3": 1.0, "0.5": 1.0, "0.9": 0.75}
    assert weight == 0.3  # 0.3 and 0.5 tie: the smaller baseline share wins
    weight, _ = choose_weight(y, finetuned, finetuned, [0.0, 0.5], "accuracy")
    assert weight == 0.0  # nothing gained: the fine-tuned model stays alone


@pytest.mark.parametrize(
    ("text", "reason"), [("0,1", "outside"), ("0,x", "not a number"), ("-0.1", "outside")]
)
def test_weights_outside_zero_to_one_are_refused(text: str, reason: str) -> None:
    with pytest.raises(ComponentError, match=reason):
        parse_weights(text)


def test_a_winning_weight_writes_an_ensemble_that_evaluate_reads(
    tmp_path: Path, validated_smoke_dir: Path, baseline_model_dir: Path, finetuned_output_dir: Path
) -> None:
    settings = _settings(validated_smoke_dir, baseline_model_dir, finetuned_output_dir, tmp_path / "b", "0.4")
    result = blend(settings, run_id="blend-run")
    write_outputs(settings, result)
    assert result.baseline_weight == 0.4 and result.blended and result.n > 0
    handed = TrainResult.read(str(tmp_path / "b"))
    assert (
        handed.flavor == "ensemble"
        and handed.output_dir == str(tmp_path / "b")
        and handed.run_id == "blend-run"
    )
    model = load_model(Path(handed.model_dir))
    assert isinstance(model, EnsembleModel)
    assert [(m.model.flavor, m.weight) for m in model.members] == [("transformer", 0.6), ("tfidf", 0.4)]
    selection = model.manifest.metadata["selection"]
    assert selection["split"] == "validation" and selection["curve"] == {
        "0.4": pytest.approx(result.curve["0.4"])
    }
    record = json.loads((tmp_path / "b" / "blend.json").read_text())
    assert record["baseline_weight"] == 0.4 and record["challenger_dir"] == str(tmp_path / "b")


def test_weight_zero_hands_evaluate_the_finetuned_model_and_writes_no_model(
    tmp_path: Path, validated_smoke_dir: Path, baseline_model_dir: Path, finetuned_output_dir: Path
) -> None:
    settings = _settings(validated_smoke_dir, baseline_model_dir, finetuned_output_dir, tmp_path / "b", "0")
    result = blend(settings)
    write_outputs(settings, result)
    assert not result.blended and not (tmp_path / "b" / "model").exists()
    handed = TrainResult.read(str(tmp_path / "b"))
    assert handed == TrainResult.read(str(finetuned_output_dir))  # the finetune's own result, run and all


def test_the_cli_refuses_a_bad_weight_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "components.blend",
            "--baseline-weights",
            "0,1.5",
            "--output-dir",
            str(tmp_path / "o"),
            "--track",
            "false",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: baseline weight 1.5 is outside [0, 1)"]
    assert not (tmp_path / "o").exists()
