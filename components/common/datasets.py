"""Builders of the task datasets derived from data in the repository (reproducible, byte for byte).

``python -m components.common.datasets uci-source-sentiment [--out DIR]`` writes
``data/uci_source_sentiment/``: the UCI sentences labelled by source × sentiment (four real classes),
with a stratified split and the task's ``label_map.json``. The repository's copy of the UCI data holds the
amazon and imdb parts (2,000 rows; yelp is not distributed here), so source × sentiment gives four classes.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pandas as pd

from components.common import data
from components.common.labels import LABEL_MAP_FILE, LabelMap
from components.common.settings import REPO_ROOT

UCI_SOURCE = REPO_ROOT / "data" / "uci_sentiment_labelled_sentences" / "uci_sentiment_labelled_sentences.csv"
UCI_SOURCES = ("amazon", "imdb")  # the parts in the repository's copy
SENTIMENTS = ("negative", "positive")  # UCI label 0, 1
# Class id = source index * 2 + sentiment: the names in id order.
UCI_SOURCE_SENTIMENT = LabelMap(tuple(f"{s}-{p}" for s in UCI_SOURCES for p in SENTIMENTS))
UCI_SOURCE_SENTIMENT_DIR = REPO_ROOT / "data" / "uci_source_sentiment"
UCI_SOURCE_SENTIMENT_CSV = "uci_source_sentiment.csv"
# 500 rows a class: 50/20/30 gives a 600-row test split, above the promotion gate's 500-row minimum.
UCI_SPLIT = data.SplitFractions(validation=0.2, test=0.3)
UCI_SEED = 42


def uci_source_sentiment(source: Path = UCI_SOURCE) -> pd.DataFrame:
    """The UCI sentences as ``text,label,split``: label = "<source>-<negative|positive>", split stratified."""
    raw = pd.read_csv(source, keep_default_na=False, dtype={"text": str, "label": int, "source": str})
    unknown = sorted(set(raw["source"]) - set(UCI_SOURCES))
    if unknown:
        raise data.DataError(f"{source}: unexpected source(s) {unknown}")
    names = raw["source"] + "-" + raw["label"].map(dict(enumerate(SENTIMENTS)))
    frame = pd.DataFrame({"text": raw["text"], "label": names.map(UCI_SOURCE_SENTIMENT.index)})
    split = data.assign_splits(frame, UCI_SEED, UCI_SPLIT)["split"]
    return pd.DataFrame({"text": raw["text"], "label": names, "split": split})


def build_uci_source_sentiment(out: Path = UCI_SOURCE_SENTIMENT_DIR) -> dict[str, str]:
    """Write the CSV and label map under ``out``; returns each file's sha256."""
    out.mkdir(parents=True, exist_ok=True)
    frame = uci_source_sentiment()
    files = {
        UCI_SOURCE_SENTIMENT_CSV: frame.to_csv(index=False, lineterminator="\n").encode(),
        LABEL_MAP_FILE: UCI_SOURCE_SENTIMENT.to_json().encode(),
    }
    for name, payload in files.items():
        (out / name).write_bytes(payload)
    return {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}


BUILDERS = {"uci-source-sentiment": (build_uci_source_sentiment, UCI_SOURCE_SENTIMENT_DIR)}


def main(argv: list[str] | None = None) -> None:
    """CLI: build one dataset and print its files' hashes."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dataset", choices=sorted(BUILDERS))
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: under data/)")
    args = parser.parse_args(argv)
    build, default_out = BUILDERS[args.dataset]
    for name, digest in build(args.out or default_out).items():
        print(f"{digest}  {name}")


if __name__ == "__main__":
    main()
