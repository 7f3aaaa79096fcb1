"""The promotion gate and registry: aliases, lineage tags, idempotency, refusal leaves the registry alone."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from components.common import registry
from components.common.artifacts import atomic_write_json
from components.common.model_source import resolve_model
from components.common.settings import ComponentError, GateFailed, TrackingSettings
from components.common.tracking import log_model_dir, step_run
from components.evaluate.evaluation import EvaluateSettings, evaluate, read_evaluation, read_predictions
from components.register.registration import RegisterSettings, decide, register
from components.train_baseline.train import BaselineSettings, train_baseline


@pytest.fixture()
def evaluated(tmp_path: Path, tracking_env: str, validated_smoke_dir: Path) -> Path:
    """Two tracked baselines (the second with other hyperparameters plays the challenger), evaluated."""
    dirs = {}
    for role, c in (("baseline", 0.05), ("challenger", 4.0)):
        settings = BaselineSettings(
            validated_dir=str(validated_smoke_dir), output_dir=str(tmp_path / role), c=c
        )
        with step_run(settings, f"train-{role}") as run:
            result = train_baseline(settings, run_id=run.info.run_id)
            result.model_artifact_uri = log_model_dir(
                result.model_dir, result.dataset_hash, str(validated_smoke_dir)
            )
        result.write()
        dirs[role] = result.output_dir
    out = tmp_path / "evaluation"
    evaluate(
        EvaluateSettings(
            validated_dir=str(validated_smoke_dir),
            baseline_dir=dirs["baseline"],
            challenger_dir=dirs["challenger"],
            output_dir=str(out),
            latency_samples=5,
        )
    )
    return out


# The fixture's evaluation is on the smoke subset (8 test rows): it may only go to a -smoke model, and only
# with the significance test off and no minimum split size (the gate itself: test_promotion_gate.py).
SMOKE = {"registered_model": "sentiment-smoke", "gate_min_samples": 0, "gate_test": "none"}


def _versions(settings: TrackingSettings) -> list:
    client = registry.write_client(settings)
    return client.search_model_versions(f"name = '{settings.registered_model}'")


def test_evaluation_scores_every_model_on_the_same_split(evaluated: Path) -> None:
    evaluation = read_evaluation(str(evaluated))
    assert set(evaluation.models) == {"baseline", "challenger"}
    delta = evaluation.comparison()["challenger_vs_baseline"]["accuracy"]
    assert (
        delta
        == evaluation.models["challenger"].metrics["accuracy"]
        - evaluation.models["baseline"].metrics["accuracy"]
    )
    for model in evaluation.models.values():
        assert model.metrics["n"] == evaluation.n == 8
        assert set(model.metrics) >= {
            "accuracy",
            "f1",
            "precision",
            "recall",
            "roc_auc",
            "confusion_matrix",
            "slices",
        }
        assert model.latency_ms_p50 > 0
        assert (evaluated / f"confusion_{model.role}.png").read_bytes().startswith(b"\x89PNG")


def test_first_registration_sets_both_aliases_with_lineage_and_rerun_is_a_noop(evaluated: Path) -> None:
    settings = RegisterSettings(evaluation_dir=str(evaluated), promotion_margin=-1.0, **SMOKE)
    first = register(settings)
    assert first.created and set(first.aliases_moved) == {"challenger", "champion"}
    client = registry.write_client(settings)
    version = client.get_model_version_by_alias("sentiment-smoke", "challenger")
    tags = version.tags
    assert tags["dataset_hash"].startswith("sha256:") and tags["model_digest"] and tags["git_commit"]
    assert tags["train_run_id"] and "metric_accuracy" in tags and "metric_roc_auc" in tags
    # The registered source really holds the model, and it verifies against the recorded digest.
    loaded = resolve_model("models:/sentiment-smoke@champion", tracking=settings)
    assert loaded.version == str(version.version) and loaded.model.flavor == "tfidf"

    again = register(settings)
    assert not again.created and again.aliases_moved == [] and again.version == first.version
    assert len(_versions(settings)) == 1


def test_champion_moves_only_by_promotion(evaluated: Path, tmp_path: Path) -> None:
    settings = RegisterSettings(evaluation_dir=str(evaluated), promotion_margin=-1.0, **SMOKE)
    first = register(settings)
    # A different challenger (another digest) passes the gate: challenger moves, champion stays.
    evaluation = read_evaluation(str(evaluated))
    data = {
        "dataset_hash": evaluation.dataset_hash,
        "split": evaluation.split,
        "n": evaluation.n,
        "models": {},
    }
    for role, model in evaluation.models.items():
        data["models"][role] = copy.deepcopy(model.__dict__)
    data["models"]["challenger"]["digest"] = "f" * 64
    other = tmp_path / "other_eval"
    atomic_write_json(other / "evaluation.json", {**data, "smoke": True})
    (other / "predictions.parquet").write_bytes((evaluated / "predictions.parquet").read_bytes())
    second = register(RegisterSettings(evaluation_dir=str(other), promotion_margin=-1.0, **SMOKE))
    assert second.created and second.aliases_moved == ["challenger"]
    client = registry.write_client(settings)
    assert str(client.get_model_version_by_alias("sentiment-smoke", "champion").version) == first.version
    assert str(client.get_model_version_by_alias("sentiment-smoke", "challenger").version) == second.version


def test_refused_challenger_leaves_the_registry_untouched(evaluated: Path) -> None:
    settings = RegisterSettings(evaluation_dir=str(evaluated), promotion_margin=1.0, **SMOKE)
    with pytest.raises(GateFailed, match="promotion gate failed: accuracy .* < baseline"):
        register(settings)
    assert _versions(settings) == []


def test_gate_needs_to_beat_champion_too(evaluated: Path) -> None:
    evaluation = read_evaluation(str(evaluated))
    champion = copy.deepcopy(evaluation.models["challenger"])
    champion.role = "champion"
    champion.digest = "f" * 64  # another model with the same scores (the same digest is not compared)
    evaluation.models["champion"] = champion
    predictions = read_predictions(str(evaluated), evaluation)
    predictions["champion_proba"] = predictions["challenger_proba"]
    settings = RegisterSettings(evaluation_dir=str(evaluated), promotion_margin=0.0, **SMOKE)
    decision = decide(evaluation, predictions, settings)
    assert decision.passed  # equal to the champion with zero margin
    decision = decide(evaluation, predictions, settings.model_copy(update={"promotion_margin": 0.01}))
    assert not decision.passed and decision.outcome == "refuse"
    assert any("champion" in r for r in decision.reasons)


def test_a_smoke_evaluation_never_reaches_the_real_model_name(evaluated: Path) -> None:
    settings = RegisterSettings(evaluation_dir=str(evaluated), promotion_margin=-1.0, gate_test="none")
    with pytest.raises(
        ComponentError, match="evaluation is on the smoke subset: refusing to register it as 'sentiment'"
    ):
        register(settings)
    assert _versions(settings) == []


def test_registration_publishes_the_drift_reference_the_drift_job_resolves(
    evaluated: Path, validated_smoke_dir: Path, tmp_path: Path
) -> None:
    """register writes <root>/<version>/{dataset.parquet, model.json}; the drift job's {model_version}
    reference resolves to exactly that folder and model (the hand-off tests/platform checks by name)."""
    from monitoring.drift.reference import resolve_reference
    from monitoring.drift.settings import DriftSettings

    root = tmp_path / "reference" / "sentiment"
    settings = RegisterSettings(
        evaluation_dir=str(evaluated),
        promotion_margin=-1.0,
        validated_dir=str(validated_smoke_dir),
        drift_reference_root=str(root),
        **SMOKE,
    )
    result = register(settings)
    published = root / result.version
    assert (published / "dataset.parquet").read_bytes() == (
        validated_smoke_dir / "dataset.parquet"
    ).read_bytes()
    drift = DriftSettings(reference_uri=f"{root}/{{model_version}}", log_root=str(tmp_path / "logs"))
    resolved = resolve_reference(drift, result.version)
    assert resolved.reference_uri == str(published)
    client = registry.write_client(settings)
    source = client.get_model_version(settings.registered_model, result.version).source
    assert resolved.model_uri == source
    assert (
        resolved.model_digest
        == client.get_model_version(settings.registered_model, result.version).tags["model_digest"]
    )
    with pytest.raises(Exception, match="no drift reference for model version '999'"):
        resolve_reference(drift, "999")


def test_a_drift_reference_root_without_the_validated_data_is_refused(
    evaluated: Path, tmp_path: Path
) -> None:
    settings = RegisterSettings(
        evaluation_dir=str(evaluated),
        promotion_margin=-1.0,
        drift_reference_root=str(tmp_path / "r"),
        **SMOKE,
    )
    with pytest.raises(Exception, match="needs --validated-dir"):
        register(settings)
