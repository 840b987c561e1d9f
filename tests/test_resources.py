"""resources/ manifests filled from the config: allocations from the plan, controllers' annotations, and
source ranges that never open anything to the whole internet."""

from __future__ import annotations

from typing import Any

from peerprobe import config, resources, topology
from peerprobe.backends.lab import kube
from peerprobe.model import lb_source_ranges


def services(**overrides: Any) -> dict[str, dict[str, Any]]:
    cfg = config.from_mapping(overrides)
    docs = resources.manifests(cfg, topology.plan(cfg))
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}


def test_every_service_and_deployment_is_there_with_the_plan_allocations() -> None:
    cfg = config.load()
    plan = topology.plan(cfg)
    docs = resources.manifests(cfg, plan)
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"} == {"source-ip-app", "busybox", "nginx"}
    found = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert found["clusterip"]["spec"]["clusterIP"] == plan.vpc1.cluster_ip
    assert found["nodeport"]["spec"]["ports"][0]["nodePort"] == plan.vpc1.node_port
    assert found["source-ip-app-headless"]["spec"]["clusterIP"] == "None"
    echo = next(d for d in docs if d["metadata"]["name"] == "source-ip-app")
    assert echo["spec"]["template"]["spec"]["containers"][0]["image"] == cfg.images.echo
    assert echo["spec"]["template"]["metadata"]["labels"] == {"app": "source-ip-app"}


def test_load_balancers_carry_the_policy_and_the_experiments_own_source_ranges() -> None:
    cfg = config.from_mapping({"services": {"external_traffic_policy": "Local"}})
    plan = topology.plan(cfg)
    docs = resources.manifests(cfg, plan)
    balanced = [d for d in docs if d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"]
    assert len(balanced) == len(topology.LB_KINDS)  # the Classic ELB, the internal NLB and the nginx NLB
    for doc in balanced:
        assert doc["spec"]["externalTrafficPolicy"] == "Local"
        assert doc["spec"]["loadBalancerSourceRanges"] == lb_source_ranges(cfg, plan)
        assert doc["spec"]["loadBalancerSourceRanges"] and "0.0.0.0/0" not in doc["spec"]["loadBalancerSourceRanges"]
        assert doc["spec"]["healthCheckNodePort"] > 30000


def test_classic_elb_scheme_annotation() -> None:
    internal = "service.beta.kubernetes.io/aws-load-balancer-internal"
    assert internal not in services()["loadbalancer"]["metadata"].get("annotations", {})
    scheme = {"services": {"load_balancer": {"scheme": "internal"}}}
    assert services(**scheme)["loadbalancer"]["metadata"]["annotations"][internal] == "true"


def test_internal_nlb_annotations_follow_the_target_type() -> None:
    prefix = "service.beta.kubernetes.io/aws-load-balancer-"
    in_tree = services()["source-ip-app-internal-nlb"]["metadata"]["annotations"]
    assert in_tree == {
        prefix + "type": "nlb",
        prefix + "internal": "true",
        prefix + "target-group-attributes": "preserve_client_ip.enabled=true",
    }
    lbc = services(services={"internal_nlb": {"target_type": "ip", "preserve_client_ip": False}})
    assert lbc["source-ip-app-internal-nlb"]["metadata"]["annotations"] == {
        prefix + "type": "external",
        prefix + "nlb-target-type": "ip",
        prefix + "scheme": "internal",
        prefix + "target-group-attributes": "preserve_client_ip.enabled=false",
    }


def test_vpc2_gets_only_a_busybox_and_the_cluster_config_is_filled() -> None:
    cfg = config.from_mapping({"clusters": {"vpc1": {"nodes": 2}}, "vpcs": {"vpc1": {"nat_gateway": False}}})
    (busybox,) = resources.manifests(cfg, topology.plan(cfg), cluster="vpc2")
    assert busybox["metadata"]["name"] == "busybox"
    eksctl = resources.cluster_config(cfg)
    assert eksctl["metadata"]["name"] == cfg.clusters.vpc1.name and eksctl["vpc"]["nat"]["gateway"] == "Disable"
    assert eksctl["managedNodeGroups"][0]["desiredCapacity"] == 2
    assert eksctl["managedNodeGroups"][0]["privateNetworking"] is True


def test_applied_services_get_endpoints_and_allocations() -> None:
    cfg = config.from_mapping({"services": {"external_traffic_policy": "Local"}})
    plan = topology.plan(cfg)
    applied = {s.kind: s for s in kube.services(resources.manifests(cfg, plan), plan)}
    assert applied["headless"].cluster_ip is None
    assert applied["cluster-ip"].cluster_ip == plan.vpc1.cluster_ip
    assert applied["nginx-nlb"].endpoints[0].ip == plan.vpc1.nginx_pod.ip  # type: ignore[union-attr]
    assert applied["internal-nlb"].local and applied["internal-nlb"].health_check_node_port
    ips = [s.cluster_ip for s in applied.values() if s.cluster_ip]
    assert len(ips) > 1 and len(ips) == len(set(ips))
    assert kube.headless_records(list(applied.values())) == {plan.vpc1.headless_name: [plan.vpc1.echo_pod.ip]}  # type: ignore[union-attr]
