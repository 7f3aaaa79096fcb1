"""Time the drift job on 10k and 100k logged rows.

``python benchmarks/drift_bench.py [--rows 10000 100000] [--repeat 1]``

Builds a reference parquet (the full Rotten Tomatoes data with a ``probability`` column from a TF-IDF +
LogisticRegression fitted on the train split, so all 8 feature tests run), writes payload logs in the
contract layout (half RT test reviews, half UCI out-of-domain sentences, sampled with replacement, over
24 hourly partitions), then times ``run_drift`` end to end (read logs, features, Evidently reports, HTML
and summary writing) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def _reference(tmp: Path) -> tuple[Path, object]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from components.common.data import clean, read_raw, write_validated

    frame = clean(read_raw(str(REPO / "data" / "rotten_tomatoes" / "rotten_tomatoes.csv")))
    train = frame[frame["split"] == "train"]
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(C=4, max_iter=2000)
    )
    model.fit(train["text"], train["label"])
    frame["probability"] = model.predict_proba(frame["text"])[:, 1]
    path = tmp / "reference.parquet"
    write_validated(frame, path)
    return path, model


def _logs(tmp: Path, rows: int, model: object, end: datetime) -> Path:
    from components.common.data import clean, read_raw
    from monitoring.drift.logs import records_for, write_log_file

    rt = clean(read_raw(str(REPO / "data" / "rotten_tomatoes" / "rotten_tomatoes.csv")))
    uci = pd.read_csv(
        REPO / "data" / "uci_sentiment_labelled_sentences" / "uci_sentiment_labelled_sentences.csv"
    )
    rng = np.random.default_rng(0)
    pool = rt[rt["split"] == "test"]["text"].tolist() + uci["text"].tolist()
    texts = [pool[i] for i in rng.integers(0, len(pool), rows)]
    probs = model.predict_proba(texts)[:, 1]  # type: ignore[attr-defined]
    root = tmp / f"logs-{rows}"
    start = end - timedelta(hours=24)
    records = records_for(texts, probs, start, timedelta(hours=24) / rows)
    for hour in range(24):  # one file per hour partition, as the serving logger rolls them
        chunk = [r for r in records[hour * rows // 24 : (hour + 1) * rows // 24]]
        write_log_file(root, "sentiment", chunk, seq=hour)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from monitoring.drift.job import run_drift
    from monitoring.drift.logs import read_window
    from monitoring.drift.settings import DriftSettings

    end = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        reference, model = _reference(tmp)
        # warm-up: imports (Evidently, plotly) and first-call costs, not part of the figures
        warm = _logs(tmp, 500, model, end)
        run_drift(DriftSettings(log_root=str(warm), reference_uri=str(reference), window_end=end.isoformat()))
        print(
            f"machine: {platform.machine()}, {platform.python_version()}, cpus={__import__('os').cpu_count()}"
        )
        print("| logged rows | read logs (s) | whole job (s) | drift share | drift detected |")
        print("|---|---|---|---|---|")
        for rows in args.rows:
            root = _logs(tmp, rows, model, end)
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                read_window(str(root), "sentiment", end - timedelta(hours=24), end)
                t_read = time.perf_counter() - t0
                settings = DriftSettings(
                    log_root=str(root), reference_uri=str(reference), window_end=end.isoformat()
                )
                t0 = time.perf_counter()
                result = run_drift(settings)
                t_job = time.perf_counter() - t0
                assert result.current_rows == rows, result.current_rows
                print(
                    f"| {rows:,} | {t_read:.2f} | {t_job:.2f} | {result.drift_share:.3f} | {result.drift_detected} |"
                )


if __name__ == "__main__":
    main()
