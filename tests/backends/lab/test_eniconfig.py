"""The lab places custom networking's pods only where the applied ENIConfigs and moto's subnets put them: what
disagrees with the plan is refused, naming it (backends/lab/eniconfig.py). A fake Cloud holds the subnets."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe import config, topology
from peerprobe.backends import beyond
from peerprobe.backends.aws._state import NetworkIds
from peerprobe.backends.lab.eniconfig import EniConfig, check_placement, from_manifests
from peerprobe.backends.ports import Subnet
from peerprobe.errors import ConflictError, NotFoundError

CUSTOM = {
    "vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}},
    "clusters": {"vpc1": {"custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"}}},
}
ENV = {"vpc1": {"AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true"}, "vpc2": {}}


class FakeSubnets:
    def __init__(self, subnets: dict[str, Subnet]) -> None:
        self.held = subnets

    def subnets(self, ids: list[str]) -> list[Subnet]:
        missing = [i for i in ids if i not in self.held]
        if missing:
            raise NotFoundError(f"subnet {missing[0]} not found", resource="subnet", resource_id=missing[0])
        return [self.held[i] for i in ids]


def _world() -> tuple[config.ExperimentConfig, topology.Topology, FakeSubnets, dict[str, EniConfig]]:
    """The pod subnets as create-network makes them, and the ENIConfigs as create-cluster applies them."""
    cfg = config.from_mapping(CUSTOM)
    planned = topology.plan(cfg)
    zones = [topology.zone(cfg.region, i) for i in range(topology.AZ_COUNT)]
    held = {
        f"subnet-{i}": Subnet(f"subnet-{i}", "vpc-1", str(block), zone, public=False, map_public_ip=False)
        for i, (zone, block) in enumerate(zip(zones, topology.pod_subnets("100.64.0.0/16"), strict=False))
    }
    network = NetworkIds(
        key="vpc1", vpc="vpc-1", cidr="172.16.0.0/16", pod_subnets={s.availability_zone: i for i, s in held.items()}
    )
    applied = from_manifests(beyond.eni_configs(network, security_group="sg-cluster"))
    return cfg, planned, FakeSubnets(held), applied


def _check(cfg: Any, planned: Any, cloud: Any, applied: dict[str, EniConfig], env: Any = None) -> None:
    check_placement(cloud, cfg, planned, applied={"vpc1": applied}, aws_node=env or ENV)


def test_the_applied_eniconfigs_read_back_per_zone_with_their_subnet_and_group() -> None:
    _, _, cloud, applied = _world()
    assert sorted(applied) == sorted(s.availability_zone for s in cloud.held.values())
    assert {c.security_groups[0] for c in applied.values()} == {"sg-cluster"}


def test_pods_in_their_zones_eniconfig_subnets_pass() -> None:
    _check(*_world())


def test_a_zone_without_an_eniconfig_is_named() -> None:
    cfg, planned, cloud, applied = _world()
    zone = planned.vpc1.nodes[0].az
    del applied[zone]
    with pytest.raises(ConflictError, match=f"vpc1 has no ENIConfig {zone}"):
        _check(cfg, planned, cloud, applied)


def test_a_subnet_moto_holds_elsewhere_names_the_pods_outside_it() -> None:
    cfg, planned, cloud, applied = _world()
    echo = planned.vpc1.echo_pod
    assert echo is not None
    zone = planned.vpc1.node(echo.node).az
    held = cloud.held[applied[zone].subnet]
    cloud.held[held.id] = Subnet(held.id, "vpc-1", "100.64.240.0/20", zone, public=False, map_public_ip=False)
    with pytest.raises(ConflictError, match=f"pods .*{echo.ip}.* not in ENIConfig {zone}'s subnet 100.64.240.0/20"):
        _check(cfg, planned, cloud, applied)


def test_a_deleted_subnet_is_named() -> None:
    cfg, planned, cloud, applied = _world()
    zone = planned.vpc1.nodes[0].az
    del cloud.held[applied[zone].subnet]
    with pytest.raises(ConflictError, match="which does not exist"):
        _check(cfg, planned, cloud, applied)


def test_aws_node_without_custom_networking_is_named() -> None:
    cfg, planned, cloud, applied = _world()
    with pytest.raises(ConflictError, match="AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG unset"):
        _check(cfg, planned, cloud, applied, {"vpc1": {}, "vpc2": {}})
