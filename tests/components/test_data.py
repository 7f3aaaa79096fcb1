"""Dataset loading, cleaning, splitting, hashing and the smoke subset, on real files and fsspec stores."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pandas as pd
import pytest

from components.common import data
from tests.conftest import RT_CSV


def test_shipped_csv_has_the_published_split_sizes(rt_frame: pd.DataFrame) -> None:
    summary = data.summarise(rt_frame)
    assert summary.split_sizes == {"train": 8530, "validation": 1066, "test": 1066}
    assert summary.positive_share == pytest.approx(0.5)


def test_parquet_and_csv_give_the_same_frame_and_hash(tmp_path: Path, rt_frame: pd.DataFrame) -> None:
    parquet = tmp_path / "rt.parquet"
    rt_frame.to_parquet(parquet, index=False)
    from_parquet = data.clean(data.read_raw(str(parquet)))
    assert data.dataset_hash(from_parquet) == data.dataset_hash(rt_frame)


def test_fsspec_uri_is_read_like_a_local_file(rt_frame: pd.DataFrame) -> None:
    """gs:// goes through fsspec; the in-memory filesystem exercises the same code path offline."""
    with fsspec.open("memory://bucket/rt.csv", "wb") as handle:
        handle.write(RT_CSV.read_bytes())
    remote = data.clean(data.read_raw("memory://bucket/rt.csv"))
    assert data.dataset_hash(remote) == data.dataset_hash(rt_frame)


def test_kaggle_critic_reviews_layout(tmp_path: Path) -> None:
    path = tmp_path / "rotten_tomatoes_critic_reviews.csv"
    pd.DataFrame(
        {
            "rotten_tomatoes_link": ["m/a", "m/b", "m/c", "m/d"],
            "critic_name": ["x", "y", "z", "w"],
            "review_type": ["Fresh", "Rotten", "fresh", "Rotten"],
            "review_content": ["A  triumph.", "A mess.", "Lovely   work", ""],
        }
    ).to_csv(path, index=False)
    frame = data.clean(data.read_raw(str(path)), seed=1)
    assert sorted(frame["text"]) == ["A mess.", "A triumph.", "Lovely work"]
    assert dict(zip(frame["text"], frame["label"], strict=True)) == {
        "A triumph.": 1,
        "A mess.": 0,
        "Lovely work": 1,
    }
    assert set(frame["split"]) <= set(data.SPLITS)


def test_cleaning_normalises_and_drops_empty_duplicate_and_conflicting() -> None:
    raw = pd.DataFrame(
        {
            "text": ["  good\u0097 film ", "good film", "bad\tfilm", "", "e\u0301te", "same", "same", None],
            "label": ["1", "1", "0", "1", "1", "1", "0", "1"],
        }
    )
    frame = data.clean(raw)
    assert list(frame["text"]) == ["good film", "bad film", "\u00e9te"]
    assert list(frame["label"]) == [1, 0, 1]


def test_seeded_split_is_deterministic_and_stratified(rt_frame: pd.DataFrame) -> None:
    unsplit = rt_frame[["text", "label"]]
    first = data.clean(unsplit, seed=7)
    again = data.clean(unsplit, seed=7)
    other = data.clean(unsplit, seed=8)
    assert data.dataset_hash(first) == data.dataset_hash(again) != data.dataset_hash(other)
    shares = first.groupby("split")["label"].mean()
    assert shares.between(0.45, 0.55).all()
    assert (first["split"] == "test").sum() == pytest.approx(len(first) * 0.1, abs=2)


def test_hash_changes_with_any_row(rt_frame: pd.DataFrame) -> None:
    changed = rt_frame.copy()
    changed.loc[0, "label"] = 1 - changed.loc[0, "label"]
    assert data.dataset_hash(changed) != data.dataset_hash(rt_frame)


def test_smoke_subset_is_under_one_percent_and_stratified(rt_frame: pd.DataFrame) -> None:
    smoke = data.smoke_subset(rt_frame)
    assert len(smoke) < 0.01 * len(rt_frame)
    counts = smoke.groupby(["split", "label"]).size()
    assert len(counts) == 6 and counts.min() >= 4
    assert counts.loc["train"].iloc[0] == counts.loc["train"].iloc[1]


def test_unreadable_sources_give_readable_errors(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("text,label\ncaf\xe9 society,1\n".encode("latin-1"))
    with pytest.raises(data.DataError, match="not valid UTF-8"):
        data.read_raw(str(latin1))
    with pytest.raises(data.DataError, match="not found"):
        data.read_raw(str(tmp_path / "missing.csv"))
    with pytest.raises(data.DataError, match="cannot load hub dataset"):
        data.read_raw("no-such-org/no-such-dataset")


def test_encodings_are_repaired_before_deduplication() -> None:
    raw = pd.DataFrame(
        {
            "text": [
                "It\u00e2\u20ac\u2122s caf\u00c3\u00a9 society",
                "It\u2019s caf\u00e9 society",
                "Tom &amp; Jerry",
                "k",
            ],
            "label": ["1", "1", "0", "1"],
        }
    )
    result = data.clean_rows(raw)
    assert list(result.cleaned["text"]) == ["It\u2019s caf\u00e9 society", "Tom & Jerry"]
    assert result.counts["duplicate"] == 1 and result.counts["too_short"] == 1
    assert list(result.quarantine["row"]) == [1, 3]


def test_conflicting_texts_keep_the_majority_label_or_go_on_a_tie() -> None:
    raw = pd.DataFrame({"text": ["a b", "a b", "a b", "c d", "c d"], "label": [1, 0, 1, 0, 1]})
    result = data.clean_rows(raw)
    assert result.cleaned.to_dict("list") == {"text": ["a b"], "label": [1]}
    assert dict(zip(result.quarantine["row"], result.quarantine["reason"], strict=True)) == {
        1: "conflicting_label",
        2: "duplicate",
        3: "conflicting_label",
        4: "conflicting_label",
    }


def test_group_split_keeps_groups_whole_and_rows_without_group_alone() -> None:
    frame = pd.DataFrame(
        {
            "text": [f"review {i}" for i in range(600)],
            "label": [i % 2 for i in range(600)],
            "group": [f"m/{i // 7}" if i < 560 else "" for i in range(600)],
        }
    )
    split = data.finish_splits(frame, seed=3)
    assert split.groupby("group")["split"].nunique().drop("").max() == 1
    assert (split["split"] == "test").sum() == pytest.approx(60, abs=7)  # overshoots by less than a group
    assert split.loc[split["group"] == "", "split"].nunique() > 1  # groupless rows are spread like rows


def test_iter_split_streams_one_split_in_batches(tmp_path: Path, rt_frame: pd.DataFrame) -> None:
    path = tmp_path / "dataset.parquet"
    data.write_validated(rt_frame, path)
    batches = list(data.iter_split(path, "test", batch_size=100))
    assert max(len(b) for b in batches) <= 100 and list(batches[0].columns) == ["text", "label"]
    streamed = pd.concat(batches, ignore_index=True)
    expected = rt_frame[rt_frame["split"] == "test"][["text", "label"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(streamed, expected)
    # A row cap ends the stream after exactly that many of the split's rows, in order.
    capped = pd.concat(list(data.iter_split(path, "test", batch_size=100, max_rows=150)), ignore_index=True)
    pd.testing.assert_frame_equal(capped, expected.iloc[:150])
