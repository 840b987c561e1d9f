"""EKS clusters and node groups: ensure twice -> one, another environment's cluster is not adopted."""

from __future__ import annotations

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.ports import Stamp
from peerprobe.errors import ConflictError, InfrastructureError
from tests.backends.aws._fakes import AwsBehaviour

ROLE = "arn:aws-cn:iam::123456789012:role/peerprobe-eks"


def test_cluster_and_nodegroup_twice_then_deleted_twice(cloud: AwsCloud) -> None:
    subnets = _subnets(cloud)
    for _ in range(2):
        cluster = cloud.ensure_cluster(
            "gcr-eksworkshop-private", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16", version="1.30"
        )
        group = cloud.ensure_nodegroup(cluster.name, name="ng", node_role_arn=ROLE, subnet_ids=subnets, size=3)
    assert (cluster.status, cluster.service_cidr, cluster.subnet_ids) == ("ACTIVE", "10.100.0.0/16", tuple(subnets))
    assert (group.status, group.desired_size) == ("ACTIVE", 3)
    assert cloud.eks.list_clusters()["clusters"] == ["gcr-eksworkshop-private"]
    assert cloud.eks.list_nodegroups(clusterName=cluster.name)["nodegroups"] == ["ng"]

    for _ in range(2):
        cloud.delete_nodegroup(cluster.name, name="ng")
        cloud.delete_cluster(cluster.name)
    assert cloud.eks.list_clusters()["clusters"] == []


def test_cluster_of_another_environment_is_a_conflict(cloud: AwsCloud) -> None:
    subnets = _subnets(cloud)
    cloud.ensure_cluster("shared", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")
    other = AwsCloud(cloud.clients, stamp=Stamp(experiment="x", environment="aws:x:cn-northwest-1", run_id="r"))
    with pytest.raises(ConflictError, match="eks cluster shared: exists but belongs to environment aws:workshop"):
        other.ensure_cluster("shared", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")


def _subnets(cloud: AwsCloud) -> list[str]:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    return [
        cloud.ensure_subnet(
            f"private-{zone}", vpc_id=vpc.id, cidr=cidr, availability_zone=f"cn-northwest-1{zone}", public=False
        ).id
        for zone, cidr in (("a", "172.16.0.0/24"), ("b", "172.16.1.0/24"))
    ]


# IAM propagation: what CreateCluster answers for seconds after CreateRole (aws/aws-k8s-tester#232).
NOT_YET = f"Role with arn: {ROLE}, could not be assumed because it does not exist or the trusted entity is not correct"


def test_a_cluster_refused_while_its_new_role_propagates_is_created_on_a_later_try(
    cloud: AwsCloud, behaviour: AwsBehaviour
) -> None:
    subnets = _subnets(cloud)
    behaviour.fail("eks:CreateCluster", "InvalidParameterException", message=NOT_YET, times=2)
    cluster = cloud.ensure_cluster("c1", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")
    assert cluster.status == "ACTIVE"
    assert behaviour.calls("eks:CreateCluster") == 3


def test_a_node_group_refused_while_its_new_role_propagates_is_created_on_a_later_try(
    cloud: AwsCloud, behaviour: AwsBehaviour
) -> None:
    subnets = _subnets(cloud)
    cloud.ensure_cluster("c1", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")
    behaviour.fail(
        "eks:CreateNodegroup",
        "InvalidParameterException",
        times=1,
        message=f"The role with name {ROLE} cannot be found.",
    )
    assert cloud.ensure_nodegroup("c1", name="ng", node_role_arn=ROLE, subnet_ids=subnets, size=2).status == "ACTIVE"


def test_other_invalid_parameters_are_not_retried(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    subnets = _subnets(cloud)
    behaviour.fail(
        "eks:CreateCluster",
        "InvalidParameterException",
        times=10**6,
        message="Subnets specified must be in at least two different AZs",
    )
    with pytest.raises(InfrastructureError, match="InvalidParameterException: Subnets specified"):
        cloud.ensure_cluster("c1", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")
    assert behaviour.calls("eks:CreateCluster") == 1


def test_a_role_that_never_becomes_visible_gives_up_with_eks_own_words(
    cloud: AwsCloud, behaviour: AwsBehaviour
) -> None:
    subnets = _subnets(cloud)
    behaviour.fail("eks:CreateCluster", "InvalidParameterException", message=NOT_YET, times=10**6)
    with pytest.raises(InfrastructureError, match="eks cluster c1: InvalidParameterException: Role with arn"):
        cloud.ensure_cluster("c1", role_arn=ROLE, subnet_ids=subnets, service_cidr="10.100.0.0/16")
    assert behaviour.calls("eks:CreateCluster") == 3
