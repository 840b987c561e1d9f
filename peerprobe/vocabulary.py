"""The report's vocabulary (design.md): vantages, targets, outcomes, address roles, and the cell shapes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Vantage = Literal["vpc1-pod", "vpc2-ec2", "vpc2-pod", "outside"]
Target = Literal[
    "pod-ip",
    "cluster-ip",
    "node-port",
    "load-balancer",
    "internal-nlb",
    "headless",
    "peer-host",
    "peer-host-public",
    "nginx-nlb",
]
Outcome = Literal["ok", "timeout", "refused", "dns-error", "http-error"]
Role = Literal[
    "client-pod",
    "client-node",
    "client-host",
    "nat-gateway",
    "receiving-node",
    "vpc1-node",
    "load-balancer",
    "other",
]
Verdict = Literal["match", "drift", "predicted"]

VANTAGES: tuple[Vantage, ...] = ("vpc1-pod", "vpc2-ec2", "vpc2-pod", "outside")
LB_TARGETS: frozenset[str] = frozenset({"load-balancer", "internal-nlb", "nginx-nlb"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Expected(_Frozen):
    outcome: Outcome
    client_address_role: Role | None = None
    may_timeout: bool = False
    host: str | None = None
    request_uri: str | None = None


class Observed(_Frozen):
    outcome: Outcome
    client_address: str | None = None
    client_address_role: Role | None = None
    resolved: list[str] | None = None
    host: str | None = None
    request_uri: str | None = None
    detail: str | None = None  # what the probe client said when it failed (cut short)


class WorkshopClaim(_Frozen):
    claimed: str
    agrees: bool
    ref: str


class Cell(_Frozen):
    vantage: Vantage
    target: Target
    target_node: str | None = None
    address: str
    expected: Expected
    observed: Observed | None = None
    verdict: Verdict = "predicted"
    explanation: list[str]
    workshop: WorkshopClaim | None = None


VpcKey = Literal["vpc1", "vpc2"]  # the experiment's two VPCs (and their clusters)
VPC_KEYS: tuple[VpcKey, VpcKey] = ("vpc1", "vpc2")
