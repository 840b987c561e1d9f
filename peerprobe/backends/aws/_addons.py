"""The VPC CNI pinned to `clusters.vpcN.cni_version` as the EKS managed add-on `vpc-cni`: the highest eksbuild
of that version for the cluster's Kubernetes version, created (taking over the self-managed aws-node) or
updated, and waited until ACTIVE."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import structlog

from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._state import VpcKey
from peerprobe.config import ExperimentConfig, version_tuple
from peerprobe.errors import ConfigError, ConflictError, InfrastructureError, NotFoundError

if TYPE_CHECKING:
    from peerprobe.backends.aws._base import AwsBase
    from peerprobe.backends.ports import EksCluster

log = structlog.get_logger()
ADDON = "vpc-cni"
ADDON_WAIT_SECONDS = 10 * 60  # ACTIVE in a minute or two; an aws-node rollout over live nodes takes longer
# CreateAddon: every new EKS cluster already runs the self-managed aws-node, and the add-on can only take it
# over when EKS may replace its differing fields; with NONE (or PRESERVE) "creation of the add-on might fail"
# (https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAddon.html; the VPC CNI guide creates it with
# --resolve-conflicts OVERWRITE: https://docs.aws.amazon.com/eks/latest/userguide/vpc-add-on-create.html).
# Nothing of peerprobe's is lost: the SNAT settings are patched into aws-node after this step, per phase.
ON_CREATE = "OVERWRITE"
# UpdateAddon: peerprobe changes aws-node's SNAT env, fields EKS manages, and "modifying a field managed by
# Amazon EKS ... may result in your changes being overwritten when an add-on is updated"
# (https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-field-management.html). OVERWRITE would reset
# them to EKS's defaults behind the run's back, so a later phase or drift check would measure EKS's settings,
# not the ones read back; PRESERVE keeps them
# (https://docs.aws.amazon.com/eks/latest/APIReference/API_UpdateAddon.html).
ON_UPDATE = "PRESERVE"
_BUILD = re.compile(r"^v(\d+\.\d+\.\d+)-eksbuild\.(\d+)$")
_SETTLING = frozenset({"CREATING", "UPDATING"})
_BROKEN = frozenset({"CREATE_FAILED", "DELETE_FAILED"})
_FAILED = frozenset({"CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED"})
MAX_LISTED = 12


def ensure_vpc_cni(cloud: AwsBase, cluster: EksCluster, config: ExperimentConfig, vpc: VpcKey) -> str:
    """The `vpc-cni` add-on of `cluster` at clusters.<vpc>.cni_version and ACTIVE; returns its add-on version."""
    wanted = resolve_version(
        cloud, getattr(config.clusters, vpc).cni_version, cluster.version, key=f"clusters.{vpc}.cni_version"
    )
    current = _settled(cloud, cluster.name)
    values = configuration_values(config, vpc)
    if current is None:
        _create(cloud, cluster.name, wanted, values=values)
    elif current.get("addonVersion") != wanted or (values and current.get("configurationValues") != values):
        _update(cloud, cluster.name, wanted, previous=str(current.get("addonVersion")), values=values)
    wait_active(cloud, cluster.name, version=wanted)
    return wanted


def resolve_version(cloud: AwsBase, cni_version: str, kubernetes_version: str, *, key: str) -> str:
    """The highest `v<cni_version>-eksbuild.N` EKS offers for the Kubernetes version; a ConfigError naming `key`
    and what is available when it offers none."""
    wanted = cni_version.removeprefix("v")
    offered = available_versions(cloud, kubernetes_version)
    builds = [(int(m[2]), v) for v in offered if (m := _BUILD.match(v)) is not None and m[1] == wanted]
    if not builds:
        raise ConfigError(
            f"{key}: {cni_version} has no {ADDON} add-on build for Kubernetes {kubernetes_version} "
            f"in {cloud.clients.region}; available: {_listed(offered)}"
        )
    chosen = max(builds)[1]
    log.info(
        "eks.addon_version_resolved", addon=ADDON, cni_version=wanted, kubernetes=kubernetes_version, version=chosen
    )
    return chosen


def require_offered(cloud: AwsBase, cni_version: str, *, key: str) -> None:
    """Read-only, before anything is created: a ConfigError naming `key` when EKS offers no build of the CNI
    version for any Kubernetes version (the cluster's own version is checked again when it exists)."""
    wanted = cni_version.removeprefix("v")
    offered = available_versions(cloud, None)
    if not any((m := _BUILD.match(v)) is not None and m[1] == wanted for v in offered):
        raise ConfigError(
            f"{key}: {cni_version} has no {ADDON} add-on build in {cloud.clients.region}; available: {_listed(offered)}"
        )


def available_versions(cloud: AwsBase, kubernetes_version: str | None) -> list[str]:
    """Every add-on version of vpc-cni that EKS lists as compatible with the Kubernetes version (None: any)."""
    pages = cloud.eks.get_paginator("describe_addon_versions")
    found: list[str] = []
    versions = {"kubernetesVersion": kubernetes_version} if kubernetes_version else {}
    with aws_errors("eks addon versions", ADDON, name=f"Kubernetes {kubernetes_version or 'any'}"):
        for page in pages.paginate(addonName=ADDON, **versions):
            for addon in page.get("addons", []):
                if addon.get("addonName") == ADDON:
                    found += [str(v["addonVersion"]) for v in addon.get("addonVersions", [])]
    return found


def _listed(offered: list[str]) -> str:
    """The CNI versions on offer, newest first, each once (builds folded), cut at MAX_LISTED."""
    versions = {m[1] for v in offered if (m := _BUILD.match(v)) is not None}
    newest = sorted(versions, key=version_tuple, reverse=True)
    if not newest:
        return "none"
    return ", ".join(newest[:MAX_LISTED]) + (", …" if len(newest) > MAX_LISTED else "")


def describe(cloud: AwsBase, cluster: str) -> dict[str, Any] | None:
    """The add-on as EKS reports it, or None when the cluster has none."""
    try:
        with aws_errors("eks addon", f"{cluster}/{ADDON}"):
            return dict(cloud.eks.describe_addon(clusterName=cluster, addonName=ADDON)["addon"])
    except NotFoundError:
        return None


def _settled(cloud: AwsBase, cluster: str) -> dict[str, Any] | None:
    """The add-on once no create or update of an earlier attempt is still running (a resumed run)."""
    current = describe(cloud, cluster)
    if current is None:
        return None
    status = str(current.get("status"))
    if status in _BROKEN:
        raise ConflictError(
            f"eks addon {cluster}/{ADDON}: is {status}{_issues(current)}; delete it (eks DeleteAddon) and run again",
            resource="eks addon",
            resource_id=f"{cluster}/{ADDON}",
            state=status,
        )
    return wait_active(cloud, cluster) if status in _SETTLING else current


def configuration_values(config: ExperimentConfig, vpc: VpcKey) -> str:
    """The add-on's configuration values: with security groups for pods, the init container's
    DISABLE_TCP_EARLY_DEMUX=true, without which kubelet's TCP (and HTTP) probes to a branch-ENI pod fail
    (amazon-vpc-cni-k8s README, DISABLE_TCP_EARLY_DEMUX; its chart's values.yaml `init.env`, the schema the
    add-on's configuration follows; EKS user guide, security-groups-pods-deployment). Empty otherwise."""
    if getattr(config.clusters, vpc).pod_security_groups is None:
        return ""
    return json.dumps({"init": {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}}}, separators=(",", ":"))


