"""A synthetic file in the layout of Kaggle's "Rotten Tomatoes movies and critic reviews" (any size).

    .venv/bin/python -m benchmarks.synth_kaggle --rows 1130017 --out /tmp/critic_reviews_1130017.csv

Built from the shipped Rotten Tomatoes sentences (data/rotten_tomatoes): each review is one sentence plus the
first 3-12 words of another of the same polarity, so texts are mostly distinct. It carries the real file's
defects: empty ``review_content`` (6 %), repeated reviews (syndication: 4 %, some with other whitespace),
a few texts carrying both labels (0.2 %), and many reviews per film (a Zipf-like number per
``rotten_tomatoes_link``; rows sorted by film like the original). Deterministic for a seed. Full-size files
are never written inside the repository (except the ignored ``artifacts/`` and ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "data" / "rotten_tomatoes" / "rotten_tomatoes.csv"
COLUMNS = (
    "rotten_tomatoes_link",
    "critic_name",
    "top_critic",
    "publisher_name",
    "review_type",
    "review_score",
    "review_date",
    "review_content",
)
MAX_ROWS_IN_REPO = 50_000
WRITABLE_IN_REPO = ("artifacts", "benchmarks/results")


@dataclass(frozen=True)
class Defects:
    """Shares of the defective rows (of all rows)."""

    empty: float = 0.06
    duplicate: float = 0.04
    conflicting: float = 0.002
    reviews_per_film: float = 65.0  # mean; the distribution is heavy-tailed


def generate(rows: int, seed: int = 42, defects: Defects | None = None) -> pd.DataFrame:
    """A Kaggle-layout frame of ``rows`` reviews (as strings, like the CSV)."""
    defects = defects or Defects()
    rng = np.random.default_rng(seed)
    source = pd.read_csv(SOURCE, keep_default_na=False)
    sentences = source["text"].to_numpy(dtype=object)
    labels = source["label"].to_numpy()
    pools = {0: np.flatnonzero(labels == 0), 1: np.flatnonzero(labels == 1)}

    first = rng.integers(0, len(sentences), rows)
    label = labels[first]
    second = np.where(
        label == 1,
        pools[1][rng.integers(0, len(pools[1]), rows)],
        pools[0][rng.integers(0, len(pools[0]), rows)],
    )
    words = rng.integers(3, 13, rows)  # words taken from the second sentence
    texts = [
        f"{a} {' '.join(sentences[b].split()[:k])}"
        for a, b, k in zip(sentences[first], second, words, strict=True)
    ]
    text = np.asarray(texts, dtype=object)

    # Defects on distinct rows: repeats of another row's text (same label; some with other whitespace),
    # texts repeated with the other label, empty reviews.
    order = rng.permutation(rows)
    n_dup, n_conf = int(rows * defects.duplicate), int(rows * defects.conflicting)
    n_empty = int(rows * defects.empty)
    dup, conf = order[:n_dup], order[n_dup : n_dup + n_conf]
    empty = order[n_dup + n_conf : n_dup + n_conf + n_empty]
    originals = order[n_dup + n_conf + n_empty :]
    if len(originals):
        src = originals[rng.integers(0, len(originals), n_dup)]
        text[dup], label[dup] = text[src], label[src]
        spaced = dup[rng.random(n_dup) < 0.3]
        text[spaced] = np.asarray([f" {t.replace(' ', '  ', 1)} " for t in text[spaced]], dtype=object)
        src = originals[rng.integers(0, len(originals), n_conf)]
        text[conf], label[conf] = text[src], 1 - label[src]
    text[empty] = ""

    n_films = max(3, int(round(rows / defects.reviews_per_film)))
    weights = 1.0 / np.arange(1, n_films + 1) ** 0.8
    film = rng.choice(n_films, size=rows, p=weights / weights.sum())
    publishers = np.array(
        ["Variety", "Chicago Sun-Times", "The Guardian", "Slant Magazine", "RogerEbert.com"]
    )
    frame = pd.DataFrame(
        {
            "rotten_tomatoes_link": pd.Series(film).map(lambda f: f"m/film_{f:06d}"),
            "critic_name": pd.Series(rng.integers(0, 11_000, rows)).map(lambda c: f"Critic {c}"),
            "top_critic": np.where(rng.random(rows) < 0.25, "True", "False"),
            "publisher_name": publishers[rng.integers(0, len(publishers), rows)],
            "review_type": np.where(label == 1, "Fresh", "Rotten"),
            "review_score": np.where(
                rng.random(rows) < 0.7, (rng.integers(1, 11, rows)).astype(str) + "/10", ""
            ),
            "review_date": (
                pd.Timestamp("2000-01-01") + pd.to_timedelta(rng.integers(0, 7300, rows), unit="D")
            ).strftime("%Y-%m-%d"),
            "review_content": text,
        }
    )
    return frame.iloc[np.argsort(film, kind="stable")].reset_index(drop=True)


def check_destination(out: Path, rows: int) -> None:
    """Refuse to put a large generated file where it could be committed."""
    resolved = out.resolve()
    if rows <= MAX_ROWS_IN_REPO or not resolved.is_relative_to(REPO):
        return
    if any(resolved.is_relative_to(REPO / allowed) for allowed in WRITABLE_IN_REPO):
        return
    raise SystemExit(
        f"error: refusing to write {rows:,} generated rows inside the repository ({out}); "
        f"write to /tmp or under {' or '.join(WRITABLE_IN_REPO)}/"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, required=True, help="number of reviews (rows) to write")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--empty-share", type=float, default=Defects.empty)
    parser.add_argument("--duplicate-share", type=float, default=Defects.duplicate)
    parser.add_argument("--conflicting-share", type=float, default=Defects.conflicting)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    check_destination(args.out, args.rows)
    frame = generate(
        args.rows, args.seed, Defects(args.empty_share, args.duplicate_share, args.conflicting_share)
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(
        f"wrote {len(frame):,} rows, {frame['rotten_tomatoes_link'].nunique():,} films -> {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
