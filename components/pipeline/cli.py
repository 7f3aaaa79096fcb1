"""CLI: ``python -m components.pipeline --dataset-uri ... --artifacts-root ...`` (flags = workflows.spec.PARAMETERS)."""

from __future__ import annotations

import argparse

from components.common.settings import help_escape, run_cli
from components.common.tracking import TrackingSettings
from components.evaluate.evaluation import read_evaluation
from components.pipeline.runner import is_smoke, run_pipeline, task_tracking
from workflows.spec import PARAMETERS, parameter_defaults


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__, allow_abbrev=False)
    defaults = parameter_defaults(local=True)
    for parameter in PARAMETERS:
        parser.add_argument(
            "--" + parameter.name.replace("_", "-"),
            dest=parameter.name,
            default=defaults[parameter.name],
            help=help_escape(f"{parameter.description} (default: {defaults[parameter.name]})"),
        )
    parser.add_argument(
        "--max-parallel-steps",
        type=int,
        default=2,
        help="steps run side by side once their inputs are ready (1 = one at a time) (default: 2)",
    )
    return parser


def _main() -> None:
    values = vars(build_parser().parse_args())
    max_parallel_steps = values.pop("max_parallel_steps")  # how to run, not a parameter of the run
    tracking = TrackingSettings()
    if is_smoke(values):
        smoke = task_tracking(values, tracking)
        print(
            f"smoke run: experiment {smoke.experiment!r}, registered model {smoke.registered_model!r} "
            f"at {smoke.tracking_uri} (never the real registry)",
            flush=True,
        )
    result = run_pipeline(values, tracking, max_parallel_steps=max_parallel_steps)
    evaluation = read_evaluation(f"{values['artifacts_root']}/evaluation")
    timings = ", ".join(f"{s.name} {s.seconds:.0f}s" for s in result.steps)
    if result.held_at:
        print(
            f"\npipeline {result.pipeline_id} finished in {result.seconds:.0f}s ({timings}): the {result.held_at} "
            "gate held (too little evidence to promote; see its reason above): nothing registered, no alias moved"
        )
    else:
        print(f"\npipeline {result.pipeline_id} succeeded in {result.seconds:.0f}s ({timings})")
    print(f"test split (n={evaluation.n}), dataset {evaluation.dataset_hash[:19]}…\n{evaluation.table()}")


def main() -> None:
    run_cli(_main)
