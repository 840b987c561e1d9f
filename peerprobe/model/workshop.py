"""What the workshop chapter (step 12, summarised in docs/workshop.md) states for each cell, and whether it holds.

The workshop ran with aws-node's defaults, so its claims are attached only to phases where both clusters
keep the default SNAT settings. behaviour.md section 8 lists the claims that do not hold, and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerprobe.config import PhaseSnat
from peerprobe.vocabulary import Expected, Outcome, Role, WorkshopClaim


@dataclass(frozen=True)
class Claim:
    text: str
    ref: str
    role: Role | None = None  # the claim names whose address the echo server shows
    outcome: Outcome | None = None  # or only whether the request gets through


_UNREACHABLE = "unreachable: a ClusterIP is for in-cluster traffic only"
CLAIMS: dict[tuple[str, str], Claim] = {
    ("outside", "nginx-nlb"): Claim("reachable from the internet", "12.1", outcome="ok"),
    ("vpc1-pod", "pod-ip"): Claim("busybox pod IP", "12.2.1", role="client-pod"),
    ("vpc1-pod", "cluster-ip"): Claim("busybox pod IP", "12.2.1", role="client-pod"),
    ("vpc1-pod", "node-port"): Claim("the node IP", "12.2.1", role="receiving-node"),
    ("vpc1-pod", "load-balancer"): Claim("one of the nodes' internal IPs", "12.2.1", role="vpc1-node"),
    ("vpc1-pod", "internal-nlb"): Claim("one of the nodes' internal IPs", "12.2.1", role="vpc1-node"),
    ("vpc1-pod", "peer-host"): Claim("reachable", "12.3.1", outcome="ok"),
    ("vpc1-pod", "peer-host-public"): Claim("reachable", "12.3.1", outcome="ok"),
    ("vpc2-ec2", "pod-ip"): Claim("EC2 IP", "12.3.2", role="client-host"),
    ("vpc2-ec2", "cluster-ip"): Claim(_UNREACHABLE, "12.3.2", outcome="timeout"),
    ("vpc2-ec2", "node-port"): Claim("the node IP", "12.3.2", role="receiving-node"),
    ("vpc2-ec2", "load-balancer"): Claim("EC2 IP", "12.3.2", role="client-host"),
    ("vpc2-ec2", "internal-nlb"): Claim("EC2 IP", "12.3.2", role="client-host"),
    ("vpc2-pod", "pod-ip"): Claim("busybox host IP", "12.3.3", role="client-node"),
    ("vpc2-pod", "cluster-ip"): Claim(_UNREACHABLE, "12.3.3", outcome="timeout"),
    ("vpc2-pod", "node-port"): Claim("the node IP", "12.3.3", role="receiving-node"),
    ("vpc2-pod", "load-balancer"): Claim("busybox host IP", "12.3.3", role="client-node"),
    ("vpc2-pod", "internal-nlb"): Claim("busybox host IP", "12.3.3", role="client-node"),
    ("vpc1-pod", "headless"): Claim("busybox host IP", "12.4", role="client-node"),
}


def workshop_claim(vantage: str, target: str, snat: PhaseSnat, expected: Expected) -> WorkshopClaim | None:
    claim = CLAIMS.get((vantage, target))
    if claim is None or not (snat.vpc1.is_default and snat.vpc2.is_default):
        return None
    return WorkshopClaim(claimed=claim.text, agrees=_agrees(claim, expected), ref=claim.ref)


def _agrees(claim: Claim, expected: Expected) -> bool:
    if claim.outcome is not None:
        return expected.outcome == claim.outcome
    return expected.outcome == "ok" and expected.client_address_role == claim.role
