"""Attach mode's promise about aws-node (design.md, "Existing clusters (attach)"): a phase without `snat` leaves
it as found; a phase with `snat` (allowed by `allow_snat_changes`) changes it only after what was found is saved,
and peerprobe restores that exactly — after the last phase, on failure, in cleanup, and in the next run when a
crash left it changed — and reads it back to prove it. Written over the Cluster port, so both worlds share it.
"""

from __future__ import annotations

import structlog

from peerprobe import aws_node, statedir
from peerprobe.backends.ports import Cluster
from peerprobe.config import ExperimentConfig, Snat
from peerprobe.errors import ConfigError, ConflictError, UnreadableStateError

log = structlog.get_logger()
ROLLOUT_SECONDS = 10 * 60


def cluster_id(backend: str, region: str, name: str) -> str:
    """One attached cluster, whichever experiment attaches to it: its saved aws-node and its lock go by this
    (`cluster-` keeps it apart from an environment whose experiment has the cluster's name)."""
    return f"{backend}:cluster-{name}:{region}"


def attached_ids(config: ExperimentConfig, backend: str) -> list[str]:
    """The lock keys of the config's attached clusters, sorted: owners take them in one order, so two checks
    attaching to the same two clusters never wait on each other crosswise."""
    names = [getattr(config.clusters, key).name for key in ("vpc1", "vpc2") if config.attached(key)]
    return sorted(cluster_id(backend, config.region, name) for name in names)


def _saved_name(cluster: str) -> str:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    return f"attach/aws-node-{slug}.json"


def found_env(cluster: str) -> dict[str, str] | None:
    """aws-node's environment as found before peerprobe first changed it; None when nothing is to restore."""
    data = statedir.read_state(_saved_name(cluster))  # unreadable raises: a restore is never skipped silently
    if data is None:
        return None
    env = data.get("env")
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise UnreadableStateError(statedir.state_dir() / _saved_name(cluster), "not a saved aws-node environment")
    return dict(env)


def _remember(kube: Cluster, cluster: str) -> dict[str, str]:
    """Save aws-node's environment once, before the first change: a second phase must not save what the first
    one set as if it had been found."""
    saved = found_env(cluster)
    if saved is not None:
        return saved
    env = kube.aws_node_env()
    statedir.write_json(_saved_name(cluster), {"cluster": cluster, "env": env})
    log.info("attach.aws_node_saved", cluster=cluster, variables=sorted(env))
    return env


def set_snat(kube: Cluster, cluster: str, snat: Snat | None) -> Snat:
    """A phase on an attached cluster: None leaves aws-node as found (and only reads it); settings are applied
    absolutely over the SNAT variables after what was found is saved."""
    if snat is None:
        return aws_node.snat_from_env(kube.aws_node_env())
    _remember(kube, cluster)
    wanted = aws_node.env_for(snat)
    assignments = [f"{n}={wanted[n]}" if n in wanted else f"{n}-" for n in aws_node.SNAT_VARS]
    return aws_node.snat_from_env(kube.patch_aws_node_env(assignments))


def refuse_snat_change(config: ExperimentConfig, key: str, snat: Snat | None) -> None:
    """The second lock behind the config's check: aws-node of an attached cluster is changed only with
    `allow_snat_changes` (ConfigError, exit 2, before anything is saved or patched)."""
    cluster = getattr(config.clusters, key)
    if snat is not None and config.attached(key) and not cluster.allow_snat_changes:
        raise ConfigError(
            f"clusters.{key}.allow_snat_changes: peerprobe would change aws-node of the attached cluster "
            f"{cluster.name!r}, which this config does not allow; nothing was changed"
        )


def _assignments(now: dict[str, str], found: dict[str, str]) -> list[str]:
    """What turns `now` back into `found`: only the variables peerprobe may have touched (the SNAT ones), each
    set to what was found or removed when it was absent."""
    changes = []
    for name in aws_node.SNAT_VARS:
        if now.get(name) == found.get(name):
            continue
        changes.append(f"{name}={found[name]}" if name in found else f"{name}-")
    return changes


def restore(kube: Cluster, cluster: str, *, timeout_seconds: float = ROLLOUT_SECONDS) -> list[str]:
    """aws-node back to what was found, rolled out and read back; the saved record goes only once the read-back
    agrees. Returns the assignments made ([] when nothing was saved or nothing differed)."""
    found = found_env(cluster)
    if found is None:
        return []
    changes = _assignments(kube.aws_node_env(), found)
    if changes:
        kube.patch_aws_node_env(changes)
        kube.wait_rollout(timeout_seconds=timeout_seconds)
    left = _assignments(kube.aws_node_env(), found)
    if left:
        raise ConflictError(
            f"aws-node of attached cluster {cluster}: still differs from what was found after restoring "
            f"({', '.join(left)} would restore it); the saved environment is kept for the next run or cleanup",
            resource="daemonset",
            resource_id=f"{cluster}/kube-system/aws-node",
            state="not-restored",
        )
    statedir.remove(_saved_name(cluster))
    log.info("attach.aws_node_restored", cluster=cluster, changes=changes)
    return changes


def namespace(config: ExperimentConfig) -> str:
    """The one namespace peerprobe writes to on an attached cluster (design.md): `peerprobe-<name>`."""
    return f"{NAMESPACE_PREFIX}{config.name}"


NAMESPACE_PREFIX = "peerprobe-"


def refuse_unbuilt(config: ExperimentConfig, step: str) -> None:
    """ConfigError (exit 2, nothing created) when `step` would join an attached cluster to one peerprobe creates:
    linking them would add routes to, and a peering or attachment in, the VPC of a cluster someone else runs.
    Attaching to both clusters, or to none, passes."""
    attached = [key for key in ("vpc1", "vpc2") if config.attached(key)]
    if len(attached) != 1:
        return
    (key,) = attached
    other = "vpc2" if key == "vpc1" else "vpc1"
    raise ConfigError(
        f"clusters.{key}.existing, clusters.{other}.existing: step {step}: attaching to one cluster "
        f"({getattr(config.clusters, key).name!r}) while creating the other is not built (linking them would "
        f"change the attached VPC's routes); attach to both (clusters.{other}.existing: true) or to neither; "
        "nothing was created"
    )
