"""The live configuration of an environment as plain data (ConfigSnapshot), what it means for the model, and
how two snapshots differ. Pure: the backends read the facts, this module only compares them.

A drift check reads a snapshot, predicts with the model for the configuration it describes (`live_config`),
and diffs it against the snapshot recorded with the baseline (`diff`): entries `{path, baseline, live, text}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from peerprobe import aws_node
from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.vocabulary import VpcKey as VpcKey  # re-exported

ABSENT = "absent"  # a resource the baseline had and the environment no longer has (or the reverse)
PEER_RULE_DESCRIPTION = "peerprobe probes from the peer"  # what peer_rules() writes on VPC1's nodes
# An operator may put anything in aws-node's environment (an API key, a proxy URL with its password): only the
# values the model reads (aws_node.snat_from_env) reach a snapshot, and through it a report, an artifact, the
# drift event or a log. Every other variable keeps its name, its value redacted (an allow-list: no name pattern
# can tell every secret).
SHOWN_VARS = frozenset(aws_node.SNAT_VARS)
REDACTED = "<redacted>"
# Security groups by role (the same on both backends): the snapshot's keys.
NODE_GROUP: dict[VpcKey, str] = {"vpc1": "vpc1-nodes", "vpc2": "vpc2-nodes"}
PEER_HOST_GROUP = "peer-host"
ELB_GROUP = "load-balancer"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClusterSnapshot(_Model):
    """One cluster as aws-node runs it: the CNI version and aws-node's environment, every value but those the
    model reads redacted (`redact`), whether read from the cluster or from a baseline an older peerprobe kept."""

    name: str
    cni_version: str
    aws_node: dict[str, str] = Field(default_factory=dict)

    @field_validator("aws_node")
    @classmethod
    def _only_what_the_model_reads(cls, env: dict[str, str]) -> dict[str, str]:
        return redact(env)


class ServiceSnapshot(_Model):
    """The parts of a Service's spec that decide a cell."""

    type: str
    port: int
    target_port: int
    node_port: int | None = None
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    load_balancer_source_ranges: list[str] = Field(default_factory=list)
    annotations: dict[str, str] = Field(default_factory=dict)


class PeeringSnapshot(_Model):
    status: str  # active, pending-acceptance, deleted, ... or `absent`
    requester_cidr: str = ""
    accepter_cidr: str = ""


class ConfigSnapshot(_Model):
    """Everything a drift check reads back from the live environment (design.md: aws-node env and CNI version
    per cluster, the Services' specs, security-group rules, peering and routes). Ids are replaced by names
    (group names, route table names, target kinds), so a snapshot compares across runs."""

    clusters: dict[VpcKey, ClusterSnapshot]
    services: dict[str, ServiceSnapshot] = Field(default_factory=dict)  # by report kind: cluster-ip, nodeport, ...
    security_groups: dict[str, list[str]] = Field(default_factory=dict)  # group name -> "tcp/8080 from CIDR"
    peering: PeeringSnapshot | None = None
    routes: dict[str, list[str]] = Field(default_factory=dict)  # route table name -> "CIDR -> target kind"
    # Which environment this is (its VPCs' ids): a baseline belongs to one generation of an environment, and a
    # rebuilt one (new VPCs) is not compared with it. Not a configuration fact: never in the diff.
    environment_id: str = ""

    def snat(self) -> PhaseSnat:
        """The SNAT settings aws-node derives from its environment, per cluster."""
        return PhaseSnat(**{key: aws_node.snat_from_env(c.aws_node) for key, c in self.clusters.items()})


def redact(env: Mapping[str, str]) -> dict[str, str]:
    """Every name of `env`; the values of SHOWN_VARS as they are, every other one REDACTED."""
    return {name: value if name in SHOWN_VARS else REDACTED for name, value in sorted(env.items())}


def rule_text(protocol: str, from_port: int, to_port: int, source: str, description: str = "") -> str:
    """``tcp/8080 from 192.168.0.0/16 (peerprobe probes from the peer)``, ``all from sg vpc1-nodes``."""
    note = f" ({description})" if description else ""
    if protocol in ("-1", "all") or (from_port, to_port) == (0, 65535):
        return f"all from {source}{note}"
    ports = str(from_port) if from_port == to_port else f"{from_port}-{to_port}"
    return f"{protocol}/{ports} from {source}{note}"


_PEER_RULE = re.compile(r"^tcp/(\d+) from (\S+) \(" + re.escape(PEER_RULE_DESCRIPTION) + r"\)$")


def peer_rule_ports(snapshot: ConfigSnapshot, *, group: str, peer_cidr: str) -> list[int]:
    """The ports peerprobe's own peer rules still open on `group` from the peer CIDR."""
    found = (_PEER_RULE.match(text) for text in snapshot.security_groups.get(group, []))
    return [int(m.group(1)) for m in found if m is not None and m.group(2) == peer_cidr]


