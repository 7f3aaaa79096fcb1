"""CLI: ``python -m monitoring.drift --log-root ... --reference-uri ... [--pushgateway-url ...]``.

Exit codes: 0 the run completed (drift or not, or insufficient data); 1 an expected error, or the
outputs were written but the push to the Pushgateway failed (so the CronJob shows up as failing).
"""

from __future__ import annotations

import argparse
import logging

from components.common.settings import ComponentError, add_settings_arguments, run_cli, settings_from_args
from monitoring.drift.job import run_drift
from monitoring.drift.settings import DriftSettings


class PushFailed(ComponentError):
    """The outputs were written, but the metrics did not reach the Pushgateway."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitoring.drift", description=__doc__)
    add_settings_arguments(parser, DriftSettings)
    return parser


def _main() -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = settings_from_args(DriftSettings, build_parser().parse_args())
    result = run_drift(settings)
    if result.status == "insufficient_data":
        print(f"drift: insufficient data: {result.reason}")
    else:
        drifted = [name for name, f in result.features.items() if f.drifted]
        verdict = "DRIFT DETECTED" if result.drift_detected else "no drift"
        print(
            f"drift: {verdict} (share {result.drift_share:.2f}; drifted: {', '.join(drifted) or 'none'}) "
            f"on {result.current_rows} rows of version {result.model_version}"
        )
    print(f"drift: outputs in {result.output_uri}")
    if result.pushed is False:
        raise PushFailed(f"push to {settings.pushgateway_url} failed: {result.push_error}")


def main() -> None:
    run_cli(_main)
