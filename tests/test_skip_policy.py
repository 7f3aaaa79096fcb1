"""The skip policy (tests/skip_policy.py) fails a run on any skip but a gpu test's without CUDA."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

GPU_SKIP = """
import pytest

@pytest.mark.gpu
def test_needs_cuda():
    pytest.skip("no CUDA device")

def test_runs():
    assert True
"""

OTHER_SKIP = """
import pytest

def test_needs_a_tool():
    pytest.skip("promtool is not installed")

def test_runs():
    assert True
"""


@pytest.fixture()
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run a test file in a fresh pytest session with the skip policy and no CI / allow-skips setting."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SENTIMENTOPS_ALLOW_SKIPS", raising=False)

    def _run(source: str) -> pytest.RunResult:
        pytester.makepyfile(test_sample=source)
        return pytester.runpytest("-p", "tests.skip_policy", "-p", "no:cacheprovider")

    return _run


def test_a_skip_outside_the_allow_list_fails_the_run(run) -> None:
    result = run(OTHER_SKIP)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*1 skip(s) outside the allow-list*the run fails*", "test_sample.py::test_needs_a_tool: promtool*"]
    )


def test_a_gpu_test_without_cuda_may_skip(run) -> None:
    result = run(GPU_SKIP)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*outside the allow-list*")


def test_a_gpu_test_skipping_for_another_reason_fails_the_run(run) -> None:
    result = run(GPU_SKIP.replace('"no CUDA device"', '"driver too old"'))
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_module_level_skip_fails_the_run(run) -> None:
    result = run('import pytest\npytest.skip("not written yet", allow_module_level=True)\n')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["test_sample.py: not written yet"])


def test_allow_skips_tolerates_them_locally_but_not_in_ci(run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTIMENTOPS_ALLOW_SKIPS", "1")
    result = run(OTHER_SKIP)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*tolerated because SENTIMENTOPS_ALLOW_SKIPS=1*"])
    monkeypatch.setenv("CI", "true")
    assert run(OTHER_SKIP).ret == pytest.ExitCode.TESTS_FAILED
