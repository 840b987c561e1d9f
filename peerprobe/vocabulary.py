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


class Flow(_Frozen):
    """One direction of a TCP connection as conntrack keys it."""

    src: str
    sport: int
    dst: str
    dport: int

    def reversed(self) -> Flow:
        return Flow(src=self.dst, sport=self.dport, dst=self.src, dport=self.sport)

    def text(self) -> str:
        return f"{self.src}:{self.sport} → {self.dst}:{self.dport}"


class Translation(_Frozen):
    """What the kernel of one namespace recorded for a probe's connection (conntrack): the flow as its first
    packet arrived (`original`) and the flow the answer is expected as (`reply`); where the reply's destination
    is not the original source, the namespace rewrote the source (SNAT), where the reply's source is not the
    original destination, the destination (DNAT)."""

    at: str  # the model's place for the namespace (node:NAME, nat:vpc1, lb:KIND, ...; router:VPC is the lab's own)
    namespace: str  # the lab's namespace, without the environment's prefix
    original: Flow
    reply: Flow
    relayed: bool = False  # a connection the namespace opened for the probe's (the Classic ELB proxy's)

    @property
    def leaving(self) -> Flow:
        """The flow as the packet leaves the namespace: the reply reversed."""
        return self.reply.reversed()

    @property
    def snat(self) -> bool:
        return (self.leaving.src, self.leaving.sport) != (self.original.src, self.original.sport)

    @property
    def dnat(self) -> bool:
        return (self.leaving.dst, self.leaving.dport) != (self.original.dst, self.original.dport)


class Observed(_Frozen):
    outcome: Outcome
    client_address: str | None = None
    client_address_role: Role | None = None
    resolved: list[str] | None = None
    host: str | None = None
    request_uri: str | None = None
    detail: str | None = None  # what the probe client said when it failed (cut short)
    # The probe's connection namespace by namespace along its way, in order (the lab reads conntrack); None where
    # the backend does not collect them (aws), [] when collected and none was found.
    translations: list[Translation] | None = None


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
