"""Typed results that one step writes and the next reads (as JSON beside the artifacts)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from components.common.artifacts import ArtifactError, atomic_write_json

MODEL_SUBDIR = "model"
TRAIN_RESULT_FILE = "train_result.json"


@dataclass
class TrainResult:
    """What a training step produced: ``<output_dir>/model`` plus this record."""

    output_dir: str
    flavor: str
    dataset_hash: str
    validation_metrics: dict[str, float]
    train_seconds: float
    train_samples_per_second: float
    run_id: str | None = None
    model_artifact_uri: str | None = None
    precision: str = "fp32"

    @property
    def model_dir(self) -> str:
        return f"{self.output_dir.rstrip('/')}/{MODEL_SUBDIR}"

    def write(self) -> None:
        atomic_write_json(f"{self.output_dir.rstrip('/')}/{TRAIN_RESULT_FILE}", asdict(self))

    @classmethod
    def read(cls, output_dir: str) -> TrainResult:
        import fsspec

        path = f"{output_dir.rstrip('/')}/{TRAIN_RESULT_FILE}"
        try:
            with fsspec.open(path, "r") as handle:
                return cls(**json.load(handle))
        except FileNotFoundError as exc:
            raise ArtifactError(f"training result not found: {path} (did the training step finish?)") from exc


def model_dir_of(output_dir: str | Path) -> str:
    return f"{str(output_dir).rstrip('/')}/{MODEL_SUBDIR}"
