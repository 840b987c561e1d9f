"""EKS clusters and managed node groups: create if missing, wait until active, delete idempotently."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import absent_ok
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._leftovers import LeftoverOps
from peerprobe.backends.ports import TAG_ENVIRONMENT, EksCluster, NodeGroup
from peerprobe.errors import ConflictError, InfrastructureError, NotFoundError, PeerprobeError

log = structlog.get_logger()
CLUSTER_WAIT_SECONDS = 20 * 60  # EKS control planes take 10-15 minutes to become ACTIVE
NODEGROUP_WAIT_SECONDS = 15 * 60  # managed node groups take 3-10 minutes
# A role made seconds earlier may not be visible to EKS yet: CreateCluster and CreateNodegroup then answer
# InvalidParameterException naming the role ("Role with arn: ..., could not be assumed because it does not exist
# or the trusted entity is not correct"; aws/aws-k8s-tester#232: gone on the second try). terraform-provider-aws
# retries CreateCluster on these messages for IAM's propagation time (internal/service/eks/cluster.go); so do we.
ROLE_PROPAGATION_SECONDS = 2 * 60


class EksOps(LeftoverOps):
    def ensure_cluster(
        self,
        name: str,
        *,
        role_arn: str,
        subnet_ids: Sequence[str],
        service_cidr: str,
        version: str | None = None,
        security_group_ids: Sequence[str] = (),
        endpoint_private_access: bool = True,
        endpoint_public_access: bool = True,
    ) -> EksCluster:
        """The EKS cluster `name` of this environment, created if missing and waited until ACTIVE
        (about 10-15 minutes on AWS; bounded at CLUSTER_WAIT_SECONDS)."""
        raw = self._describe_cluster(name)
        if raw is None:
            self._create_cluster(
                name,
                role_arn=role_arn,
                subnet_ids=subnet_ids,
                service_cidr=service_cidr,
                version=version,
                security_group_ids=security_group_ids,
                access=(endpoint_private_access, endpoint_public_access),
            )
        else:
            self._check_eks_owner("eks cluster", name, raw.get("tags", {}), state=raw["status"])
        self.wait(
            self.eks,
            "cluster_active",
            kind="eks cluster",
            resource_id=name,
            name=name,
            max_seconds=CLUSTER_WAIT_SECONDS,
        )
        return _cluster(self._describe_cluster(name) or {})

    def cluster(self, name: str) -> EksCluster | None:
        """Read a cluster back (endpoint, CA, cluster security group) without waiting; None when absent."""
        raw = self._describe_cluster(name)
        return _cluster(raw) if raw is not None else None

    def _describe_cluster(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("eks cluster", name):
                return dict(self.eks.describe_cluster(name=name)["cluster"])
        except NotFoundError:
            return None

    def _create_cluster(
        self,
        name: str,
        *,
        role_arn: str,
        subnet_ids: Sequence[str],
        service_cidr: str,
        version: str | None,
        security_group_ids: Sequence[str],
        access: tuple[bool, bool] = (True, True),
    ) -> None:
        params: dict[str, Any] = {
            "name": name,
            "roleArn": role_arn,
            "tags": self.stamp.tags(name),
            "resourcesVpcConfig": {
                "subnetIds": list(subnet_ids),
                "securityGroupIds": list(security_group_ids),
                "endpointPrivateAccess": access[0],
                "endpointPublicAccess": access[1],
            },
            "kubernetesNetworkConfig": {"serviceIpv4Cidr": service_cidr},
        }
        if version:
            params["version"] = version
        self._create_once_role_visible("eks cluster", name, lambda: self.eks.create_cluster(**params))
        log.info("eks.cluster_created", cluster=name, subnets=list(subnet_ids), service_cidr=service_cidr)

    def _create_once_role_visible(self, kind: str, resource_id: str, create: Callable[[], Any]) -> None:
        """`create`, again while EKS refuses the role as not (yet) there, bounded at ROLE_PROPAGATION_SECONDS."""

        def attempt() -> None:
            with aws_errors(kind, resource_id):
                create()

        self.waits.retry(
            attempt,
            retry_if=role_not_visible,
            what=f"{kind} {resource_id}",
            max_seconds=ROLE_PROPAGATION_SECONDS,
            first=5,
        )

    def _check_eks_owner(self, kind: str, name: str, tags: dict[str, str], *, state: str) -> None:
        # Names are the identity of EKS resources; one that another environment made is not ours to adopt.
        owner = tags.get(TAG_ENVIRONMENT)
        if owner != self.stamp.environment:
            raise ConflictError(
                f"{kind} {name}: exists but belongs to environment {owner or '(not peerprobe)'}, "
                f"not {self.stamp.environment}",
                resource=kind,
                resource_id=name,
                state=state,
            )
        if state in ("DELETING", "FAILED", "DELETE_FAILED", "CREATE_FAILED"):
            raise ConflictError(f"{kind} {name}: is {state}", resource=kind, resource_id=name, state=state)

    def delete_cluster(self, name: str) -> None:
        """Delete the cluster (its node groups first, see delete_nodegroup), wait until it is gone, then delete
        the security groups its load balancer controllers left (kept earlier while the cluster's own group
        still referred to them)."""
        with absent_ok("eks_cluster", name):
            self.eks.delete_cluster(name=name)
        self.wait(
            self.eks,
            "cluster_deleted",
            kind="eks cluster",
            resource_id=name,
            name=name,
            max_seconds=CLUSTER_WAIT_SECONDS,
        )
        self.delete_controller_groups(cluster=name)

    def ensure_nodegroup(
        self,
        cluster: str,
        *,
        name: str,
        node_role_arn: str,
        subnet_ids: Sequence[str],
        size: int,
        instance_types: Sequence[str] = ("t3.medium",),
        labels: Mapping[str, str] | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> NodeGroup:
        """A managed node group of `size` nodes, created if missing and waited until ACTIVE (bounded at
        NODEGROUP_WAIT_SECONDS)."""
        raw = self._describe_nodegroup(cluster, name)
        if raw is None:
            scaling = {"minSize": min_size or size, "maxSize": max(max_size or size, size), "desiredSize": size}
            params = {
                "clusterName": cluster,
                "nodegroupName": name,
                "nodeRole": node_role_arn,
                "subnets": list(subnet_ids),
                "scalingConfig": scaling,
                "instanceTypes": list(instance_types),
                "labels": dict(labels or {}),
                "tags": self.stamp.tags(name),
            }
            self._create_once_role_visible(
                "eks nodegroup", f"{cluster}/{name}", lambda: self.eks.create_nodegroup(**params)
            )
            log.info("eks.nodegroup_created", cluster=cluster, nodegroup=name, size=size)
        else:
            self._check_eks_owner("eks nodegroup", f"{cluster}/{name}", raw.get("tags", {}), state=raw["status"])
        self.wait(
            self.eks,
            "nodegroup_active",
            kind="eks nodegroup",
            resource_id=f"{cluster}/{name}",
            max_seconds=NODEGROUP_WAIT_SECONDS,
            clusterName=cluster,
            nodegroupName=name,
        )
        return _nodegroup(self._describe_nodegroup(cluster, name) or {})

    def _describe_nodegroup(self, cluster: str, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors("eks nodegroup", f"{cluster}/{name}"):
                return dict(self.eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"])
        except NotFoundError:
            return None

    def delete_nodegroup(self, cluster: str, *, name: str) -> None:
        """Delete the node group and wait until it is gone; an absent group (or cluster) is fine."""
        with absent_ok("eks_nodegroup", f"{cluster}/{name}"):
            self.eks.delete_nodegroup(clusterName=cluster, nodegroupName=name)
        self.wait(
            self.eks,
            "nodegroup_deleted",
            kind="eks nodegroup",
            resource_id=f"{cluster}/{name}",
            max_seconds=NODEGROUP_WAIT_SECONDS,
            clusterName=cluster,
            nodegroupName=name,
        )


def role_not_visible(error: PeerprobeError) -> bool:
    """EKS's refusal of a role IAM has not propagated yet: InvalidParameterException naming the role."""
    return (
        isinstance(error, InfrastructureError)
        and error.state == "InvalidParameterException"
        and "role" in str(error).lower()
    )


def _cluster(raw: dict[str, Any]) -> EksCluster:
    vpc = raw.get("resourcesVpcConfig", {})
    return EksCluster(
        name=raw["name"],
        arn=raw["arn"],
        status=raw["status"],
        endpoint=raw.get("endpoint", ""),
        version=raw.get("version", ""),
        service_cidr=raw.get("kubernetesNetworkConfig", {}).get("serviceIpv4Cidr", ""),
        subnet_ids=tuple(vpc.get("subnetIds", [])),
        cluster_security_group_id=vpc.get("clusterSecurityGroupId", ""),
        certificate_authority=raw.get("certificateAuthority", {}).get("data", ""),
    )


def _nodegroup(raw: dict[str, Any]) -> NodeGroup:
    groups = raw.get("resources", {}).get("autoScalingGroups", [])
    return NodeGroup(
        cluster=raw["clusterName"],
        name=raw["nodegroupName"],
        status=raw["status"],
        subnet_ids=tuple(raw.get("subnets", [])),
        desired_size=int(raw["scalingConfig"]["desiredSize"]),
        autoscaling_groups=tuple(group["name"] for group in groups),
    )
