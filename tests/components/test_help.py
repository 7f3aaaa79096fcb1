"""Every component's --help renders: readable text, every flag, no argparse internals (a literal % once made
argparse print its own state)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components.common.settings import REPO_ROOT

COMPONENTS = sorted(
    p.parent.name for p in (REPO_ROOT / "components").glob("*/__main__.py") if p.parent.name != "common"
)


def test_every_component_is_covered() -> None:
    assert {
        "validate",
        "train_baseline",
        "finetune",
        "evaluate",
        "register",
        "pipeline",
        "batch_score",
    } <= set(COMPONENTS)


@pytest.mark.parametrize("component", COMPONENTS)
def test_help_renders(component: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", f"components.{component}", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("usage: ") and "options:" in out
    for internal in ("argparse.", "object at 0x", "'prog':", "Traceback"):
        assert internal not in out + proc.stderr, f"{component} --help leaks {internal!r}:\n{out[-1500:]}"
    # Every flag in the usage line is explained below it.
    usage = out.split("\n\n", 1)[0]
    flags = {word.strip("[]") for word in usage.split() if word.startswith(("--", "[--"))}
    for flag in flags:
        assert f"  {flag}" in out.split("options:", 1)[1], f"{component}: {flag} has no help entry"


def test_percent_signs_survive_in_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "components.validate", "--help"], capture_output=True, text=True, timeout=120
    )
    assert "<1% smoke subset" in " ".join(proc.stdout.split())