def route_target_kind(target_id: str) -> str:
    """Route targets by kind (ids change when a resource is re-created, the kind of the path does not)."""
    kinds = (("pcx-", "peering"), ("igw-", "internet-gateway"), ("nat-", "nat-gateway"), ("tgw-", "transit-gateway"))
    for prefix, kind in kinds:
        if target_id.startswith(prefix):
            return kind
    return target_id or "local"


# --- the model's view of a live configuration ------------------------------------------------------------------


def live_config(
    config: ExperimentConfig,
    snapshot: ConfigSnapshot,
    *,
    peer_ports: list[int] | None = None,
    node_port: int | None = None,
) -> ExperimentConfig:
    """The config, with what the snapshot says the environment really runs: each cluster's CNI version, the
    Services' externalTrafficPolicy, whether the peering is active with its routes, and which ports peerprobe's
    peer rules still open (``nodeport`` for the NodePort Service's port). The model predicts from this."""
    data = config.model_dump(mode="json", exclude={"phases"})
    for key, cluster in snapshot.clusters.items():
        data["clusters"][key]["cni_version"] = cluster.cni_version
    policies = {s.external_traffic_policy for s in snapshot.services.values() if s.external_traffic_policy}
    if len(policies) == 1:
        data["services"]["external_traffic_policy"] = policies.pop()
    if config.peering.enabled and snapshot.peering is not None:
        data["peering"]["enabled"] = peering_active(snapshot)
    if peer_ports is None and NODE_GROUP["vpc1"] in snapshot.security_groups:
        peer_ports = peer_rule_ports(snapshot, group=NODE_GROUP["vpc1"], peer_cidr=config.vpcs.vpc2.cidr)
    nodeport = snapshot.services.get("nodeport")
    node_port = node_port if node_port is not None else (nodeport.node_port if nodeport else None)
    if peer_ports is not None:
        data["security_groups"]["open_from_peer"] = [
            "nodeport" if port == node_port else port for port in dict.fromkeys(peer_ports)
        ]
    # The phases as they are (models): which of an attached cluster's snat a phase named is kept.
    return ExperimentConfig.model_validate({**data, "phases": config.phases})


def peering_active(snapshot: ConfigSnapshot) -> bool:
    """Active, and every route table of both VPCs routes the peer CIDR over it."""
    peering = snapshot.peering
    if peering is None or peering.status != "active":
        return False
    wanted = {"vpc1": peering.accepter_cidr, "vpc2": peering.requester_cidr}
    return all(
        f"{wanted[table.split('-')[0]]} -> peering" in routes
        for table, routes in snapshot.routes.items()
        if table.split("-")[0] in wanted
    )


# --- differences -----------------------------------------------------------------------------------------------


def diff(baseline: ConfigSnapshot, live: ConfigSnapshot) -> list[dict[str, Any]]:
    """Every fact that differs, as ``{path, baseline, live, text}``; a list-valued fact (a group's rules, a
    table's routes) gives one entry per rule or route added or removed. Sorted by path."""
    identity = {"environment_id"}
    before = _flatten(baseline.model_dump(mode="json", exclude=identity))
    after = _flatten(live.model_dump(mode="json", exclude=identity))
    entries = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if isinstance(old, list) or isinstance(new, list):
            entries += _list_changes(path, old if isinstance(old, list) else [], new if isinstance(new, list) else [])
            continue
        entries.append({"path": path, "baseline": old, "live": new, "text": describe(path, old, new)})
    return entries


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, path))
        elif not (isinstance(value, Mapping) and not value):
            flat[path] = value
    return flat


def _list_changes(path: str, old: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    removed = [item for item in old if item not in new]
    added = [item for item in new if item not in old]
    return [
        *(
            {"path": f"{path}[{item}]", "baseline": item, "live": None, "text": describe(path, item, None)}
            for item in removed
        ),
        *(
            {"path": f"{path}[{item}]", "baseline": None, "live": item, "text": describe(path, None, item)}
            for item in added
        ),
    ]


def describe(path: str, old: Any, new: Any) -> str:
    """One sentence for a change, e.g. ``vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true``."""
    parts = path.split(".")
    if parts[0] == "clusters" and len(parts) >= 4 and parts[2] == "aws_node":
        name = ".".join(parts[3:])
        if new is None:
            return f"{parts[1]} aws-node no longer sets {name} (was {name}={old})"
        return f"{parts[1]} aws-node now has {name}={new}" + (f" (was {old})" if old is not None else "")
    if parts[0] in ("security_groups", "routes"):
        what = "security group" if parts[0] == "security_groups" else "route table"
        subject = f"{what} {parts[1]}"
        return f"{subject} lost {old}" if new is None else f"{subject} gained {new}"
    subject = path.replace("clusters.", "").replace(".", " ")
    return f"{subject}: {_shown(old)} -> {_shown(new)}"


def _shown(value: Any) -> str:
    return ABSENT if value is None else str(value)
