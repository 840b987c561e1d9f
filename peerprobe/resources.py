"""The Kubernetes manifests and the eksctl ClusterConfig in resources/, loaded as data and filled from the config.

Both backends apply the same documents: the aws backend through the kubernetes client, the lab through its
Cluster port. Only a few named values are substituted in the text; the Services of type LoadBalancer get
their controller's annotations, externalTrafficPolicy and loadBalancerSourceRanges here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

import yaml

from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError
from peerprobe.model import lb_source_ranges
from peerprobe.topology import Topology

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
APP_FILES = ("echo.yaml", "busybox.yaml", "nginx.yaml")
CLUSTER_FILE = "private-cluster.yaml"
NODE_TYPE = "t3.medium"  # the workshop's
# Security groups for pods need a trunk ENI, which no t-family type carries (EKS user guide,
# security-groups-for-pods.html, Considerations); m5 is among the families it names as supported.
NODE_TYPE_FOR_BRANCH_ENIS = "m5.large"
Manifest = dict[str, Any]

# Service name -> the report's name for what it is exposed as (design.md vocabulary).
SERVICE_KINDS = {
    "clusterip": "cluster-ip",
    "nodeport": "nodeport",
    "loadbalancer": "load-balancer",
    "source-ip-app-internal-nlb": "internal-nlb",
    "source-ip-app-headless": "headless",
    "service-nginx": "nginx-nlb",
}
ANNOTATION = "service.beta.kubernetes.io/"
INTERNAL = ANNOTATION + "aws-load-balancer-internal"
LB_TYPE = ANNOTATION + "aws-load-balancer-type"
TARGET_TYPE = ANNOTATION + "aws-load-balancer-nlb-target-type"
SCHEME = ANNOTATION + "aws-load-balancer-scheme"
TG_ATTRIBUTES = ANNOTATION + "aws-load-balancer-target-group-attributes"


def load(name: str, values: Mapping[str, object]) -> list[Manifest]:
    """The documents of resources/<name> with every ${key} replaced; a missing key is a ConfigError."""
    text = (RESOURCES / name).read_text(encoding="utf-8")
    try:
        filled = Template(text).substitute({key: _scalar(value) for key, value in values.items()})
    except KeyError as error:
        raise ConfigError(f"resources/{name}: no value for ${{{error.args[0]}}}") from None
    return [doc for doc in yaml.safe_load_all(filled) if doc]


def _scalar(value: object) -> str:
    # JSON scalars are YAML scalars: strings come out quoted, so no value can change the document's shape.
    return json.dumps(value)


def app_values(config: ExperimentConfig, topology: Topology, cluster: str = "vpc1") -> dict[str, object]:
    side = topology.vpc1 if cluster == "vpc1" else topology.vpc2
    busybox = side.busybox_pod.node if side.busybox_pod else side.nodes[-1].name
    echo = topology.vpc1.echo_pod.node if topology.vpc1.echo_pod else topology.vpc1.nodes[0].name
    nginx = topology.vpc1.nginx_pod.node if topology.vpc1.nginx_pod else echo
    images = config.images
    return {
        "echo_node": echo,
        "busybox_node": busybox,
        "nginx_node": nginx,
        "echo_image": images.echo,
        "busybox_image": images.busybox,
        "nginx_image": images.nginx,
    }


def manifests(config: ExperimentConfig, topology: Topology, *, cluster: str = "vpc1") -> list[Manifest]:
    """Everything applied to one cluster: VPC1 runs echo, busybox, nginx and the Services; VPC2 a busybox."""
    values = app_values(config, topology, cluster)
    if cluster != "vpc1":
        return load("busybox.yaml", values)
    docs = [doc for name in APP_FILES for doc in load(name, values)]
    return [fill_service(doc, config, topology) if doc.get("kind") == "Service" else doc for doc in docs]


def fill_service(doc: Manifest, config: ExperimentConfig, topology: Topology) -> Manifest:
    """Allocations from the plan, and for type LoadBalancer the controller's annotations and the policy."""
    kind = SERVICE_KINDS.get(doc["metadata"]["name"], "")
    spec = doc["spec"]
    port = topology.vpc1.service_node_ports.get(kind)
    if port is not None and spec.get("type") in ("NodePort", "LoadBalancer"):
        spec["ports"][0]["nodePort"] = port
    if kind == "cluster-ip" and topology.vpc1.cluster_ip:
        spec["clusterIP"] = topology.vpc1.cluster_ip
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        # services.external_traffic_policy is the experiment's policy for every externally reachable
        # Service: the NodePort cells change with it too (behaviour.md 8 (vi)).
        spec["externalTrafficPolicy"] = config.services.external_traffic_policy
    if spec.get("type") == "LoadBalancer":
        # Never 0.0.0.0/0: the experiment's own sources only (design.md principles).
        spec["loadBalancerSourceRanges"] = lb_source_ranges(config, topology)
        health = topology.vpc1.health_check_node_ports.get(kind)
        if health is not None:
            spec["healthCheckNodePort"] = health
        annotations = doc["metadata"].setdefault("annotations", {})
        annotations.update(_annotations(kind, config))
    return doc


def _annotations(kind: str, config: ExperimentConfig) -> dict[str, str]:
    if kind == "load-balancer":
        # cloud-provider-aws: any value but "false" makes the Classic ELB internal.
        return {INTERNAL: "true"} if config.services.load_balancer.scheme == "internal" else {}
    if kind != "internal-nlb":
        return {}
    nlb = config.services.internal_nlb
    preserve = {TG_ATTRIBUTES: f"preserve_client_ip.enabled={str(nlb.preserve_client_ip).lower()}"}
    if nlb.target_type == "ip":
        # ip targets exist only in the AWS Load Balancer Controller (behaviour.md 11): "external" hands the
        # Service to it; in-tree annotations would be ignored.
        return {LB_TYPE: "external", TARGET_TYPE: "ip", SCHEME: "internal", **preserve}
    # In-tree NLB, instance targets; the target-group attributes need cloud-provider-aws >= v1.34.0.
    return {LB_TYPE: "nlb", INTERNAL: "true", **preserve}


def cluster_config(config: ExperimentConfig) -> Manifest:
    """resources/private-cluster.yaml for the VPC1 cluster, filled from the config."""
    cluster, vpc = config.clusters.vpc1, config.vpcs.vpc1
    (doc,) = load(
        CLUSTER_FILE,
        {
            "cluster_name": cluster.name,
            "region": config.region,
            "experiment": config.name,
            "vpc_cidr": vpc.cidr,
            "nat_gateway": "Single" if vpc.nat_gateway else "Disable",
            "service_cidr": cluster.service_cidr,
            "cni_version": f"v{cluster.cni_version.removeprefix('v')}-eksbuild.1",
            "nodes": cluster.nodes,
            "private_networking": cluster.node_subnets == "private",
            "instance_type": NODE_TYPE_FOR_BRANCH_ENIS if _pod_groups(config) else NODE_TYPE,
        },
    )
    return doc


def _pod_groups(config: ExperimentConfig) -> bool:
    return any(c.pod_security_groups is not None for c in (config.clusters.vpc1, config.clusters.vpc2))


def service_kind(doc: Mapping[str, Any]) -> str | None:
    """The report's name for a Service document (None for a Service this experiment does not know)."""
    return SERVICE_KINDS.get(doc.get("metadata", {}).get("name", ""))
