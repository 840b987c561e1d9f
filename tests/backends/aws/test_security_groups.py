"""Security groups: one group per name, authorize twice and revoke twice, rules read back."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import IngressRule
from peerprobe.errors import ConfigError
from tests.backends.aws._fakes import AwsBehaviour

PEER = "192.168.0.0/16"
RULES = [
    IngressRule(protocol="tcp", from_port=8080, to_port=8080, cidr=PEER, description="peerprobe pod path"),
    IngressRule(protocol="tcp", from_port=30080, to_port=30080, cidr=PEER),
]


def test_group_twice_is_one_group(cloud: AwsCloud, ec2: Any) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    first = cloud.ensure_security_group("vpc1-nodes", vpc_id=vpc.id, description="nodes")
    assert cloud.ensure_security_group("vpc1-nodes", vpc_id=vpc.id, description="nodes") == first
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["vpc1-nodes"]}])
    assert [g["GroupId"] for g in found["SecurityGroups"]] == [first.id]


def test_authorize_twice_then_revoke_twice(cloud: AwsCloud) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("vpc1-nodes", vpc_id=vpc.id, description="nodes")

    cloud.authorize_ingress(group.id, rules=RULES)
    cloud.authorize_ingress(group.id, rules=RULES)
    assert cloud.ingress_rules(group.id) == tuple(sorted(RULES))
    assert cloud.ingress_rules(group.id)[0].description == "peerprobe pod path"

    cloud.revoke_ingress(group.id, rules=RULES)
    cloud.revoke_ingress(group.id, rules=RULES)
    assert cloud.ingress_rules(group.id) == ()


def test_authorize_survives_a_rule_added_behind_its_back(cloud: AwsCloud, ec2: Any) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("g", vpc_id=vpc.id, description="g")
    permission = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": PEER}]}
    ec2.authorize_security_group_ingress(GroupId=group.id, IpPermissions=[permission])
    cloud.authorize_ingress(group.id, rules=RULES)
    assert len(cloud.ingress_rules(group.id)) == 2


def test_the_whole_internet_is_never_opened(cloud: AwsCloud) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("g", vpc_id=vpc.id, description="g")
    with pytest.raises(ConfigError, match=r"0\.0\.0\.0/0 is the whole internet"):
        cloud.authorize_ingress(
            group.id, rules=[IngressRule(protocol="tcp", from_port=80, to_port=80, cidr="0.0.0.0/0")]
        )
    assert cloud.ingress_rules(group.id) == ()


def test_a_broad_rule_written_by_a_controller_reads_back(cloud: AwsCloud, ec2: Any) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("g", vpc_id=vpc.id, description="g")
    permission = {"IpProtocol": "tcp", "FromPort": 31080, "ToPort": 31080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ec2.authorize_security_group_ingress(GroupId=group.id, IpPermissions=[permission])
    (rule,) = cloud.ingress_rules(group.id)
    assert rule.open_to_world


def test_group_to_group_rules(cloud: AwsCloud) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    nodes = cloud.ensure_security_group("nodes", vpc_id=vpc.id, description="nodes")
    self_rule = IngressRule(protocol="-1", from_port=-1, to_port=-1, source_group=nodes.id)
    cloud.authorize_ingress(nodes.id, rules=[self_rule])
    cloud.authorize_ingress(nodes.id, rules=[self_rule])
    assert cloud.ingress_rules(nodes.id) == (self_rule,)
    cloud.revoke_ingress(nodes.id, rules=[self_rule])
    assert cloud.ingress_rules(nodes.id) == ()


def test_delete_group_twice(cloud: AwsCloud, ec2: Any) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("g", vpc_id=vpc.id, description="g")
    cloud.delete_security_group(group.id)
    cloud.delete_security_group(group.id)  # already gone: succeeds, like every "ensure absent"
    found = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc.id]}])["SecurityGroups"]
    assert [g["GroupName"] for g in found] == ["default"]


def test_authorize_adds_every_missing_rule_in_one_call(cloud: AwsCloud, ec2: Any) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("g", vpc_id=vpc.id, description="g")
    calls: list[str] = []
    ec2.meta.events.register("before-call.ec2.AuthorizeSecurityGroupIngress", lambda **_: calls.append("call"))
    cloud.authorize_ingress(group.id, rules=RULES)
    assert calls == ["call"] and cloud.ingress_rules(group.id) == tuple(sorted(RULES))


def test_revoke_survives_a_rule_removed_behind_its_back(
    cloud: AwsCloud, ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("g", vpc_id=vpc.id, description="g")
    cloud.authorize_ingress(group.id, rules=RULES)
    stale = cloud.ingress_rules(group.id)
    cloud.revoke_ingress(group.id, rules=RULES[:1])
    monkeypatch.setattr(type(cloud), "ingress_rules", lambda self, group_id: stale)  # read before the removal
    cloud.revoke_ingress(group.id, rules=RULES)
    assert ec2.describe_security_groups(GroupIds=[group.id])["SecurityGroups"][0]["IpPermissions"] == []


def test_rules_for_a_group_ec2_does_not_know_yet_are_added_again(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    """Right after CreateSecurityGroup, DescribeSecurityGroups and AuthorizeSecurityGroupIngress by its id can
    answer InvalidGroup.NotFound (EC2 API reference, "Eventual consistency"; boto/boto3#620)."""
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    group = cloud.ensure_security_group("peer-host", vpc_id=vpc.id, description="host")
    unknown = f"The security group '{group.id}' does not exist"
    behaviour.fail("ec2:DescribeSecurityGroups", "InvalidGroup.NotFound", message=unknown)
    behaviour.fail("ec2:AuthorizeSecurityGroupIngress", "InvalidGroup.NotFound", message=unknown)
    cloud.authorize_ingress(group.id, rules=RULES)
    assert cloud.ingress_rules(group.id) == tuple(sorted(RULES))
    assert len(behaviour.answered) == 2
