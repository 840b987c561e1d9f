"""What each backend builds. Both backends build custom networking, a transit gateway, security groups for pods and
route_cidrs (backends/beyond.py, the lab's data plane reading them back from moto), and refuse only what AWS itself
would not do (a node type that cannot carry the branch ENIs); `peerprobe predict` models every feature. Both build
attach mode (on the lab: to the clusters of another lab environment, checked by lab.environment.require_owners)."""

from __future__ import annotations

from peerprobe import resources
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError

BUILDS_BEYOND = frozenset({"aws", "lab"})  # the backends that build issue 15's features


def beyond_keys(config: ExperimentConfig) -> list[str]:
    """The keys of ``config`` that ask for issue 15's features, in the config's order."""
    keys = [f"vpcs.{key}.secondary_cidrs" for key in ("vpc1", "vpc2") if getattr(config.vpcs, key).secondary_cidrs]
    for key in ("vpc1", "vpc2"):
        cluster = getattr(config.clusters, key)
        if cluster.custom_networking.enabled:
            keys.append(f"clusters.{key}.custom_networking")
        if cluster.pod_security_groups is not None:
            keys.append(f"clusters.{key}.pod_security_groups")
    if config.peering.via != "peering":
        keys.append("peering.via")
    if config.peering.route_cidrs != "all":
        keys.append("peering.route_cidrs")
    return keys


def unsupported_keys(config: ExperimentConfig, backend: str = "lab") -> list[str]:
    """The keys of ``config`` that ask for what ``backend`` does not build, in the config's order."""
    keys = [] if backend in BUILDS_BEYOND else beyond_keys(config)
    return keys


def attach_problems(config: ExperimentConfig) -> list[str]:
    """Attaching to one cluster while creating the other is not built on any backend (attach.refuse_unbuilt)."""
    attached = [key for key in ("vpc1", "vpc2") if config.attached(key)]
    if len(attached) != 1:
        return []
    other = "vpc2" if attached[0] == "vpc1" else "vpc1"
    return [
        f"clusters.{attached[0]}.existing, clusters.{other}.existing: attaching to one cluster while creating the "
        f"other is not built (linking them would change the attached VPC's routes); attach to both or to neither"
    ]


def refusal(config: ExperimentConfig, backend: str) -> ConfigError | None:
    """The error (exit 2) for a config the ``backend`` cannot build, one line per key; None when it can."""
    lines = [
        f"{key}: not yet supported on the {backend} backend; `peerprobe predict` models it"
        for key in unsupported_keys(config, backend)
    ]
    if backend in BUILDS_BEYOND:
        lines = trunk_problems(config) + lines
    lines = attach_problems(config) + lines
    return ConfigError("\n".join(lines)) if lines else None


# Families that cannot carry a trunk ENI: "No instance types in the t family are supported" (EKS user guide,
# security-groups-for-pods.html, Considerations); amazon-vpc-resource-controller-k8s pkg/aws/vpc/limits.go marks
# the t types IsTrunkingCompatible: false (t3.medium among them).
UNTRUNKABLE_FAMILIES = ("t1", "t2", "t3", "t3a", "t4g")


def trunk_problem(config: ExperimentConfig, key: str, instance_type: str) -> str | None:
    """Why the node type cannot give ``key``'s pods branch ENIs; None when it can, or when none are asked for."""
    if getattr(config.clusters, key).pod_security_groups is None:
        return None
    if instance_type.split(".", 1)[0] not in UNTRUNKABLE_FAMILIES:
        return None
    return (
        f"clusters.{key}.pod_security_groups, resources/{resources.CLUSTER_FILE} instanceType: {instance_type} "
        "cannot carry a trunk ENI, so no pod would get a branch ENI (EKS user guide: no t-family instance type "
        "supports security groups for pods); use e.g. m5.large"
    )


def trunk_problems(config: ExperimentConfig) -> list[str]:
    doc = resources.cluster_config(config)
    groups = doc.get("managedNodeGroups") or doc.get("nodeGroups") or [{}]
    instance_type = str(groups[0].get("instanceType", resources.NODE_TYPE))
    found = (trunk_problem(config, key, instance_type) for key in ("vpc1", "vpc2"))
    return [problem for problem in found if problem]


def check_supported(config: ExperimentConfig, backend: str) -> None:
    error = refusal(config, backend)
    if error is not None:
        raise error
