"""aws-node's environment (the VPC CNI DaemonSet) and the SNAT settings it means, both ways.

Parsing follows amazon-vpc-cni-k8s pkg/networkutils/network.go: EXTERNALSNAT via getBoolEnvVar (strconv
ParseBool, default false), EXCLUDE_SNAT_CIDRS split on commas with invalid or IPv6 entries skipped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from peerprobe.config import Snat

EXTERNAL_SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"
EXCLUDE_SNAT_CIDRS = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS"
SNAT_VARS = (EXTERNAL_SNAT, EXCLUDE_SNAT_CIDRS)
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def snat_from_env(env: Mapping[str, str]) -> Snat:
    """What aws-node does with its environment; a value it cannot parse counts as the default."""
    raw = env.get(EXTERNAL_SNAT, "")
    external = raw in _TRUE  # an unparsable bool falls back to the default (false), as getBoolEnvVar does
    return Snat(external_snat=external, exclude_snat_cidrs=_valid_cidrs(env.get(EXCLUDE_SNAT_CIDRS, "")))


def _valid_cidrs(value: str) -> list[str]:
    cidrs = []
    for part in (p.strip() for p in value.split(",")):
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            continue
        if network.version == 4 and str(network) == part:
            cidrs.append(part)
    return cidrs


def env_for(snat: Snat) -> dict[str, str]:
    """The SNAT variables that express ``snat``; absent keys are to be removed (phases are absolute)."""
    env: dict[str, str] = {}
    if snat.external_snat:
        env[EXTERNAL_SNAT] = "true"
    if snat.exclude_snat_cidrs:
        env[EXCLUDE_SNAT_CIDRS] = ",".join(snat.exclude_snat_cidrs)
    return env


def apply_assignments(env: Mapping[str, str], assignments: list[str]) -> dict[str, str]:
    """``kubectl set env`` semantics: NAME=VALUE sets, NAME- unsets; anything else is a usage error."""
    updated = dict(env)
    for item in assignments:
        if item.endswith("-") and "=" not in item:
            updated.pop(item[:-1], None)
        elif "=" in item and item.split("=", 1)[0]:
            name, value = item.split("=", 1)
            updated[name] = value
        else:
            raise ValueError(f"{item!r}: use NAME=VALUE to set or NAME- to unset")
    return updated