def _create(cloud: AwsBase, cluster: str, version: str, *, values: str = "") -> None:
    extra = {"configurationValues": values} if values else {}
    with aws_errors("eks addon", f"{cluster}/{ADDON}"):
        cloud.eks.create_addon(
            clusterName=cluster,
            addonName=ADDON,
            addonVersion=version,
            resolveConflicts=ON_CREATE,
            tags=cloud.stamp.tags(ADDON),
            **extra,
        )
    log.info("eks.addon_created", cluster=cluster, addon=ADDON, version=version, resolve_conflicts=ON_CREATE)


def _update(cloud: AwsBase, cluster: str, version: str, *, previous: str, values: str = "") -> None:
    extra = {"configurationValues": values} if values else {}
    with aws_errors("eks addon", f"{cluster}/{ADDON}"):
        cloud.eks.update_addon(
            clusterName=cluster, addonName=ADDON, addonVersion=version, resolveConflicts=ON_UPDATE, **extra
        )
    log.info(
        "eks.addon_updated",
        cluster=cluster,
        addon=ADDON,
        version=version,
        previous=previous,
        resolve_conflicts=ON_UPDATE,
    )


def wait_active(cloud: AwsBase, cluster: str, *, version: str | None = None) -> dict[str, Any]:
    """Until the add-on is ACTIVE (at `version`, when given: an update may not show as UPDATING at once), bounded
    at ADDON_WAIT_SECONDS at the waits' pace. Not botocore's AddonActive waiter: it gives up on DEGRADED, which an
    aws-node rollout passes through, and never on UPDATE_FAILED."""
    seen: dict[str, Any] = {}

    def check() -> dict[str, Any] | None:
        addon = describe(cloud, cluster)
        seen.update(addon or {})
        return (addon or {}) if _active(addon, cluster, version) else None

    addon = cloud.waits.poll(
        check,
        kind="eks addon",
        resource_id=f"{cluster}/{ADDON}",
        goal=f"ACTIVE at {version or 'any version'}",
        max_seconds=ADDON_WAIT_SECONDS,
        state=lambda: f"still {seen.get('status')} at {seen.get('addonVersion')}",
    )
    log.info("eks.addon_active", cluster=cluster, addon=ADDON, version=version)
    return addon


def _active(addon: dict[str, Any] | None, cluster: str, version: str | None) -> bool:
    """True when ACTIVE at `version`; raises when it is gone or failed (no wait changes that)."""
    status = str(addon.get("status")) if addon is not None else "absent"
    if addon is None or status in _FAILED:
        raise InfrastructureError(
            f"eks addon {cluster}/{ADDON}: {status}{_issues(addon)}",
            resource="eks addon",
            resource_id=f"{cluster}/{ADDON}",
            state=status,
        )
    return status == "ACTIVE" and version in (None, addon.get("addonVersion"))


def _issues(addon: dict[str, Any] | None) -> str:
    issues = ((addon or {}).get("health") or {}).get("issues") or []
    text = "; ".join(f"{i.get('code', '')}: {i.get('message', '')}" for i in issues)
    return f" ({text[:200]})" if text else ""
