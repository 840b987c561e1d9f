"""What the backends build today. A config that asks for a feature only the model knows yet (custom networking,
a transit gateway, security groups for pods) is refused before anything starts, naming the key; `peerprobe
predict` models every feature."""

from __future__ import annotations

from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError


def unsupported_keys(config: ExperimentConfig) -> list[str]:
    """The keys of ``config`` that ask for what neither backend builds yet, in the config's order."""
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
    return keys + _attach_keys(config)


def _attach_keys(config: ExperimentConfig) -> list[str]:
    """Attach mode reads clusters and guards aws-node (backends/attach.py), but its steps are not built yet."""
    return [f"clusters.{key}.existing" for key in ("vpc1", "vpc2") if config.attached(key)]


def refusal(config: ExperimentConfig, backend: str) -> ConfigError | None:
    """The error (exit 2) for a config the ``backend`` cannot build, one line per key; None when it can."""
    keys = unsupported_keys(config)
    if not keys:
        return None
    lines = [f"{key}: not yet supported on the {backend} backend; `peerprobe predict` models it" for key in keys]
    return ConfigError("\n".join(lines))


def check_supported(config: ExperimentConfig, backend: str) -> None:
    error = refusal(config, backend)
    if error is not None:
        raise error
