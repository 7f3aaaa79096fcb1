"""A stand-in pipeline step for the runner's tests (a real process): it records when it started and ended,
sleeps, and exits with the code it is given."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--marker", required=True)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--code", type=int, default=0)
    args = parser.parse_args()
    marker = Path(args.marker)
    marker.write_text(f"{time.time()}\n")
    time.sleep(args.seconds)
    with marker.open("a") as handle:
        handle.write(f"{time.time()}\n")
    sys.exit(args.code)


if __name__ == "__main__":
    main()
