"""The validation gate on good and corrupted data, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from components.common.settings import GateFailed
from components.validate.gate import ValidateSettings, require_success, validate_dataset
from tests.conftest import RT_CSV


def run_validate(dataset: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "components.validate",
            "--dataset-uri",
            str(dataset),
            "--output-dir",
            str(out),
            "--track",
            "false",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_full_data_passes_and_writes_dataset_and_reports(tmp_path: Path) -> None:
    result = validate_dataset(
        ValidateSettings(dataset_uri=str(RT_CSV), output_dir=str(tmp_path), track=False)
    )
    assert result.success, result.reason
    assert result.split_sizes == {"train": 8530, "validation": 1066, "test": 1066}
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["success"] and len(report["checks"]) >= 10
    assert "PASSED" in (tmp_path / "validation.html").read_text()
    assert len(pd.read_parquet(tmp_path / "dataset.parquet")) == 10662
    assert json.loads((tmp_path / "dataset.json").read_text())["dataset_hash"] == result.dataset_hash


def _corrupt(rt: pd.DataFrame, kind: str, path: Path) -> None:
    frame = rt.copy()
    if kind == "missing_column":
        frame = frame.drop(columns=["label"])
    elif kind == "bad_labels":
        frame.loc[frame.index[::7], "label"] = 2
    elif kind == "empty_texts":
        frame.loc[frame.index[::5], "text"] = "   "
    elif kind == "duplicates":
        frame = pd.concat([frame, frame.head(2000)])
    elif kind == "conflicting":
        flipped = frame.head(400).assign(label=lambda f: 1 - f["label"])
        frame = pd.concat([frame, flipped])
    elif kind == "imbalanced":
        frame = frame[(frame["label"] == 1) | (frame.index % 5 == 0)]
    elif kind == "tiny_split":
        frame = frame[(frame["split"] != "test") | (frame.index % 10 == 0)]
    if kind == "wrong_encoding":
        path.write_bytes(
            frame.to_csv(index=False).replace("the", "th\u00e9").encode("latin-1", errors="replace")
        )
    else:
        frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("missing_column", "missing required column(s) label"),
        ("bad_labels", "share of rows dropped as invalid_label 14.29% exceeds max_invalid_label_share 0.10%"),
        ("empty_texts", "share of rows dropped as empty 20.01% exceeds max_empty_share 10.00%"),
        ("duplicates", "share of rows dropped as duplicate 15.80% exceeds max_duplicate_share 10.00%"),
        (
            "conflicting",
            "share of rows dropped as conflicting_label 7.23% exceeds max_conflicting_label_share",
        ),
        ("imbalanced", "expect_column_mean_to_be_between failed on label"),
        ("tiny_split", "expect_column_values_to_be_between failed on test_rows"),
        ("wrong_encoding", "is not valid UTF-8"),
    ],
)
def test_corrupted_csv_stops_at_the_gate(tmp_path: Path, kind: str, reason: str) -> None:
    rt = pd.read_csv(RT_CSV, keep_default_na=False)
    source = tmp_path / f"{kind}.csv"
    _corrupt(rt, kind, source)
    out = tmp_path / "validated"
    out.mkdir()
    (out / "dataset.parquet").write_bytes(b"stale output of an earlier run")
    result = validate_dataset(ValidateSettings(dataset_uri=str(source), output_dir=str(out), track=False))
    assert not result.success and reason in result.reason
    with pytest.raises(GateFailed, match="validation gate failed"):
        require_success(result)
    assert not (out / "dataset.parquet").exists(), (
        "a failed gate must not leave a dataset for downstream steps"
    )
    assert json.loads((out / "validation.json").read_text())["success"] is False
    assert "FAILED" in (out / "validation.html").read_text()


def test_cli_exits_2_with_one_readable_line(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    _corrupt(pd.read_csv(RT_CSV, keep_default_na=False), "bad_labels", source)
    proc = run_validate(source, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line == (
        "error: validation gate failed: share of rows dropped as invalid_label 14.29% exceeds "
        "max_invalid_label_share 0.10%"
    )
    assert "Traceback" not in proc.stderr


def test_cli_rejects_an_invalid_setting(tmp_path: Path) -> None:
    proc = run_validate(RT_CSV, tmp_path, "--max-duplicate-share", "lots")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: invalid setting 'max_duplicate_share'")
