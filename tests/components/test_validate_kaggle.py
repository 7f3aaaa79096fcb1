"""The Kaggle critic-review layout through validate: clean, quarantine with reasons, gate on the shares,
split by film without leakage. Files come from the synthetic generator (benchmarks/synth_kaggle.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.synth_kaggle import Defects, generate
from components.common import data
from components.validate.gate import (
    ValidateSettings,
    _leakage_frame,
    _Runner,
    _suites,
    validate_dataset,
)

ROWS = 8000


@pytest.fixture(scope="module")
def kaggle_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kaggle") / "rotten_tomatoes_critic_reviews.csv"
    generate(ROWS, seed=3).to_csv(path, index=False)
    return path


def _validate(source: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components.validate", "--dataset-uri", str(source), "--output-dir", str(out)]
        + ["--track", "false", *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_messy_kaggle_file_passes_with_bad_rows_quarantined_and_counted(
    kaggle_csv: Path, tmp_path: Path
) -> None:
    raw = pd.read_csv(kaggle_csv, keep_default_na=False, dtype=str)
    proc = _validate(kaggle_csv, tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "validation.json").read_text())
    counts = report["cleaning"]["counts"]
    defects = Defects()
    assert counts["empty"] == int(ROWS * defects.empty) == (raw["review_content"].str.strip() == "").sum()
    assert counts["conflicting_label"] >= 2 * int(ROWS * defects.conflicting)  # ties: both copies go
    assert counts["duplicate"] >= int(ROWS * defects.duplicate) - counts["conflicting_label"]
    assert f"dropped empty {counts['empty']:,}" in proc.stdout

    quarantine = pd.read_parquet(tmp_path / "quarantine.parquet")
    assert len(quarantine) == sum(counts.values()) == ROWS - report["cleaning"]["kept_rows"]
    assert quarantine["reason"].value_counts().to_dict() == {k: v for k, v in counts.items() if v}
    # Every quarantined row points back at the source row it came from, with a true reason.
    source_text = raw["review_content"].iloc[quarantine["row"]].to_numpy()
    assert list(quarantine["text"]) == list(source_text)
    empties = quarantine[quarantine["reason"] == "empty"]
    assert (raw["review_content"].iloc[empties["row"]].str.strip() == "").all()
    dataset = pd.read_parquet(tmp_path / "dataset.parquet")
    for reason in ("duplicate", "conflicting_label"):
        rows = quarantine[quarantine["reason"] == reason]
        texts = raw["review_content"].iloc[rows["row"]].map(data.normalise_text)
        # A duplicate's text is kept once; a tied conflicting text is not kept at all.
        assert texts.isin(dataset["text"]).all() == (reason == "duplicate")
    assert len(dataset) == report["cleaning"]["kept_rows"] and dataset["text"].is_unique

    page = (tmp_path / "validation.html").read_text()
    assert "PASSED" in page and f"<td>empty</td><td>{counts['empty']:,}</td>" in page
    example = report["cleaning"]["examples"]["duplicate"][0]["text"]
    assert example and example.strip()[:40].replace("&", "&amp;") in page.replace("&#x27;", "'")


def test_shares_over_their_bounds_stop_with_one_line_naming_the_share(tmp_path: Path) -> None:
    source = tmp_path / "too_many_empty.csv"
    generate(ROWS, seed=4, defects=Defects(empty=0.2)).to_csv(source, index=False)
    proc = _validate(source, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == (
        "error: validation gate failed: share of rows dropped as empty 20.00% exceeds max_empty_share 10.00%"
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "dataset.parquet").exists()
    assert len(pd.read_parquet(tmp_path / "out" / "quarantine.parquet")) >= 0.2 * ROWS
    # The bound is a setting: raised by flag (or SENTIMENTOPS_MAX_EMPTY_SHARE), the same file passes.
    assert _validate(source, tmp_path / "out", "--max-empty-share", "0.25").returncode == 0


def test_group_split_puts_every_film_in_one_split_and_no_held_out_text_in_train(
    kaggle_csv: Path, tmp_path: Path
) -> None:
    result = validate_dataset(
        ValidateSettings(dataset_uri=str(kaggle_csv), output_dir=str(tmp_path), track=False)
    )
    assert result.success, result.reason
    assert result.cleaning["split_by"] == "group"
    dataset = pd.read_parquet(tmp_path / "dataset.parquet")
    splits_per_film = dataset.groupby("group")["split"].nunique()
    assert splits_per_film.max() == 1 and dataset["group"].str.startswith("m/film_").all()
    assert set(dataset["split"]) == set(data.SPLITS)
    train = set(dataset.loc[dataset["split"] == "train", "text"])
    assert not dataset.loc[dataset["split"] != "train", "text"].isin(train).any()
    leakage = [c for c in result.checks if c["suite"] == "split_leakage"]
    assert {c["kwargs"]["column"] for c in leakage} == {"text_in_train", "group_in_two_splits"}
    assert all(c["success"] for c in leakage)
    # Deterministic for the seed; another seed puts other films in test.
    again = data.finish_splits(data.clean_rows(data.read_raw(str(kaggle_csv))).cleaned, seed=42)
    other = data.finish_splits(data.clean_rows(data.read_raw(str(kaggle_csv))).cleaned, seed=7)
    assert data.dataset_hash(again) == result.dataset_hash != data.dataset_hash(other)


def test_leakage_checks_fail_on_a_split_that_leaks() -> None:
    frame = pd.DataFrame(
        {
            "text": ["a fine film", "a dull film", "a fine film", "quite good"],
            "label": [1, 0, 1, 1],
            "split": ["train", "train", "test", "validation"],
            "group": ["m/x", "m/y", "m/z", "m/y"],
        }
    )
    runner = _Runner()
    suite = _suites(ValidateSettings(track=False), has_group=True)["split_leakage"]
    checks = {c["kwargs"]["column"]: c for c in runner.run(suite, _leakage_frame(frame))}
    assert not checks["text_in_train"]["success"] and checks["text_in_train"]["unexpected_count"] == 1
    assert not checks["group_in_two_splits"]["success"]
    assert checks["group_in_two_splits"]["unexpected_count"] == 1


def test_generator_is_deterministic_and_refuses_full_size_files_in_the_repository(tmp_path: Path) -> None:
    from benchmarks.synth_kaggle import REPO, check_destination

    first, again = generate(500, seed=1), generate(500, seed=1)
    pd.testing.assert_frame_equal(first, again)
    assert first["rotten_tomatoes_link"].value_counts().max() > 10  # many reviews per film
    check_destination(tmp_path / "big.csv", 1_130_017)
    with pytest.raises(SystemExit, match="refusing to write 1,130,017 generated rows"):
        check_destination(REPO / "data" / "big.csv", 1_130_017)
