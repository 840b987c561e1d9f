"""Classic and v2 load balancers and target groups: ensure twice -> one, delete twice -> gone."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import Listener
from peerprobe.errors import ConfigError
from tests.backends.aws._fakes import AwsBehaviour


@pytest.fixture
def subnets(cloud: AwsCloud) -> list[str]:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    return [
        cloud.ensure_subnet(
            f"public-{zone}", vpc_id=vpc.id, cidr=cidr, availability_zone=f"cn-northwest-1{zone}", public=True
        ).id
        for zone, cidr in (("a", "172.16.0.0/24"), ("b", "172.16.1.0/24"))
    ]


def test_classic_load_balancer_twice_then_deleted_twice(cloud: AwsCloud, subnets: list[str]) -> None:
    listeners = [Listener(protocol="TCP", port=80, instance_port=30080)]
    for _ in range(2):
        lb = cloud.ensure_classic_load_balancer(
            "workshop-echo-lb", subnet_ids=subnets, listeners=listeners, internal=False
        )
    assert lb.kind == "classic" and lb.dns_name
    names = [d["LoadBalancerName"] for d in cloud.elb.describe_load_balancers()["LoadBalancerDescriptions"]]
    assert names == ["workshop-echo-lb"]
    cloud.delete_load_balancer(lb)
    cloud.delete_load_balancer(lb)
    assert cloud.elb.describe_load_balancers()["LoadBalancerDescriptions"] == []


def test_network_load_balancer_and_target_group_twice(cloud: AwsCloud, subnets: list[str]) -> None:
    vpc_id = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16").id
    for _ in range(2):
        nlb = cloud.ensure_load_balancer("workshop-echo-nlb", subnet_ids=subnets, kind="network", internal=True)
        group = cloud.ensure_target_group(
            "workshop-echo-tg", vpc_id=vpc_id, protocol="TCP", port=30080, target_type="instance"
        )
    assert (nlb.kind, nlb.scheme) == ("network", "internal")
    assert [lb["LoadBalancerArn"] for lb in cloud.elbv2.describe_load_balancers()["LoadBalancers"]] == [nlb.arn]
    assert [tg["TargetGroupArn"] for tg in cloud.elbv2.describe_target_groups()["TargetGroups"]] == [group.arn]
    for _ in range(2):
        cloud.delete_load_balancer(nlb)
        cloud.delete_target_group(group.arn)
    assert cloud.elbv2.describe_load_balancers()["LoadBalancers"] == []


def test_load_balancer_names_are_checked_before_calling_aws(cloud: AwsCloud) -> None:
    with pytest.raises(ConfigError, match="at most 32"):
        cloud.ensure_load_balancer("x" * 33, subnet_ids=[], kind="network", internal=True)


# --- target health: what a load balancer sees of its targets (not yet used by the experiment's steps) ------


def _answer(key: str, items: list[dict[str, Any]]) -> Any:
    def change(answer: dict[str, Any]) -> bool:
        answer[key] = items
        return True

    return change


def test_classic_targets_out_of_service_after_registration_are_not_settled(
    cloud: AwsCloud, subnets: list[str], behaviour: AwsBehaviour
) -> None:
    listeners = [Listener(protocol="TCP", port=80, instance_port=30080)]
    lb = cloud.ensure_classic_load_balancer("echo-lb", subnet_ids=subnets, listeners=listeners, internal=False)
    registering = {
        "InstanceId": "i-1",
        "State": "OutOfService",
        "ReasonCode": "ELB",
        "Description": "Instance registration is still in progress.",
    }
    behaviour.rewrite("elb:DescribeInstanceHealth", _answer("InstanceStates", [registering]))
    behaviour.rewrite("elb:DescribeInstanceHealth", _answer("InstanceStates", [registering | {"State": "InService"}]))
    first = cloud.target_health(lb.dns_name)
    assert first is not None and not first.settled
    assert first.targets[0].state == "OutOfService" and first.targets[0].reason == "ELB"
    second = cloud.target_health(lb.dns_name)
    assert second is not None and second.settled and second.kind == "classic"


def test_a_classic_instance_failing_its_health_check_does_not_hold_the_others_back(
    cloud: AwsCloud, subnets: list[str], behaviour: AwsBehaviour
) -> None:
    """externalTrafficPolicy Local: nodes without the echo pod fail the health check (reason code Instance)
    for as long as the Service exists; that is settled, not on its way."""
    listeners = [Listener(protocol="TCP", port=80, instance_port=30080)]
    lb = cloud.ensure_classic_load_balancer("echo-lb", subnet_ids=subnets, listeners=listeners, internal=False)
    states = [
        {"InstanceId": "i-1", "State": "InService"},
        {"InstanceId": "i-2", "State": "OutOfService", "ReasonCode": "Instance"},
    ]
    behaviour.rewrite("elb:DescribeInstanceHealth", _answer("InstanceStates", states))
    health = cloud.target_health(lb.dns_name)
    assert health is not None and health.settled


def test_nlb_targets_initial_then_healthy(cloud: AwsCloud, subnets: list[str], behaviour: AwsBehaviour) -> None:
    vpc_id = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16").id
    nlb = cloud.ensure_load_balancer("echo-nlb", subnet_ids=subnets, kind="network", internal=True)
    group = cloud.ensure_target_group("echo-tg", vpc_id=vpc_id, protocol="TCP", port=30080, target_type="instance")
    cloud.elbv2.create_listener(
        LoadBalancerArn=nlb.arn,
        Protocol="TCP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group.arn}],
    )

    def target(state: str) -> dict[str, Any]:
        return {
            "Target": {"Id": "i-1", "Port": 30080},
            "TargetHealth": {"State": state, "Reason": "Elb.RegistrationInProgress"},
        }

    key = "TargetHealthDescriptions"
    behaviour.rewrite("elbv2:DescribeTargetHealth", _answer(key, [target("healthy"), target("initial")]))
    behaviour.rewrite("elbv2:DescribeTargetHealth", _answer(key, [target("healthy")] * 2))
    first = cloud.target_health(nlb.dns_name)
    assert first is not None and [t.state for t in first.targets] == ["healthy", "initial"] and not first.settled
    assert first.targets[0].port == 30080
    second = cloud.target_health(nlb.dns_name)
    assert second is not None and second.settled and second.kind == "network"


def test_target_health_of_a_name_no_load_balancer_answers_is_none(cloud: AwsCloud) -> None:
    assert cloud.target_health("nothing-here.elb.cn-northwest-1.amazonaws.com.cn") is None
