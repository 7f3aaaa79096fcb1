"""The drift job on a four-class task (UCI sentences: source x sentiment), on real JSON-lines payload logs:
a shift in the predicted-class mix is flagged (summary.json and the Pushgateway), an unshifted window is not;
per-class confidence drift; old binary and N-class records side by side in the reader."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from components.common.data import write_validated
from monitoring.drift.job import run_drift
from monitoring.drift.logs import read_window, records_for, write_log_file
from monitoring.drift.settings import DriftSettings
from tests.conftest import UCI_CSV

END = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CLASSES = ("amazon-negative", "amazon-positive", "imdb-negative", "imdb-positive")


@pytest.fixture(scope="module")
def four_class() -> pd.DataFrame:
    """The amazon and imdb UCI sentences with a four-class id, shuffled; ``half`` splits reference/current."""
    frame = pd.read_csv(UCI_CSV, dtype=str, keep_default_na=False)
    frame = frame[frame["source"].isin(["amazon", "imdb"])].sample(frac=1.0, random_state=7)
    frame["class_id"] = frame["source"].map({"amazon": 0, "imdb": 2}) + frame["label"].astype(int)
    frame["half"] = np.arange(len(frame)) % 2
    return frame.reset_index(drop=True)


def _proba(class_ids: np.ndarray, confidence: float | np.ndarray, seed: int) -> np.ndarray:
    """Class probabilities peaked on ``class_ids`` (noisy confidence around ``confidence``)."""
    rng = np.random.default_rng(seed)
    conf = np.clip(
        np.broadcast_to(confidence, class_ids.shape) + rng.normal(0, 0.05, len(class_ids)), 0.3, 0.97
    )
    proba = np.repeat(((1 - conf) / 3)[:, None], 4, axis=1)
    proba[np.arange(len(class_ids)), class_ids] = conf
    return proba


def _reference(tmp_path: Path, frame: pd.DataFrame) -> Path:
    ref = frame[frame["half"] == 0]
    proba = _proba(ref["class_id"].to_numpy(), 0.75, seed=1)
    table = pd.DataFrame(
        {
            "text": ref["text"],
            "probabilities": [json.dumps(dict(zip(CLASSES, p, strict=True))) for p in proba],
        }
    )
    path = tmp_path / "reference.parquet"
    write_validated(table, path)
    return path


def _run(tmp_path: Path, frame: pd.DataFrame, class_ids: np.ndarray, confidence: np.ndarray | float, **kw):  # noqa: ANN003, ANN202
    current = frame[frame["half"] == 1]
    proba = _proba(class_ids, confidence, seed=2)
    start = END - timedelta(hours=20)
    records = records_for(current["text"], proba, start, timedelta(hours=20) / len(current), names=CLASSES)
    write_log_file(tmp_path / "logs", "sentiment", records)
    settings = DriftSettings(
        log_root=str(tmp_path / "logs"),
        reference_uri=str(_reference(tmp_path, frame)),
        window_end=END.isoformat(),
        window_hours=24,
        **kw,
    )
    return run_drift(settings)


def test_unshifted_four_class_window_is_not_flagged(tmp_path: Path, four_class: pd.DataFrame) -> None:
    ids = four_class[four_class["half"] == 1]["class_id"].to_numpy()
    result = _run(tmp_path, four_class, ids, 0.75)
    assert result.status == "ok" and result.current_rows == len(ids)
    assert "probability" not in result.features  # P(positive) is a binary feature only
    assert result.class_mix["classes"] == list(CLASSES)
    assert result.class_mix["drifted"] is False and result.class_mix["score"] < 0.05
    assert not any(c["drifted"] for c in result.class_confidence.values()), result.class_confidence
    assert set(result.class_confidence) == set(CLASSES)
    summary = json.loads((Path(result.output_uri) / "summary.json").read_text())
    assert summary["class_mix"]["drifted"] is False


def test_shift_in_the_predicted_class_mix_is_flagged_and_pushed(
    tmp_path: Path, four_class: pd.DataFrame, pushgateway: str
) -> None:
    ids = four_class[four_class["half"] == 1]["class_id"].to_numpy().copy()
    ids[np.arange(len(ids)) % 10 < 6] = 3  # 60 % of the traffic now predicted imdb-positive
    confidence = np.where(ids == 0, 0.45, 0.75)  # and the model is unsure of amazon-negative
    result = _run(
        tmp_path, four_class, ids, confidence, pushgateway_url=pushgateway, cat_method="jensenshannon"
    )
    mix = result.class_mix
    assert mix["method"] == "jensenshannon" and mix["drifted"] is True and mix["score"] > mix["threshold"]
    assert mix["current_shares"]["imdb-positive"] > 0.6 > 0.3 > mix["reference_shares"]["imdb-positive"]
    assert mix["max_share_shift"] > 0.3
    assert result.features["predicted_label"].drifted is True
    assert result.class_confidence["amazon-negative"]["drifted"] is True
    assert result.class_confidence["amazon-positive"]["drifted"] is False
    summary = json.loads((Path(result.output_uri) / "summary.json").read_text())
    assert summary["class_mix"]["drifted"] is True and summary["class_mix"]["score"] == pytest.approx(
        mix["score"]
    )
    assert result.pushed is True, result.push_error
    text = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    assert (
        'sentiment_drift_class_mix_drifted{instance="",job="sentiment_drift",model_name="sentiment"} 1'
        in text
    )
    assert 'sentiment_drift_class_share{instance="",job="sentiment_drift",label="imdb-positive"' in text
    assert (
        'sentiment_drift_class_confidence_score{instance="",job="sentiment_drift",label="amazon-negative"'
        in text
    )


def test_old_binary_and_n_class_records_are_read_alike(tmp_path: Path) -> None:
    texts = [f"text {i}" for i in range(4)]
    probs = np.array([0.2, 0.5, 0.9, 0.6])
    step = timedelta(minutes=1)
    write_log_file(tmp_path, "sentiment", records_for(texts, probs, END - timedelta(hours=2), step))
    binary = np.column_stack([1 - probs, probs])
    new = records_for(texts, binary, END - timedelta(hours=1), step, names=("negative", "positive"))
    write_log_file(tmp_path, "sentiment", new, seq=1)
    four = records_for(
        texts, np.eye(4)[[3, 1, 2, 0]] * 0.7 + 0.075, END - timedelta(minutes=30), step, names=CLASSES
    )
    write_log_file(tmp_path, "other", four)
    frame = read_window(str(tmp_path), "sentiment", END - timedelta(hours=24), END).frame
    old, current = frame.iloc[:4], frame.iloc[4:]
    for part in (old, current):
        assert part["label"].tolist() == ["negative", "positive", "positive", "positive"]
        assert part["class_index"].tolist() == [0, 1, 1, 1]
        assert part["probability"].tolist() == pytest.approx(probs.tolist())
        assert part["confidence"].tolist() == pytest.approx([0.8, 0.5, 0.9, 0.6])
    other = read_window(str(tmp_path), "other", END - timedelta(hours=24), END).frame
    assert other["label"].tolist() == ["imdb-positive", "amazon-positive", "imdb-negative", "amazon-negative"]
    assert other["class_index"].tolist() == [3, 1, 2, 0] and other["probability"].isna().all()
    assert other["confidence"].tolist() == pytest.approx([0.775] * 4)


def test_reference_predictions_of_a_four_class_model_are_named_by_its_labels(
    tmp_path: Path, four_class_model_dirs: dict[str, Path], four_class_validated_dir: Path
) -> None:
    """No probabilities in the reference: the model's (n, 4) output is named by its own label map, cached."""
    from components.common.models import load_model

    model = load_model(four_class_model_dirs["tfidf"])
    dataset = pd.read_parquet(four_class_validated_dir / "dataset.parquet")
    current = dataset[dataset["split"] == "test"]
    start = END - timedelta(hours=20)
    step = timedelta(hours=20) / len(current)
    proba = model.predict_proba(current["text"].tolist())
    write_log_file(
        tmp_path / "logs", "sentiment", records_for(current["text"], proba, start, step, names=CLASSES)
    )
    settings = DriftSettings(
        log_root=str(tmp_path / "logs"),
        reference_uri=str(four_class_validated_dir / "dataset.parquet"),
        model_uri=str(four_class_model_dirs["tfidf"]),
        allow_unpinned_model=True,
        window_end=END.isoformat(),
        window_hours=24,
    )
    first = run_drift(settings)
    assert first.status == "ok" and first.class_mix["classes"] == list(CLASSES)
    assert first.class_mix["drifted"] is False  # the same model on the same task's held-out rows
    cached = list((tmp_path / "logs" / "sentiment" / "drift" / "reference-cache").glob("*.parquet"))
    assert len(cached) == 1 and json.loads(pd.read_parquet(cached[0])["class_names"].iloc[0]) == list(CLASSES)
    again = run_drift(settings)  # from the cache: the same names, the same reference shares
    assert again.class_mix["reference_shares"] == pytest.approx(first.class_mix["reference_shares"])
