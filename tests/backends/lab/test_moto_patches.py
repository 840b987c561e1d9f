"""moto with its managed policies built on first read: AWS's answers unchanged, only the partitions used pay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.iam.models import iam_backends

from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.lab import moto_patches

ACCOUNT = "123456789012"
EKS_POLICY = "arn:aws-cn:iam::aws:policy/AmazonEKSClusterPolicy"


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    moto_patches.install()
    with mock_aws():
        found = ClientFactory("cn-northwest-1").client("iam")
        found.create_role(RoleName="cluster", AssumeRolePolicyDocument="{}")
        yield found


def built(partition: str) -> bool:
    return isinstance(vars(iam_backends[ACCOUNT][partition]).get("_peerprobe_managed_policies"), dict)


def test_an_aws_managed_policy_of_the_partition_attaches(iam: Any) -> None:
    iam.attach_role_policy(RoleName="cluster", PolicyArn=EKS_POLICY)
    attached = iam.list_attached_role_policies(RoleName="cluster")["AttachedPolicies"]
    assert [policy["PolicyArn"] for policy in attached] == [EKS_POLICY]


def test_a_policy_aws_does_not_manage_is_refused(iam: Any) -> None:
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_role_policy(RoleName="cluster", PolicyArn="arn:aws-cn:iam::aws:policy/NoSuchPolicy")


def test_the_global_partitions_policy_is_not_the_china_one(iam: Any) -> None:
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_role_policy(RoleName="cluster", PolicyArn=EKS_POLICY.replace("aws-cn", "aws"))


def test_aws_scope_lists_the_managed_policies(iam: Any) -> None:
    listed = iam.list_policies(Scope="AWS", MaxItems=1000)["Policies"]
    assert "AmazonEKSClusterPolicy" in {policy["PolicyName"] for policy in listed}


def test_only_the_partition_a_request_used_builds_its_policies(iam: Any) -> None:
    iam.attach_role_policy(RoleName="cluster", PolicyArn=EKS_POLICY)
    assert built("aws-cn")
    assert not built("aws-us-gov")


def test_without_the_setting_no_managed_policy_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    moto_patches.install()
    monkeypatch.delenv("MOTO_IAM_LOAD_MANAGED_POLICIES", raising=False)
    with mock_aws():
        iam = ClientFactory("cn-northwest-1").client("iam")
        assert iam.list_policies(Scope="AWS")["Policies"] == []


@pytest.fixture
def ec2() -> Iterator[Any]:
    moto_patches.install()
    with mock_aws():
        yield ClientFactory("cn-northwest-1").client("ec2")


def test_a_resource_answers_its_own_tags(ec2: Any) -> None:
    tags = [{"Key": "peerprobe/env", "Value": "e1"}, {"Key": "Name", "Value": "web"}]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    spec = [{"ResourceType": "security-group", "Tags": tags}]
    group = ec2.create_security_group(GroupName="web", Description="d", VpcId=vpc, TagSpecifications=spec)
    ec2.create_security_group(GroupName="other", Description="d", VpcId=vpc)
    found = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"][0]
    assert found["Tags"] == tags


def test_a_tag_filter_finds_only_the_tagged(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    spec = [{"ResourceType": "subnet", "Tags": [{"Key": "peerprobe/env", "Value": "e1"}]}]
    tagged = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", TagSpecifications=spec)["Subnet"]["SubnetId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24")
    found = ec2.describe_subnets(Filters=[{"Name": "tag:peerprobe/env", "Values": ["e1"]}])["Subnets"]
    assert [subnet["SubnetId"] for subnet in found] == [tagged]


def test_describe_tags_still_answers_by_resource(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "team", "Value": "net"}])
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"]
    assert found == [{"Key": "team", "ResourceId": vpc, "ResourceType": "vpc", "Value": "net"}]
