"""IAM roles and the instance profile: at the root path (nodes of a role under a path never join a cluster
that authenticates with aws-auth), tolerant of the parallel step that creates the same role, and a node role
under a path refused before a node group is made with it."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.aws._iam import HOST_POLICIES, NODE_POLICIES, trust_policy
from peerprobe.errors import ConflictError
from tests.backends.aws._fakes import AwsBehaviour

NODE = "peerprobe-workshop-cn-northwest-1-node"


@pytest.fixture
def managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto knows the AWS managed policies (arn:aws-cn:iam::aws:policy/...) only when asked before it starts."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


pytestmark = pytest.mark.usefixtures("managed_policies")


@pytest.fixture
def iam(cloud: AwsCloud) -> Any:
    return cloud.iam


def test_roles_and_the_instance_profile_live_at_the_root_path(cloud: AwsCloud, iam: Any) -> None:
    """A managed node group writes its role's ARN into aws-auth as it is; the node's assumed-role identity has
    no path, so only a role at / matches (https://github.com/aws/containers-roadmap/issues/926)."""
    arn = cloud.ensure_role(NODE, service="ec2", policies=NODE_POLICIES)
    profile = cloud.ensure_instance_profile(NODE, role=NODE)
    assert arn.endswith(f":role/{NODE}")
    assert iam.get_role(RoleName=NODE)["Role"]["Path"] == "/"
    assert profile.endswith(f":instance-profile/{NODE}")
    assert iam.get_instance_profile(InstanceProfileName=NODE)["InstanceProfile"]["Path"] == "/"


def test_a_role_the_parallel_step_created_meanwhile_is_used(cloud: AwsCloud, iam: Any, behaviour: AwsBehaviour) -> None:
    """Both create-cluster steps ensure the same roles at once: this one read "no such role", the other created
    it, and this CreateRole then answers EntityAlreadyExists."""
    made = iam.create_role(RoleName=NODE, Path="/", AssumeRolePolicyDocument=trust_policy("ec2.amazonaws.com.cn"))
    behaviour.fail("iam:GetRole", "NoSuchEntity", times=1, status=404)
    before = behaviour.calls("iam:CreateRole")
    arn = cloud.ensure_role(NODE, service="ec2", policies=NODE_POLICIES)
    assert arn == made["Role"]["Arn"]
    assert behaviour.answered == ["iam:GetRole NoSuchEntity"] and behaviour.calls("iam:CreateRole") == before + 1
    attached = iam.list_attached_role_policies(RoleName=NODE)["AttachedPolicies"]
    assert sorted(p["PolicyName"] for p in attached) == sorted(NODE_POLICIES)


def test_an_instance_profile_created_meanwhile_is_used(cloud: AwsCloud, iam: Any, behaviour: AwsBehaviour) -> None:
    cloud.ensure_role(NODE, service="ec2", policies=HOST_POLICIES)
    made = iam.create_instance_profile(InstanceProfileName=NODE)["InstanceProfile"]
    behaviour.fail("iam:GetInstanceProfile", "NoSuchEntity", times=1, status=404)
    assert cloud.ensure_instance_profile(NODE, role=NODE) == made["Arn"]
    assert [r["RoleName"] for r in iam.get_instance_profile(InstanceProfileName=NODE)["InstanceProfile"]["Roles"]] == [
        NODE
    ]


def test_a_node_role_under_a_path_is_refused_before_any_node_group(cloud: AwsCloud, iam: Any) -> None:
    iam.create_role(RoleName=NODE, Path="/peerprobe/", AssumeRolePolicyDocument=trust_policy("ec2.amazonaws.com.cn"))
    with pytest.raises(ConflictError, match=rf"iam role {NODE}: has the path /peerprobe/; .*containers-roadmap#926"):
        cloud.ensure_role(NODE, service="ec2", policies=NODE_POLICIES)


def test_other_roles_may_have_a_path(cloud: AwsCloud, iam: Any) -> None:
    """Only the node role's ARN goes into aws-auth; an administrator's cluster or host role under a path works."""
    iam.create_role(RoleName="team-host", Path="/team/", AssumeRolePolicyDocument=trust_policy("ec2.amazonaws.com.cn"))
    assert cloud.ensure_role("team-host", service="ec2", policies=HOST_POLICIES).endswith(":role/team/team-host")
