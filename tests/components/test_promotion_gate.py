"""The promotion gate decides on paired evidence: a clearly better challenger is promoted, one better by less
than the test split can resolve is held (exit 3, registry untouched), a worse one is refused (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.common import registry
from components.common.settings import TrackingSettings
from components.common.tracking import log_model_dir, step_run
from components.evaluate.evaluation import EvaluateSettings, evaluate
from components.register.gate import compare, decide_paired
from components.train_baseline.train import BaselineSettings, train_baseline
from components.validate.gate import ValidateSettings, validate_dataset
from tests.conftest import RT_CSV


@pytest.fixture(scope="module")
def validated_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("validated_full")
    assert validate_dataset(
        ValidateSettings(dataset_uri=str(RT_CSV), output_dir=str(out), track=False)
    ).success
    return out


@pytest.fixture()
def evaluated_full(tmp_path: Path, tracking_env: str, validated_full: Path) -> Path:
    """A strong TF-IDF challenger and a weak baseline (few hashed columns, strong regularisation), both
    tracked, scored on the full test split (1,066 rows)."""
    dirs = {}
    for role, overrides in (("baseline", {"c": 0.05, "n_features": 2**10}), ("challenger", {})):
        settings = BaselineSettings(
            validated_dir=str(validated_full), output_dir=str(tmp_path / role), **overrides
        )
        with step_run(settings, f"train-{role}") as run:
            result = train_baseline(settings, run_id=run.info.run_id)
            result.model_artifact_uri = log_model_dir(
                result.model_dir, result.dataset_hash, str(validated_full)
            )
        result.write()
        dirs[role] = result.output_dir
    out = tmp_path / "evaluation"
    evaluate(
        EvaluateSettings(
            validated_dir=str(validated_full),
            baseline_dir=dirs["baseline"],
            challenger_dir=dirs["challenger"],
            output_dir=str(out),
            latency_samples=5,
        )
    )
    return out


def _register(evaluation_dir: Path, tracking_uri: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components.register", "--evaluation-dir", str(evaluation_dir), *extra],
        env={**os.environ, "SENTIMENTOPS_TRACKING_URI": tracking_uri},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _with_challenger(source: Path, dest: Path, other: str, gains: int, losses: int) -> Path:
    """A copy of an evaluation whose challenger is ``other``'s predictions with ``gains`` of its wrong rows
    made right and ``losses`` of its right rows made wrong (metrics recomputed from the predictions)."""
    shutil.copytree(source, dest)
    predictions = pd.read_parquet(dest / "predictions.parquet")
    y = predictions["label"].to_numpy()
    base = predictions[f"{other}_proba"].to_numpy()
    right = (base >= 0.5) == y
    rng = np.random.default_rng(0)
    flip = np.concatenate(
        [
            rng.choice(np.flatnonzero(~right), gains, replace=False),
            rng.choice(np.flatnonzero(right), losses, replace=False),
        ]
    )
    challenger = base.copy()
    challenger[flip] = 1.0 - challenger[flip]
    predictions["challenger_proba"] = challenger
    predictions.to_parquet(dest / "predictions.parquet", index=False)
    data = json.loads((dest / "evaluation.json").read_text())
    data["models"]["challenger"]["metrics"]["accuracy"] = float(((challenger >= 0.5) == y).mean())
    (dest / "evaluation.json").write_text(json.dumps(data))
    return dest


def test_clearly_better_challenger_is_promoted(evaluated_full: Path, tracking_env: str) -> None:
    proc = _register(evaluated_full, tracking_env, "--promotion-margin", "0.005")
    assert proc.returncode == 0, proc.stderr
    assert "promotion gate passed on n=1066: vs baseline +" in proc.stdout and "mcnemar p=" in proc.stdout
    client = registry.write_client(TrackingSettings())
    assert str(client.get_model_version_by_alias("sentiment", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("sentiment", "challenger").version) == "1"


def test_lead_smaller_than_the_split_can_resolve_is_held_and_moves_nothing(
    evaluated_full: Path, tracking_env: str, tmp_path: Path
) -> None:
    assert _register(evaluated_full, tracking_env).returncode == 0  # version 1: champion and challenger
    client = registry.write_client(TrackingSettings())
    before = {
        a: client.get_model_version_by_alias("sentiment", a).version for a in ("champion", "challenger")
    }
    # A new challenger 8 rows (0.75 points) better than the baseline, but right and wrong on 68 vs 60 rows
    # where the two disagree: McNemar's p ≈ 0.27.
    held = _with_challenger(evaluated_full, tmp_path / "held", "baseline", gains=68, losses=60)
    proc = _register(held, tracking_env, "--promotion-margin", "0.005")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("hold: promotion gate held, nothing registered: the lead over baseline (accuracy ")
    assert "is not significant: mcnemar p=0.268 >= alpha 0.05 on n=1066" in last
    after = {a: client.get_model_version_by_alias("sentiment", a).version for a in ("champion", "challenger")}
    assert after == before and len(client.search_model_versions("name = 'sentiment'")) == 1
    # The same lead with the disagreements one-sided (68 vs 0) is evidence enough.
    clear = _with_challenger(evaluated_full, tmp_path / "clear", "baseline", gains=68, losses=0)
    assert _register(clear, tracking_env, "--promotion-margin", "0.005").returncode == 0


def test_worse_challenger_is_refused_with_exit_2(
    evaluated_full: Path, tracking_env: str, tmp_path: Path
) -> None:
    worse = _with_challenger(evaluated_full, tmp_path / "worse", "baseline", gains=5, losses=40)
    proc = _register(worse, tracking_env)
    assert proc.returncode == 2 and "error: promotion gate failed: accuracy" in proc.stderr
    assert registry.write_client(TrackingSettings()).search_registered_models() == []


def _paired(n: int, base_right: float, gains: int, losses: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < base_right
    other = np.where(right, y, 1 - y).astype(float)
    challenger = other.copy()
    flip = np.concatenate(
        [
            rng.choice(np.flatnonzero(~right), gains, replace=False),
            rng.choice(np.flatnonzero(right), losses, replace=False),
        ]
    )
    challenger[flip] = 1 - challenger[flip]
    return pd.DataFrame({"label": y, "baseline_proba": other, "challenger_proba": challenger})


def _metrics(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
    from components.common.metrics import classification_metrics

    return {
        role: classification_metrics(frame["label"], frame[f"{role}_proba"]).headline()
        for role in ("baseline", "challenger")
    }


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
def test_gate_outcomes_follow_the_evidence(metric: str) -> None:
    clear = _paired(2000, 0.8, gains=120, losses=20)
    noisy = _paired(2000, 0.8, gains=70, losses=55)
    worse = _paired(2000, 0.8, gains=20, losses=60)
    for frame, outcome in ((clear, "promote"), (noisy, "hold"), (worse, "refuse")):
        decision = decide_paired(_metrics(frame), frame, metric, 0.0, bootstrap_samples=500)
        assert decision.outcome == outcome, (metric, decision.reasons)
        assert decision.passed == (outcome == "promote")
    tiny = _paired(40, 0.6, gains=12, losses=0)
    decision = decide_paired(_metrics(tiny), tiny, metric, 0.0)
    assert decision.outcome == "hold" and "below gate_min_samples 500" in decision.reasons[0]


def test_mcnemar_exact_p_value_and_interval() -> None:
    y = np.ones(100, dtype=int)
    other = np.zeros(100)
    challenger = np.zeros(100)
    challenger[:10] = 1.0  # challenger alone right on 10 rows, the other alone right on none
    found = compare("baseline", "accuracy", y, challenger, other, delta=0.10, test="auto")
    assert found.test == "mcnemar" and (found.challenger_only_right, found.other_only_right) == (10, 0)
    assert found.p_value == pytest.approx(0.5**10)
    assert found.ci_low < 0.10 < found.ci_high


def test_rerun_of_the_champion_is_not_compared_with_itself(
    evaluated_full: Path, tracking_env: str, tmp_path: Path
) -> None:
    """`make run` twice: the same seeded training gives the champion's own model, which cannot beat itself."""
    assert _register(evaluated_full, tracking_env).returncode == 0
    again = tmp_path / "again"
    shutil.copytree(evaluated_full, again)
    data = json.loads((again / "evaluation.json").read_text())
    data["models"]["champion"] = {**data["models"]["challenger"], "role": "champion", "registry_version": "1"}
    (again / "evaluation.json").write_text(json.dumps(data))
    predictions = pd.read_parquet(again / "predictions.parquet")
    predictions["champion_proba"] = predictions["challenger_proba"]
    predictions.to_parquet(again / "predictions.parquet", index=False)
    proc = _register(again, tracking_env)
    assert proc.returncode == 0, proc.stderr
    assert "already registered: sentiment version 1" in proc.stdout and "aliases unchanged" in proc.stdout
    # A different model with the same scores as the champion is refused: it does not lead by the margin.
    data["models"]["challenger"]["digest"] = "e" * 64
    (again / "evaluation.json").write_text(json.dumps(data))
    refused = _register(again, tracking_env)
    assert refused.returncode == 2 and "< champion" in refused.stderr
