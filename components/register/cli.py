"""CLI: ``python -m components.register --evaluation-dir ... --promotion-margin 0.005``."""

from __future__ import annotations

from components.common.tracking import TrackedStep, step_cli
from components.register.registration import RegisterSettings, RegistrationResult, register


def _finish(settings: RegisterSettings, result: RegistrationResult) -> None:
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


# No MLflow run of its own: the registry's version, tags and aliases are the record (exit 2 refused, 3 held).
STEP = TrackedStep("register", RegisterSettings, work=register, finish=_finish)

build_parser, main = step_cli(STEP, __doc__)
