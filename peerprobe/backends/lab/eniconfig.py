"""Custom networking as the cluster and moto hold it: the ENIConfigs applied to a cluster (one per zone, named
after it) and their subnets in moto decide where aws-node puts each node's pod ENI and so its pods' addresses.
The lab's data plane builds the planned addresses; this checks that what was applied and created agrees with them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from peerprobe.backends.aws.cloud import AwsCloud
from peerprobe.backends.steps import VPC_KEYS, VpcKey
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConflictError, NotFoundError
from peerprobe.topology import ClusterTopology, Node, Pod, Topology

KIND = "ENIConfig"
CUSTOM_NETWORK_VAR = "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"


class EniConfig(BaseModel):
    """One ENIConfig as applied: the subnet of the pod ENIs of the nodes in its zone, and their groups."""

    subnet: str
    security_groups: list[str] = Field(default_factory=list)


def from_manifests(docs: Sequence[Mapping[str, object]]) -> dict[str, EniConfig]:
    """The ENIConfigs among applied manifests, by name (the zone the nodes' label names)."""
    found: dict[str, EniConfig] = {}
    for doc in docs:
        if doc.get("kind") != KIND:
            continue
        metadata, spec = doc.get("metadata"), doc.get("spec")
        if not isinstance(metadata, Mapping) or not isinstance(spec, Mapping):
            continue
        groups = spec.get("securityGroups") or []
        found[str(metadata["name"])] = EniConfig(
            subnet=str(spec.get("subnet", "")), security_groups=[str(g) for g in groups]
        )
    return found


def check_placement(
    cloud: AwsCloud,
    config: ExperimentConfig,
    topology: Topology,
    *,
    applied: Mapping[VpcKey, Mapping[str, EniConfig]],
    aws_node: Mapping[VpcKey, Mapping[str, str]],
) -> None:
    """Raise ConflictError, naming what differs, unless every custom-networking node's pods sit in its zone's
    ENIConfig subnet as moto holds it, with aws-node's custom networking on (amazon-vpc-cni-k8s README,
    AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG, ENI_CONFIG_LABEL_DEF: a node takes the ENIConfig named by its zone label;
    without one ipamd attaches no pod ENI)."""
    problems = [
        problem
        for key in VPC_KEYS
        if getattr(config.clusters, key).custom_networking.enabled
        for problem in _cluster_problems(cloud, key, getattr(topology, key), applied.get(key, {}), aws_node.get(key))
    ]
    if problems:
        raise ConflictError(
            "custom networking: " + "; ".join(problems), resource="eniconfig", resource_id=problems[0], state="differs"
        )


def _cluster_problems(
    cloud: AwsCloud,
    key: VpcKey,
    side: ClusterTopology,
    configs: Mapping[str, EniConfig],
    env: Mapping[str, str] | None,
) -> list[str]:
    if env is not None and env.get(CUSTOM_NETWORK_VAR) != "true":
        return [f"aws-node of {key} has {CUSTOM_NETWORK_VAR} unset: its pods would take its nodes' subnets"]
    problems: list[str] = []
    for node in side.nodes:
        problem = _node_problem(cloud, key, node, configs.get(node.az), _pods_on(side, node))
        if problem:
            problems.append(problem)
    return problems


def _node_problem(cloud: AwsCloud, key: VpcKey, node: Node, found: EniConfig | None, pods: list[Pod]) -> str | None:
    if found is None:
        return f"{key} has no ENIConfig {node.az}: aws-node on {node.name} would attach no pod ENI"
    try:
        held = cloud.subnets([found.subnet])
    except NotFoundError:
        held = ()
    if not held:
        return f"ENIConfig {node.az} of {key} names subnet {found.subnet}, which does not exist"
    subnet = held[0]
    if subnet.availability_zone != node.az:
        return f"ENIConfig {node.az} of {key} names subnet {subnet.id} in {subnet.availability_zone}"
    block = ipaddress.ip_network(subnet.cidr)
    outside = [pod.ip for pod in pods if ipaddress.ip_address(pod.ip) not in block]
    if outside:
        return f"pods {', '.join(outside)} on {node.name} are not in ENIConfig {node.az}'s subnet {subnet.cidr}"
    return None


def _pods_on(side: ClusterTopology, node: Node) -> list[Pod]:
    pods = (side.echo_pod, side.nginx_pod, side.busybox_pod)
    return [pod for pod in pods if pod is not None and pod.ip and pod.node == node.name]
