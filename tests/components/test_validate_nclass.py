"""N-class tasks through validate: the label map, declared classes, per-class minimums, the four-class UCI
dataset built from data in the repository, and fine-grained classes from Kaggle review scores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.synth_kaggle import generate
from components.common import data, datasets
from components.common.labels import LabelMap, LabelMapError, as_matrix, parse_names, predicted_ids, resolve
from tests.components.test_validate_kaggle import _validate
from tests.conftest import RT_CSV

UCI_DIR = datasets.UCI_SOURCE_SENTIMENT_DIR
UCI_CSV = UCI_DIR / datasets.UCI_SOURCE_SENTIMENT_CSV
UCI_MAP = UCI_DIR / "label_map.json"
UCI_TASK = ("--label-map", str(UCI_MAP), "--min-train-rows", "800", "--min-eval-rows", "350")
UCI_TASK += ("--min-class-count", "50")


def test_label_map_names_ids_and_json() -> None:
    four = LabelMap(("a-neg", "a-pos", "b-neg", "b-pos"))
    assert four.num_classes == 4 and not four.is_binary and LabelMap.binary().is_binary
    assert [four.index(v) for v in ("b-neg", "B-POS", 1, "0", "3.0")] == [2, 3, 1, 0, 3]
    assert four.name(2) == "b-neg"
    for bad in ("c-neg", 4, "-1", "1.5", ""):
        with pytest.raises(LabelMapError, match="not one of the declared classes"):
            four.index(bad)
    assert LabelMap.from_json(four.to_json()) == four == parse_names(" a-neg, a-pos ,b-neg,b-pos")
    assert LabelMap.from_json('["x", "y"]').names == ("x", "y")
    assert four.sha256() == "sha256:" + hashlib.sha256(four.to_json().encode()).hexdigest()
    ids = four.encode(pd.Series(["b-pos", "2", 0, "zzz", None], dtype=object))
    assert ids.iloc[:3].tolist() == [3.0, 2.0, 0.0] and ids.iloc[3:].isna().all()
    with pytest.raises(LabelMapError, match="numeric class name must equal its id"):
        LabelMap(("1", "2", "3"))
    with pytest.raises(LabelMapError, match="unique"):
        LabelMap(("a", "a"))
    with pytest.raises(LabelMapError, match="at least 2"):
        parse_names("only")
    assert resolve("", "") == LabelMap.binary() == resolve("negative,positive")
    assert resolve("x,y", str(UCI_MAP)).num_classes == 4


def test_probability_vectors_and_matrices() -> None:
    p = np.array([0.2, 0.5, 0.9])
    assert as_matrix(p).tolist() == [[0.8, 0.2], [0.5, 0.5], [0.09999999999999998, 0.9]]
    assert predicted_ids(p).tolist() == predicted_ids(as_matrix(p)).tolist() == [0, 1, 1]
    assert predicted_ids(np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]])).tolist() == [2, 0]
    with pytest.raises(ValueError, match="shape"):
        as_matrix(np.zeros((2, 1)))


def test_one_predicted_class_rule_for_serving_metrics_payload_log_and_drift() -> None:
    """An exact tie in a two-class task with its own names: every reader of a prediction picks class 1."""
    from monitoring.drift.features import Predictions
    from serving.metrics import predicted_classes

    names = ("spam", "ham")
    tie = np.array([[0.5, 0.5], [0.7, 0.3]])
    assert predicted_ids(tie).tolist() == [1, 0]
    assert predicted_classes(names, tie).tolist() == [1, 0]
    assert Predictions.from_matrix(names, tie).label.tolist() == ["ham", "spam"]
    three = np.array([[0.2, 0.4, 0.4], [0.1, 0.2, 0.7]])
    assert predicted_classes(("a", "b", "c"), three).tolist() == predicted_ids(three).tolist() == [1, 2]
    with pytest.raises(ValueError, match="3 class probabilities for 2 classes"):
        predicted_classes(names, three)


def test_binary_hash_and_cleaning_are_unchanged_by_the_label_map() -> None:
    raw = data.read_raw(str(RT_CSV))
    plain = data.clean(raw)
    assert data.dataset_hash(plain) == data.dataset_hash(plain, LabelMap.binary())
    # Labels by name are class ids too; the same rows give the same hash.
    named = raw.assign(label=raw["label"].astype(int).map({0: "negative", 1: "positive"}))
    assert data.dataset_hash(data.clean(named)) == data.dataset_hash(plain)
    # A non-binary task folds its label map into the hash.
    other = LabelMap(("neg", "pos"))
    assert data.dataset_hash(plain, other) != data.dataset_hash(plain)


def test_conflicting_labels_with_more_than_two_classes() -> None:
    three = LabelMap(("x", "y", "z"))
    frame = pd.DataFrame(
        {
            "text": ["aa", "aa", "aa", "bb", "bb", "cc", "cc", "dd"],
            "label": ["x", "y", "y", "x", "z", "z", "z", "w"],
        }
    )
    result = data.clean_rows(frame, label_map=three)
    reasons = dict(zip(result.quarantine["row"], result.quarantine["reason"], strict=True))
    # "aa": majority y (row 0 is the conflicting minority); "bb": a tie, both dropped; "cc": a duplicate.
    assert reasons == {
        0: "conflicting_label",
        2: "duplicate",
        3: "conflicting_label",
        4: "conflicting_label",
        6: "duplicate",
        7: "invalid_label",
    }
    assert result.cleaned[["text", "label"]].values.tolist() == [["aa", 1], ["cc", 2]]


def test_uci_dataset_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    hashes = datasets.build_uci_source_sentiment(tmp_path)
    for name, digest in hashes.items():
        assert hashlib.sha256((UCI_DIR / name).read_bytes()).hexdigest() == digest, name
        assert digest in (UCI_DIR / "PROVENANCE.md").read_text(), name
    frame = pd.read_csv(UCI_CSV, keep_default_na=False)
    counts = pd.crosstab(frame["label"], frame["split"])
    assert list(counts.index) == list(LabelMap.from_json(UCI_MAP.read_text()).names)
    assert (
        (counts["train"] == 250).all()
        and (counts["test"] == 150).all()
        and (counts["validation"] == 100).all()
    )


def test_four_class_uci_task_passes_with_its_settings(tmp_path: Path) -> None:
    proc = _validate(UCI_CSV, tmp_path, *UCI_TASK)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "dataset.json").read_text())
    label_map = LabelMap.from_json((tmp_path / "label_map.json").read_text())
    assert label_map.names == ("amazon-negative", "amazon-positive", "imdb-negative", "imdb-positive")
    assert summary["labels"] == list(label_map.names) and summary["label_map_sha256"] == label_map.sha256()
    assert min(summary["class_counts"].values()) >= 490 and summary["split_sizes"]["test"] >= 500
    dataset = pd.read_parquet(tmp_path / "dataset.parquet")
    assert sorted(dataset["label"].unique().tolist()) == [0, 1, 2, 3]
    assert summary["dataset_hash"] == data.dataset_hash(dataset, label_map) != data.dataset_hash(dataset)
    # With the binary defaults the same file is refused: its labels are not negative/positive.
    refused = _validate(UCI_CSV, tmp_path / "binary")
    assert refused.returncode == 2
    assert "share of rows dropped as invalid_label 100.00% exceeds" in refused.stderr


def test_a_label_outside_the_declared_classes_stops_at_validate(tmp_path: Path) -> None:
    frame = pd.read_csv(UCI_CSV, keep_default_na=False)
    frame.loc[frame.index[::10], "label"] = "yelp-positive"  # not one of the four declared classes
    source = tmp_path / "undeclared.csv"
    frame.to_csv(source, index=False)
    proc = _validate(source, tmp_path / "out", *UCI_TASK)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: validation gate failed: share of rows dropped as invalid_label 10.00% exceeds "
        "max_invalid_label_share 0.10%"
    )
    assert "Traceback" not in proc.stderr and not (tmp_path / "out" / "dataset.parquet").exists()
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    assert set(quarantine.loc[quarantine["reason"] == "invalid_label", "label"]) == {"yelp-positive"}


def test_a_class_below_the_minimum_count_stops_at_validate(tmp_path: Path) -> None:
    frame = pd.read_csv(UCI_CSV, keep_default_na=False)
    rare = frame[frame["label"] == "imdb-negative"]
    frame = frame.drop(rare.index[30:])  # 30 left, below --min-class-count 50
    source = tmp_path / "rare.csv"
    frame.to_csv(source, index=False)
    smaller = (*UCI_TASK, "--min-train-rows", "700", "--min-eval-rows", "300")
    proc = _validate(source, tmp_path / "out", *smaller)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: validation gate failed: class(es) below min_class_count 50 rows: 'imdb-negative' 30"
    )
    assert not (tmp_path / "out" / "dataset.parquet").exists()
    # 30 of the 1,515 rows kept is 1.98%: a lower count minimum passes, a higher share minimum refuses.
    assert _validate(source, tmp_path / "out", *smaller, "--min-class-count", "20").returncode == 0
    proc = _validate(
        source, tmp_path / "out", *smaller, "--min-class-count", "20", "--min-class-share", "0.05"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: validation gate failed: class share outside min_class_share 5.00%..max_class_share 90.00%: "
        "'imdb-negative' 1.98%"
    )


@pytest.mark.parametrize(
    ("score", "normalised", "label"),
    [
        ("3/5", 0.6, "score-3"),
        ("3.5/5", 0.7, "score-4"),
        ("8/10", 0.8, "score-4"),
        (" 8.5 / 10 ", 0.85, "score-5"),
        ("4 out of 5", 0.8, "score-4"),
        ("1/4", 0.25, "score-2"),
        ("0/5", 0.0, "score-1"),
        ("5/5", 1.0, "score-5"),
        ("B+", 0.825, "score-5"),
        ("b", 0.75, "score-4"),
        ("C-", 0.425, "score-3"),
        ("F", 0.0, "score-1"),
        ("A+", 1.0, "score-5"),
    ],
)
def test_review_scores_parse_to_documented_buckets(score: str, normalised: float, label: str) -> None:
    assert data.parse_review_score(score) == pytest.approx(normalised)
    assert data.score_class(score) == label


@pytest.mark.parametrize("garbage", ["", "3", "6/5", "3/0", "B++", "great", "½", "-1/5", None, 7])
def test_review_score_garbage_is_not_a_class(garbage: object) -> None:
    assert data.parse_review_score(garbage) is None and data.score_class(garbage) is None


def test_kaggle_scores_give_five_classes_and_garbage_is_quarantined(tmp_path: Path) -> None:
    frame = generate(4000, seed=5)
    scores = np.array(["3/5", "B+", "8/10", "4 out of 5", "1/10", "F", "2/4", "A", "2/5"], dtype=object)
    # The score follows the (normalised) text, so the generator's repeated texts keep one score.
    texts = frame["review_content"].map(data.normalise_text)
    frame["review_score"] = scores[pd.util.hash_pandas_object(texts, index=False).to_numpy() % len(scores)]
    frame.loc[frame.index[5::400], "review_score"] = "not a score"
    source = tmp_path / "rotten_tomatoes_critic_reviews.csv"
    frame.to_csv(source, index=False)
    names = ",".join(data.KAGGLE_SCORE_CLASSES)
    task = ("--kaggle-label", "review_score", "--labels", names, "--min-train-rows", "100")
    task += ("--min-eval-rows", "100", "--max-invalid-label-share", "0.01")
    proc = _validate(source, tmp_path / "out", *task)
    assert proc.returncode == 0, proc.stderr
    quarantine = pd.read_parquet(tmp_path / "out" / "quarantine.parquet")
    invalid = quarantine[quarantine["reason"] == "invalid_label"]
    garbage = (frame["review_score"] == "not a score") & (texts != "")  # an empty text is "empty" first
    assert (
        len(invalid) == garbage.sum() >= 5
        and (invalid["label"] == "unparsed review_score 'not a score'").all()
    )
    summary = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert summary["labels"] == list(data.KAGGLE_SCORE_CLASSES)
    assert all(summary["class_counts"][c] > 0 for c in data.KAGGLE_SCORE_CLASSES)
    # Without a matching label map the score classes are not declared: refused.
    refused = _validate(source, tmp_path / "refused", "--kaggle-label", "review_score")
    assert refused.returncode == 2 and "invalid_label" in refused.stderr
