"""IAM roles for the clusters, the nodes and the EC2 host (with its instance profile): created if missing,
trust policies and managed policies with the partition of the region in every ARN."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import AwsBase, absent_ok
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._partition import managed_policy, service_principal
from peerprobe.backends.ports import TAG_ENVIRONMENT
from peerprobe.errors import ConflictError, NotFoundError

log = structlog.get_logger()

# https://docs.aws.amazon.com/eks/latest/userguide/cluster-iam-role.html and create-node-role.html;
# SSM Run Command on the EC2 host needs AmazonSSMManagedInstanceCore (Systems Manager setup guide).
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
HOST_POLICIES = ("AmazonSSMManagedInstanceCore",)
# Roles and the instance profile live at the root path. A managed node group writes its role's ARN, path and
# all, into aws-auth, while the node's credentials (an assumed-role ARN) carry no path, so with the CONFIG_MAP
# authentication mode (CreateCluster's default) nodes of a role under a path never join
# (https://github.com/aws/containers-roadmap/issues/926; aws-iam-authenticator#268; eksctl-io/eksctl#2689).
ROLE_PATH = "/"
IAM_WAIT_SECONDS = 2 * 60  # IAM changes reach every endpoint within seconds, at worst a minute or two


def trust_policy(principal: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class IamOps(AwsBase):
    @property
    def iam(self) -> Any:
        return self.clients.client("iam")

    def ensure_role(self, name: str, *, service: str, policies: Sequence[str]) -> str:
        """The role `name` trusted by `service` ("eks", "ec2") with the managed `policies` attached; its ARN.
        A role that exists (ours, or one an administrator made for us) is used as it is, policies added; one
        made meanwhile by a step running beside this one (both create-cluster steps need the same roles) too."""
        raw = self._role(name) or self._create_role(name, service=service)
        _refuse_node_role_path(name, raw, policies)
        attached = self._attached(name)
        for policy in policies:
            policy_arn = managed_policy(self.clients.region, policy)
            if policy_arn in attached:
                continue
            with aws_errors("iam role", name, policy):
                self.iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
            log.info("iam.policy_attached", role=name, policy=policy)
        return str(raw["Arn"])

    def _create_role(self, name: str, *, service: str) -> dict[str, Any]:
        try:
            with aws_errors("iam role", name):
                raw: dict[str, Any] = self.iam.create_role(
                    RoleName=name,
                    Path=ROLE_PATH,
                    AssumeRolePolicyDocument=trust_policy(service_principal(self.clients.region, service)),
                    Description=f"peerprobe {self.stamp.environment}",
                    Tags=self.tag_list(name),
                )["Role"]
        except ConflictError as error:
            found = self._role(name) if error.state == "EntityAlreadyExists" else None
            if found is None:
                raise
            log.info("iam.role_found", role=name, reason="created meanwhile by a parallel step")
            return found
        log.info("iam.role_created", role=name, service=service)
        return raw

    def _role(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("iam role", name):
                return dict(self.iam.get_role(RoleName=name)["Role"])
        except NotFoundError:
            return None

    def _attached(self, name: str) -> set[str]:
        with aws_errors("iam role", name):
            pages = self.iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
            return {str(p["PolicyArn"]) for page in pages for p in page["AttachedPolicies"]}

    def role_is_ours(self, name: str) -> bool:
        raw = self._role(name)
        if raw is None:
            return False
        with aws_errors("iam role", name):
            tags = self.iam.list_role_tags(RoleName=name)["Tags"]
        return any(t["Key"] == TAG_ENVIRONMENT and t["Value"] == self.stamp.environment for t in tags)

    def delete_role(self, name: str) -> None:
        """Detach its policies, leave its instance profiles, delete it; only a role this environment made."""
        if not self.role_is_ours(name):
            log.info("iam.role_kept", role=name, reason="absent or not made by this environment")
            return
        with absent_ok("iam_role", name):
            for policy_arn in sorted(self._attached(name)):
                self.iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
            profiles = self.iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]
            for profile in profiles:
                self.iam.remove_role_from_instance_profile(
                    InstanceProfileName=profile["InstanceProfileName"], RoleName=name
                )
            self.iam.delete_role(RoleName=name)

    def ensure_instance_profile(self, name: str, *, role: str) -> str:
        """The instance profile `name` holding `role`, waited until it exists; its ARN."""
        raw = self._instance_profile(name) or self._create_instance_profile(name)
        if role not in {r["RoleName"] for r in raw.get("Roles", [])}:
            with aws_errors("iam instance profile", name, role):
                self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        self.wait(
            self.iam,
            "instance_profile_exists",
            kind="iam instance profile",
            resource_id=name,
            max_seconds=IAM_WAIT_SECONDS,
            InstanceProfileName=name,
        )
        return str(raw["Arn"])

    def _instance_profile(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("iam instance profile", name):
                return dict(self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"])
        except NotFoundError:
            return None

    def _create_instance_profile(self, name: str) -> dict[str, Any]:
        try:
            with aws_errors("iam instance profile", name):
                raw: dict[str, Any] = self.iam.create_instance_profile(
                    InstanceProfileName=name, Path=ROLE_PATH, Tags=self.tag_list(name)
                )["InstanceProfile"]
        except ConflictError as error:
            found = self._instance_profile(name) if error.state == "EntityAlreadyExists" else None
            if found is None:
                raise
            return found
        log.info("iam.instance_profile_created", profile=name)
        return raw

    def delete_instance_profile(self, name: str) -> None:
        with absent_ok("iam_instance_profile", name):
            raw = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
            for role in raw.get("Roles", []):
                self.iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
            self.iam.delete_instance_profile(InstanceProfileName=name)


def _refuse_node_role_path(name: str, raw: dict[str, Any], policies: Sequence[str]) -> None:
    """A node role under a path (ours from before, or an administrator's) would leave the nodes out of the
    cluster (see ROLE_PATH): say so before a node group is made with it."""
    path = str(raw.get("Path", "/"))
    if "AmazonEKSWorkerNodePolicy" in policies and path != "/":
        raise ConflictError(
            f"iam role {name}: has the path {path}; EKS nodes of a role under a path never join a cluster that "
            "authenticates with aws-auth (containers-roadmap#926). Delete the role (peerprobe cleanup removes "
            "one it made) or recreate it at the path /, then run again",
            resource="iam role",
            resource_id=name,
            state="path",
        )
