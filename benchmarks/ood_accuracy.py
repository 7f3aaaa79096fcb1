"""Out-of-domain accuracy: a model directory scored on the UCI labelled sentences (amazon, imdb, yelp).

    .venv/bin/python benchmarks/ood_accuracy.py <model_dir> [<model_dir> ...]

``evaluate`` scores the Rotten Tomatoes test split only; this reports, per model and per source, how the same
weights do on short product/movie/restaurant sentences they never saw (threshold 0.5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.common.models import load_model  # noqa: E402

UCI_CSV = REPO / "data" / "uci_sentiment_labelled_sentences" / "uci_sentiment_labelled_sentences.csv"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    frame = pd.read_csv(UCI_CSV, dtype={"text": str, "label": int, "source": str}, keep_default_na=False)
    for model_dir in args.model_dirs:
        model = load_model(model_dir)
        correct = (model.predict_proba(frame["text"].tolist())[:, 1] >= 0.5).astype(int) == frame[
            "label"
        ].to_numpy()
        per_source = {
            source: float(np.mean(correct[(frame["source"] == source).to_numpy()]))
            for source in sorted(frame["source"].unique())
        }
        detail = ", ".join(f"{source} {acc:.4f}" for source, acc in per_source.items())
        print(f"{model_dir}: UCI accuracy {correct.mean():.4f} (n={len(frame)}; {detail})", flush=True)


if __name__ == "__main__":
    main()
