"""CLI: ``python -m components.register --evaluation-dir ... --promotion-margin 0.005``."""

from __future__ import annotations

import argparse

from components.common.settings import add_settings_arguments, run_cli, settings_from_args
from components.register.registration import RegisterSettings, register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="register", description=__doc__, allow_abbrev=False)
    add_settings_arguments(parser, RegisterSettings)
    return parser


def _main() -> None:
    settings = settings_from_args(RegisterSettings, build_parser().parse_args())
    result = register(settings)
    evidence = "; ".join(
        f"vs {c.role} {c.delta:+.4f} ({c.test} p={c.p_value:.3g}, "
        f"{1 - 2 * settings.gate_alpha:.0%} interval [{c.ci_low:+.4f}, {c.ci_high:+.4f}])"
        if c.p_value is not None and c.ci_low is not None and c.ci_high is not None
        else f"vs {c.role} {c.delta:+.4f}"
        for c in result.decision.comparisons.values()
    )
    print(f"promotion gate passed on n={result.decision.n}: {evidence or 'no significance test'}")
    state = "registered" if result.created else "already registered"
    moved = f"; moved {', '.join(result.aliases_moved)}" if result.aliases_moved else "; aliases unchanged"
    print(
        f"{state}: {result.model_name} version {result.version} "
        f"({result.decision.metric} {result.decision.challenger:.4f}) aliases={result.aliases}{moved}"
    )


def main() -> None:
    run_cli(_main)
