"""A small NetworkPolicy evaluator: would the rendered policies let this connection through?

Follows the Kubernetes semantics for what the chart uses: a pod selected by no policy of a type is not
isolated for that type; a connection between pods needs the source's egress and the destination's ingress
to allow it; peers are podSelector (policy's namespace), namespaceSelector, both, or ipBlock.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class External:
    ip: str


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Label selector semantics (an empty selector selects everything)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_ns: str, other: Pod | External) -> bool:
    if "ipBlock" in peer:
        if not isinstance(other, External):
            return False  # pod IPs are not in the chart's ipBlocks (kept out of the pod/service ranges)
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(c) for c in block.get("except", [])
        )
    if isinstance(other, External):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_ns:
        return False
    return selects(peer.get("podSelector"), other.labels)


def _port_matches(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports)


def _allowed(policies, pod: Pod, other: Pod | External, port: int, protocol: str, direction: str) -> bool:
    kind, peers_key = ("Egress", "to") if direction == "egress" else ("Ingress", "from")
    applying = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], pod.labels)
    ]
    if not applying:
        return True  # not isolated
    for policy in applying:
        for rule in policy["spec"].get(direction, []):
            peers = rule.get(peers_key)
            peer_ok = not peers or any(
                _peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers
            )
            if peer_ok and _port_matches(rule, port, protocol):
                return True
    return False


def allowed(
    policies: list[dict[str, Any]], source: Pod, destination: Pod | External, port: int, protocol: str = "TCP"
) -> bool:
    """Whether ``source`` may open a connection to ``destination:port``."""
    if not _allowed(policies, source, destination, port, protocol, "egress"):
        return False
    if isinstance(destination, External):
        return True
    return _allowed(policies, destination, source, port, protocol, "ingress")
