"""Manifests applied to the lab's cluster: Deployments become the pods the plan placed, Services get their
ClusterIP, NodePort and healthCheckNodePort from the plan and their endpoints from the pods they select. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from peerprobe import resources
from peerprobe.backends.lab.net import Endpoint, KubeService
from peerprobe.topology import Pod, Topology

log = structlog.get_logger()


def placed_pods(topology: Topology) -> dict[str, tuple[str, Pod]]:
    """app label -> (pod name, placement): design.md's placement, which the lab's namespaces realise."""
    vpc1 = topology.vpc1
    found = {
        "source-ip-app": ("echo", vpc1.echo_pod),
        "busybox": ("busybox", vpc1.busybox_pod),
        "nginx": ("nginx", vpc1.nginx_pod),
    }
    return {app: (name, pod) for app, (name, pod) in found.items() if pod is not None}


def services(manifests: Sequence[Mapping[str, Any]], topology: Topology) -> list[KubeService]:
    """The Services of the manifests as kube-proxy and the controllers see them, endpoints included."""
    pods = placed_pods(topology)
    ready = {_app(doc): _container_port(doc) for doc in manifests if doc.get("kind") == "Deployment"}
    found = [doc for doc in manifests if doc.get("kind") == "Service"]
    unplaced = [app for app in ready if app not in pods]
    if unplaced:
        log.warning("lab.cluster.unplaced", deployments=unplaced, reason="the lab runs only the planned pods")
    return [_service(doc, index, topology, pods, ready) for index, doc in enumerate(found)]


def _app(doc: Mapping[str, Any]) -> str:
    return str(doc["spec"]["selector"]["matchLabels"].get("app", ""))


def _container_port(doc: Mapping[str, Any]) -> int | None:
    containers = doc["spec"]["template"]["spec"].get("containers", [])
    ports = [p["containerPort"] for c in containers for p in c.get("ports", [])]
    return int(ports[0]) if ports else None


def _service(
    doc: Mapping[str, Any],
    index: int,
    topology: Topology,
    pods: Mapping[str, tuple[str, Pod]],
    ready: Mapping[str, int | None],
) -> KubeService:
    spec, meta = doc["spec"], doc["metadata"]
    port = spec["ports"][0]
    kind = resources.service_kind(doc) or meta["name"]
    app = spec.get("selector", {}).get("app", "")
    target = int(port.get("targetPort", port["port"]))
    endpoints = _endpoints(app, target, pods, ready)
    node_port = port.get("nodePort") or topology.vpc1.service_node_ports.get(kind)
    return KubeService(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        kind=kind,
        type=spec.get("type", "ClusterIP"),
        cluster_ip=_cluster_ip(spec, index, topology),
        port=int(port["port"]),
        target_port=target,
        node_port=int(node_port) if node_port and spec.get("type") in ("NodePort", "LoadBalancer") else None,
        health_check_node_port=spec.get("healthCheckNodePort") or topology.vpc1.health_check_node_ports.get(kind),
        local=spec.get("externalTrafficPolicy") == "Local",
        annotations=dict(meta.get("annotations") or {}),
        source_ranges=list(spec.get("loadBalancerSourceRanges") or []),
        endpoints=endpoints,
    )


def _endpoints(
    app: str, port: int, pods: Mapping[str, tuple[str, Pod]], ready: Mapping[str, int | None]
) -> list[Endpoint]:
    """The selected pod, when a Deployment runs it (one replica each, as placed)."""
    if app not in pods or app not in ready:
        return []
    name, pod = pods[app]
    return [Endpoint(pod=name, ip=pod.ip, port=port, node=pod.node)]


def _cluster_ip(spec: Mapping[str, Any], index: int, topology: Topology) -> str | None:
    """As the API server does: the one asked for, none for headless, else the next free one (here: after the
    plan's ClusterIP, deterministically by position)."""
    asked = spec.get("clusterIP")
    if asked == "None":
        return None
    if asked:
        return str(asked)
    base = ipaddress.IPv4Address(topology.vpc1.cluster_ip or "10.100.128.33")
    return str(base + 1 + index)


def headless_records(applied: Sequence[KubeService]) -> dict[str, list[str]]:
    """CoreDNS's answers for headless Services: <name>.<namespace>.svc.cluster.local -> ready pod IPs."""
    return {
        f"{s.name}.{s.namespace}.svc.cluster.local": [ep.ip for ep in s.endpoints]
        for s in applied
        if s.cluster_ip is None and s.endpoints
    }
