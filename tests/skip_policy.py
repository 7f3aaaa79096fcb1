"""A skipped test is a test that did not run: any skip outside ``ALLOWED`` fails the whole run.

Loaded by tests/conftest.py. Allowed: a test marked ``gpu`` that skips because the machine has no CUDA
device. Everything else (a missing tool, a missing file, an import error turned into a skip) makes the
session exit non-zero and is listed with its reason. ``SENTIMENTOPS_ALLOW_SKIPS=1`` lets a developer
without every system service installed finish a local run green; it is ignored when ``CI`` is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

# marker -> the skip reason that marker may give (a gpu test skipping for any other reason still fails).
ALLOWED = {"gpu": "no CUDA device"}
ALLOW_ENV = "SENTIMENTOPS_ALLOW_SKIPS"


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason pytest recorded for a skip (``longrepr`` is ``(path, line, "Skipped: why")``)."""
    if isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    return str(report.longrepr)


def is_allowed(report: pytest.TestReport | pytest.CollectReport) -> bool:
    """Whether a skip is on the allow-list: the test carries the marker and gives that marker's reason."""
    keywords = getattr(report, "keywords", {})
    return any(marker in keywords and skip_reason(report) == why for marker, why in ALLOWED.items())


@dataclass(eq=False)  # registered as a plugin: pluggy keeps plugins in sets, by identity
class SkipPolicy:
    """Collects the skips of one session and fails it on any skip outside the allow-list."""

    lenient: bool
    refused: list[tuple[str, str]] = field(default_factory=list)

    def _record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        # An expected failure is reported as skipped too, but the test did run.
        if report.skipped and not hasattr(report, "wasxfail") and not is_allowed(report):
            self.refused.append((report.nodeid, skip_reason(report)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)  # a module-level skip skips a whole file at collection

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if (
            self.refused
            and not self.lenient
            and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.refused:
            return
        title = f"{len(self.refused)} skip(s) outside the allow-list ({', '.join(ALLOWED)})"
        if self.lenient:
            terminalreporter.section(f"{title}: tolerated because {ALLOW_ENV}=1", yellow=True)
        else:
            terminalreporter.section(f"{title}: the run fails", red=True)
        for nodeid, reason in self.refused:
            terminalreporter.line(f"{nodeid}: {reason}")


def pytest_configure(config: pytest.Config) -> None:
    lenient = os.environ.get(ALLOW_ENV) == "1" and not os.environ.get("CI")
    config.pluginmanager.register(SkipPolicy(lenient), "sentimentops-skip-policy")
