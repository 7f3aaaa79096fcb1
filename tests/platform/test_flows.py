"""Every user flow, hop by hop, over the rendered prod and staging deployments (docs/flows.md)."""

from __future__ import annotations

import pytest

from infra import topology
from infra.topology import ENVIRONMENTS, FLOWS, Hop
from tests.platform import checks
from tests.platform.deployment import Deployment, build

HOPS = [(flow.key, hop) for flow in FLOWS for hop in flow.hops]


@pytest.fixture(scope="module", params=list(ENVIRONMENTS))
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return build(request.param)


@pytest.mark.parametrize(("flow", "hop"), HOPS, ids=[f"{f}:{h.caller}->{h.callee}:{h.port}" for f, h in HOPS])
def test_hop(deployment: Deployment, flow: str, hop: Hop) -> None:
    problems = {name: found for name, found in checks.hop_problems(deployment, hop).items() if found}
    assert not problems, f"{deployment.env.name} {flow}: {problems}"


@pytest.mark.parametrize("check", list(checks.DEPLOYMENT_CHECKS))
def test_deployment_wide(deployment: Deployment, check: str) -> None:
    problems = checks.DEPLOYMENT_CHECKS[check](deployment)
    assert not problems, f"{deployment.env.name}: " + "\n".join(problems)


def test_every_workload_of_ours_is_in_a_flow() -> None:
    """A workload nobody calls and that calls nobody is either dead or missing from the flows."""
    in_flows = {name for flow in FLOWS for hop in flow.hops for name in (hop.caller, hop.callee)}
    assert set(topology.WORKLOADS) - in_flows == set()
