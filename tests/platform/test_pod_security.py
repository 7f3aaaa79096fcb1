"""The Pod Security Standards checker against the published rules, one control at a time."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.platform.pod_security import violations

RESTRICTED_POD: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "main",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    pod = copy.deepcopy(RESTRICTED_POD)
    target = pod
    for key in path[:-1]:
        target = target[key]
    if value is None:
        target.pop(path[-1])
    else:
        target[path[-1]] = value
    return pod


def test_a_compliant_pod_passes_restricted() -> None:
    assert violations(RESTRICTED_POD, "restricted") == []


@pytest.mark.parametrize(
    ("path", "value", "level", "control"),
    [
        (["hostNetwork"], True, "baseline", "host namespaces"),
        (["containers", 0, "securityContext", "privileged"], True, "baseline", "privileged"),
        (["volumes", 0], {"name": "h", "hostPath": {"path": "/"}}, "baseline", "hostPath"),
        (
            ["containers", 0, "securityContext", "capabilities", "add"],
            ["SYS_ADMIN"],
            "baseline",
            "capabilities",
        ),
        (["containers", 0, "ports"], [{"containerPort": 80, "hostPort": 80}], "baseline", "host ports"),
        (["securityContext", "seccompProfile"], {"type": "Unconfined"}, "baseline", "seccomp"),
        (
            ["containers", 0, "securityContext", "allowPrivilegeEscalation"],
            None,
            "restricted",
            "privilege escalation",
        ),
        (["securityContext", "runAsNonRoot"], None, "restricted", "running as non-root"),
        (["securityContext", "runAsUser"], 0, "restricted", "non-root user"),
        (["securityContext", "seccompProfile"], None, "restricted", "seccomp"),
        (["containers", 0, "securityContext", "capabilities", "drop"], [], "restricted", "drop ALL"),
        (["volumes", 0], {"name": "n", "nfs": {"server": "x", "path": "/"}}, "restricted", "volume types"),
    ],
)
def test_each_control_fails_when_broken(path: list[Any], value: Any, level: str, control: str) -> None:
    found = violations(_with(path, value), level)
    assert any(control in v for v in found), found


def test_baseline_admits_what_only_restricted_refuses() -> None:
    pod = _with(["securityContext", "seccompProfile"], None)
    assert violations(pod, "baseline") == []
    assert violations(pod, "restricted")
