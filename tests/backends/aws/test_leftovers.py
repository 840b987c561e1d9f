"""Waiting for a cluster's load balancers to go: only this cluster's load balancers and their interfaces count
(an adopted VPC is shared with other people's), and a load balancer deleted while it is being looked at does
not break the wait."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import Vpc
from peerprobe.errors import WaitTimeoutError
from tests.backends.aws._fakes import AwsBehaviour

CLUSTER = "gcr-eksworkshop-private"
TAG = {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"}


@pytest.fixture
def vpc(cloud: AwsCloud) -> Vpc:
    return cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")


@pytest.fixture
def subnet(cloud: AwsCloud, vpc: Vpc) -> str:
    return cloud.ensure_subnet(
        "public-a", vpc_id=vpc.id, cidr="172.16.0.0/24", availability_zone="cn-northwest-1a", public=True
    ).id


def _classic(cloud: AwsCloud, name: str, subnet: str, tags: list[dict[str, str]]) -> None:
    listeners = [{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}]
    cloud.elb.create_load_balancer(LoadBalancerName=name, Subnets=[subnet], Listeners=listeners, Tags=tags)


def _elb_interface(ec2: Any, subnet: str, name: str) -> str:
    """What ELB makes in each subnet of a Classic load balancer (moto makes none)."""
    raw = ec2.create_network_interface(SubnetId=subnet, Description=f"ELB {name}")["NetworkInterface"]
    return str(raw["NetworkInterfaceId"])


def test_other_load_balancers_interfaces_in_a_shared_vpc_are_not_waited_for(
    cloud: AwsCloud, ec2: Any, vpc: Vpc, subnet: str
) -> None:
    _classic(cloud, "someone-elses", subnet, [{"Key": "team", "Value": "payments"}])
    _elb_interface(ec2, subnet, "someone-elses")
    cloud.wait_load_balancers_gone(cluster=CLUSTER, vpc_id=vpc.id, timeout_seconds=60)
    assert cloud.load_balancer_leftovers(cluster=CLUSTER, vpc_id=vpc.id).interfaces == ()


def test_interfaces_of_our_load_balancer_are_waited_for_after_it_is_gone(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, vpc: Vpc, subnet: str
) -> None:
    """ELB releases a deleted load balancer's interfaces minutes later; the wait remembers whose they are."""
    _classic(cloud, "a1b2c3", subnet, [TAG])
    eni = _elb_interface(ec2, subnet, "a1b2c3")
    checks: list[int] = []

    def aws_releases_later(answer: dict[str, Any]) -> bool:
        checks.append(len(answer["NetworkInterfaces"]))
        if len(checks) == 1:
            cloud.elb.delete_load_balancer(LoadBalancerName="a1b2c3")  # the controller deletes it
        elif len(checks) == 2:
            ec2.delete_network_interface(NetworkInterfaceId=eni)  # ELB releases its interface afterwards
        return False

    behaviour.rewrite("ec2:DescribeNetworkInterfaces", aws_releases_later)
    cloud.wait_load_balancers_gone(cluster=CLUSTER, vpc_id=vpc.id, timeout_seconds=60)
    assert checks == [1, 1, 0]


def test_our_load_balancer_still_there_is_a_bounded_wait_naming_it(
    cloud: AwsCloud, ec2: Any, vpc: Vpc, subnet: str
) -> None:
    _classic(cloud, "a1b2c3", subnet, [TAG])
    eni = _elb_interface(ec2, subnet, "a1b2c3")
    with pytest.raises(WaitTimeoutError, match=rf"still there: a1b2c3, {eni} after 3 checks"):
        cloud.wait_load_balancers_gone(cluster=CLUSTER, vpc_id=vpc.id, timeout_seconds=60)


def test_a_load_balancer_deleted_between_describe_and_describe_tags_is_skipped(
    cloud: AwsCloud, behaviour: AwsBehaviour, vpc: Vpc, subnet: str
) -> None:
    """DescribeTags refuses the whole batch (LoadBalancerNotFound) when one name in it is gone."""
    _classic(cloud, "ours", subnet, [TAG])
    _classic(cloud, "going", subnet, [{"Key": "team", "Value": "payments"}])

    def deleted_meanwhile(answer: dict[str, Any]) -> bool:
        cloud.elb.delete_load_balancer(LoadBalancerName="going")
        return True

    behaviour.rewrite("elb:DescribeLoadBalancers", deleted_meanwhile, times=1)
    left = cloud.load_balancer_leftovers(cluster=CLUSTER, vpc_id=vpc.id)
    assert left.load_balancers == ("ours",)
    assert behaviour.calls("elb:DescribeTags") == 3  # the batch refused, then one by one
