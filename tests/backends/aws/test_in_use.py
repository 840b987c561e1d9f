"""Cleanup after EKS: interfaces linger for minutes after DeleteCluster (and a load balancer's after its
deletion), so AWS answers DependencyViolation to deleting their subnet, VPC or group. moto deletes at once;
these tests script AWS's answers. Retried with a bound; giving up names what is still there."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import Vpc
from peerprobe.errors import ConflictError
from tests.backends.aws._fakes import AwsBehaviour

AZ = "cn-northwest-1a"
FOREVER = 10**6
IN_USE = "The subnet has dependencies and cannot be deleted."


@pytest.fixture
def vpc(cloud: AwsCloud) -> Vpc:
    return cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")


@pytest.fixture
def subnet(cloud: AwsCloud, vpc: Vpc) -> str:
    return cloud.ensure_subnet("private-a", vpc_id=vpc.id, cidr="172.16.0.0/24", availability_zone=AZ, public=False).id


def _cni_interface(ec2: Any, subnet: str, groups: list[str] | None = None) -> str:
    """What the VPC CNI leaves when a node goes before ipamd released its extra interface."""
    raw = ec2.create_network_interface(SubnetId=subnet, Description="aws-K8S-i-0123456789abcdef0", Groups=groups or [])
    return str(raw["NetworkInterface"]["NetworkInterfaceId"])


def test_a_subnet_still_in_use_is_deleted_once_its_interfaces_go(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, subnet: str
) -> None:
    behaviour.fail("ec2:DeleteSubnet", "DependencyViolation", message=IN_USE, times=2)
    cloud.delete_subnet(subnet)
    assert behaviour.answered == ["ec2:DeleteSubnet DependencyViolation"] * 2
    assert ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["Subnets"] == []


def test_giving_up_on_a_subnet_names_the_interfaces_still_in_it(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, subnet: str
) -> None:
    eni = _cni_interface(ec2, subnet)
    behaviour.fail("ec2:DeleteSubnet", "DependencyViolation", message=IN_USE, times=FOREVER)
    with pytest.raises(
        ConflictError,
        match=rf"subnet {subnet}: DependencyViolation: .*still there: {eni} "
        r"\(aws-K8S-i-0123456789abcdef0, available\)",
    ) as caught:
        cloud.delete_subnet(subnet)
    assert caught.value.state == "DependencyViolation"
    assert behaviour.calls("ec2:DeleteSubnet") == 3  # the tests' attempt cap; on AWS, up to 15 minutes


def test_giving_up_on_a_vpc_names_its_interfaces_groups_and_subnets(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, vpc: Vpc, subnet: str
) -> None:
    group = cloud.ensure_security_group("k8s-elb-a1b2", vpc_id=vpc.id, description="left by cloud-provider-aws").id
    eni = _cni_interface(ec2, subnet, [group])
    behaviour.fail("ec2:DeleteVpc", "DependencyViolation", times=FOREVER)
    with pytest.raises(ConflictError, match=rf"vpc {vpc.id}: DependencyViolation") as caught:
        cloud.delete_vpc(vpc.id)
    assert f"{eni} (aws-K8S-i-0123456789abcdef0" in str(caught.value)
    assert f"{group} (k8s-elb-a1b2)" in str(caught.value) and subnet in str(caught.value)


def test_a_security_group_an_interface_still_uses_is_deleted_once_it_goes(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, vpc: Vpc
) -> None:
    group = cloud.ensure_security_group("peer-host", vpc_id=vpc.id, description="EC2 web host").id
    behaviour.fail(
        "ec2:DeleteSecurityGroup", "DependencyViolation", times=2, when=lambda params: params.get("GroupId") == group
    )
    cloud.delete_security_group(group)
    assert ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroups"] == []


def test_an_internet_gateway_waits_for_the_vpc_public_addresses_to_go(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, vpc: Vpc
) -> None:
    igw = cloud.ensure_internet_gateway("vpc1-igw", vpc_id=vpc.id)
    behaviour.fail(
        "ec2:DetachInternetGateway",
        "DependencyViolation",
        times=2,
        message=f"Network {vpc.id} has some mapped public address(es).",
    )
    cloud.delete_internet_gateway(igw.id)
    assert (
        ec2.describe_internet_gateways(Filters=[{"Name": "internet-gateway-id", "Values": [igw.id]}])[
            "InternetGateways"
        ]
        == []
    )


def test_other_errors_are_not_retried(cloud: AwsCloud, behaviour: AwsBehaviour, subnet: str) -> None:
    behaviour.fail("ec2:DeleteSubnet", "UnauthorizedOperation", times=FOREVER, status=403)
    with pytest.raises(Exception, match="UnauthorizedOperation"):
        cloud.delete_subnet(subnet)
    assert behaviour.calls("ec2:DeleteSubnet") == 1


def test_deleting_an_absent_subnet_succeeds(cloud: AwsCloud, subnet: str) -> None:
    cloud.delete_subnet(subnet)
    cloud.delete_subnet(subnet)


def test_a_controller_group_kept_while_the_cluster_referred_to_it_goes_with_the_cluster(
    cloud: AwsCloud, ec2: Any, behaviour: AwsBehaviour, vpc: Vpc, subnet: str
) -> None:
    """cloud-provider-aws's k8s-elb-* group stays referred to by the cluster security group's rule until
    DeleteCluster; the load balancer wait keeps it, and the cluster's deletion comes back for it."""
    cluster = "gcr-eksworkshop-private"
    other = cloud.ensure_subnet(
        "private-b", vpc_id=vpc.id, cidr="172.16.1.0/24", availability_zone="cn-northwest-1b", public=False
    ).id
    cloud.ensure_cluster(
        cluster,
        role_arn="arn:aws-cn:iam::123456789012:role/peerprobe-eks",
        subnet_ids=[subnet, other],
        service_cidr="10.100.0.0/16",
    )
    group = ec2.create_security_group(
        GroupName="k8s-elb-a1b2c3",
        Description="Security group for Kubernetes ELB",
        VpcId=vpc.id,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": f"kubernetes.io/cluster/{cluster}", "Value": "owned"}]}
        ],
    )["GroupId"]
    behaviour.fail(
        "ec2:DeleteSecurityGroup", "DependencyViolation", times=1, message=f"resource {group} has a dependent object"
    )
    cloud.wait_load_balancers_gone(cluster=cluster, vpc_id=vpc.id, timeout_seconds=60)
    assert _groups(ec2, group) == [group]  # kept: the cluster still refers to it
    cloud.delete_cluster(cluster)
    assert _groups(ec2, group) == []


def _groups(ec2: Any, group_id: str) -> list[str]:
    found = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroups"]
    return [g["GroupId"] for g in found]
