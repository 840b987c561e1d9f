"""aws-node's environment (the VPC CNI DaemonSet): the SNAT settings it means, both ways, and what aws-node
does with every variable it reads, so `lab set-env` can warn about names and values aws-node ignores or refuses.

Sources: github.com/aws/amazon-vpc-cni-k8s (the files named beside each fact, at the master of 2026-08).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
    """parseCIDRString (pkg/networkutils/network.go): comma-separated, each entry trimmed and read by Go's
    net.ParseCIDR; an invalid or IPv6 entry is logged and skipped, a valid one kept as its network (host bits
    cleared: 10.0.0.1/8 is 10.0.0.0/8)."""
    return [str(network) for network in map(_go_cidr, value.split(",")) if network is not None]


def _go_cidr(entry: str) -> ipaddress.IPv4Network | None:
    """An IPv4 network as net.ParseCIDR reads one: ADDRESS/BITS with a decimal prefix length; None otherwise."""
    address, slash, bits = entry.strip().partition("/")
    if not slash or not (bits.isascii() and bits.isdigit()):
        return None
    try:
        network = ipaddress.ip_network(f"{address}/{int(bits)}", strict=False)
    except ValueError:
        return None
    return network if isinstance(network, ipaddress.IPv4Network) else None


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
        name, value = _split(item)
        if not name or ("=" not in item and not item.endswith("-")):
            raise ValueError(f"{item!r}: use NAME=VALUE to set or NAME- to unset")
        if problem := check_name(name):
            raise ValueError(problem)
        if value is None:
            updated.pop(name, None)
        else:
            updated[name] = value
    return updated


# --- what aws-node does with each variable it reads: `lab set-env` warns before it applies (as kubectl would) -----

# The names kubectl accepts for a container's environment (k8s.io/apimachinery validation.IsEnvVarName).
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_GO_INT = re.compile(r"[+-]?[0-9]+")  # strconv.Atoi: an optional sign and ASCII digits, nothing else
NETWORK = "pkg/networkutils/network.go"
IPAMD = "pkg/ipamd/ipamd.go"
MAIN = "cmd/aws-vpc-cni/main.go"  # validateEnvVars: aws-node's container exits 1 at start on what it refuses


@dataclass(frozen=True)
class Variable:
    """One variable aws-node reads: how it parses a value, and what it does with one it cannot use."""

    name: str
    source: str  # the file of amazon-vpc-cni-k8s that reads it
    kind: str = "text"  # text | bool | int | cidrs | choice | connmark | veth-prefix
    default: str = ""
    choices: tuple[str, ...] = ()
    minimum: int = 0
    maximum: int | None = None
    refuses: bool = False  # True: an unusable value stops aws-node from starting, instead of meaning the default
    note: str = ""


VARIABLES = (
    Variable(EXTERNAL_SNAT, NETWORK, "bool", "false"),  # getBoolEnvVar
    Variable(EXCLUDE_SNAT_CIDRS, NETWORK, "cidrs", note="ignored while AWS_VPC_K8S_CNI_EXTERNALSNAT is true"),
    Variable("AWS_EXTERNAL_SERVICE_CIDRS", NETWORK, "cidrs"),
    Variable("AWS_VPC_K8S_CNI_RANDOMIZESNAT", NETWORK, "choice", "prng", ("prng", "hashrandom", "none")),
    Variable("AWS_VPC_CNI_NODE_PORT_SUPPORT", NETWORK, "bool", "true"),
    Variable("AWS_VPC_K8S_CNI_CONNMARK", NETWORK, "connmark", "0x80"),  # getConnmark: ParseInt base 0, 1..2^32-1
    Variable("ENABLE_V6_EGRESS", MAIN, "bool", "false"),
    Variable("ENABLE_V4_EGRESS", MAIN, "bool", "true"),
    Variable("AWS_VPC_ENI_MTU", MAIN, "int", "9001", minimum=576, maximum=9001, refuses=True),  # validateMTU (IPv4)
    Variable("POD_MTU", MAIN, "int", "9001", minimum=576, maximum=9001, refuses=True),
    Variable("AWS_VPC_K8S_CNI_VETHPREFIX", MAIN, "veth-prefix", "eni", refuses=True),
    Variable("ENABLE_POD_ENI", MAIN, "bool", "false"),
    Variable(
        "POD_SECURITY_GROUP_ENFORCING_MODE",
        MAIN,
        "choice",
        "strict",
        ("strict", "standard"),
        refuses=True,
        note="checked when ENABLE_POD_ENI is true",
    ),
    Variable("AWS_VPC_K8S_PLUGIN_LOG_FILE", MAIN, note="`stdout` is refused"),
    Variable("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", MAIN),
    Variable("AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE", MAIN),
    Variable("AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE", MAIN),
    Variable("ENABLE_PREFIX_DELEGATION", MAIN, "bool", "false"),
    Variable("ENABLE_BANDWIDTH_PLUGIN", MAIN, "bool", "false"),
    Variable("DISABLE_POD_V6", MAIN, "bool", "false"),
    Variable("IP_COOLDOWN_PERIOD", MAIN, "int", "30", refuses=True),
    Variable("ENABLE_MULTI_NIC", MAIN, "bool", "false"),
    Variable("HOST_CNI_CONFDIR_PATH", MAIN),
    Variable("HOST_CNI_BIN_PATH", "cmd/aws-vpc-cni-init/main.go"),
    Variable("DISABLE_TCP_EARLY_DEMUX", "cmd/aws-vpc-cni-init/main.go", "bool", "false"),
    Variable("WARM_IP_TARGET", IPAMD, "int", "unset"),  # getWarmIPTarget: negative or invalid means unset
    Variable("MINIMUM_IP_TARGET", IPAMD, "int", "unset"),
    Variable("WARM_ENI_TARGET", IPAMD, "int", "1"),
    Variable("WARM_PREFIX_TARGET", IPAMD, "int", "0"),
    Variable("MAX_ENI", IPAMD, "int", "the instance type's limit", minimum=1),
    Variable("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", IPAMD, "bool", "false"),  # parseBoolEnvVar
    Variable("AWS_MANAGE_ENIS_NON_SCHEDULABLE", IPAMD, "bool", "false"),
    Variable("ENABLE_SUBNET_DISCOVERY", IPAMD, "bool", "true"),
    Variable("DISABLE_NETWORK_RESOURCE_PROVISIONING", IPAMD, "bool", "false"),
    Variable("DISABLE_LEAKED_ENI_CLEANUP", IPAMD, "bool", "false"),
    Variable("ENABLE_IPv4", IPAMD, "bool", "false"),
    Variable("ENABLE_IPv6", IPAMD, "bool", "false"),
    Variable("MANAGE_UNTAGGED_ENI", IPAMD, "bool", "true"),
    Variable("ANNOTATE_POD_IP", IPAMD, "bool", "false"),
    Variable("NETWORK_POLICY_ENFORCING_MODE", IPAMD, "choice", "", ("none", "strict", "standard"), refuses=True),
    Variable("AWS_VPC_K8S_CNI_BACKING_STORE", IPAMD),
    Variable("MY_NODE_NAME", IPAMD),
    Variable("MY_POD_NAME", "pkg/utils/eventrecorder/eventrecorder.go"),
    Variable("INTROSPECTION_BIND_ADDRESS", "pkg/ipamd/introspect.go"),
    Variable("DISABLE_INTROSPECTION", "cmd/aws-k8s-agent/main.go", "bool", "false"),
    Variable("DISABLE_METRICS", "cmd/aws-k8s-agent/main.go", "bool", "false"),
    Variable("AWS_VPC_K8S_CNI_LOGLEVEL", "pkg/utils/logger/config.go"),
    Variable("AWS_VPC_K8S_CNI_LOG_FILE", "pkg/utils/logger/config.go"),
    Variable("ENI_CONFIG_ANNOTATION_DEF", "pkg/eniconfig/eniconfig.go"),
    Variable("ENI_CONFIG_LABEL_DEF", "pkg/eniconfig/eniconfig.go"),
    Variable("ENABLE_IMDS_ONLY_MODE", "utils/constants.go", "bool", "false"),
    Variable("ADDITIONAL_ENI_TAGS", "pkg/awsutils/awsutils.go"),
    Variable("CLUSTER_NAME", "pkg/awsutils/awsutils.go"),
    Variable("VPC_CNI_VERSION", "pkg/awsutils/awsutils.go"),
    Variable("CLUSTER_ID", "pkg/ec2wrapper/ec2wrapper.go"),
    Variable("CLUSTER_ENDPOINT", "pkg/k8sapi/k8sutils.go"),
    Variable("AWS_EC2_ENDPOINT", "pkg/awsutils/awssession/session.go"),
    Variable("HTTP_TIMEOUT", "pkg/awsutils/awssession/session.go"),
    # Read by the libraries aws-node is built with (the AWS SDK for Go, Go's net/http), not by its own code.
    *(
        Variable(name, "the AWS SDK for Go")
        for name in (
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_STS_REGIONAL_ENDPOINTS",
            "AWS_ENDPOINT_URL",
            "AWS_CA_BUNDLE",
        )
    ),
    *(
        Variable(name, "Go's net/http")
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    ),
    # Deprecated (README.md): still accepted in manifests, read by no current code.
    Variable("AWS_VPC_K8S_CNI_CONFIGURE_RPFILTER", "README.md", note="deprecated since v1.12.1: aws-node ignores it"),
    Variable("ENABLE_NFTABLES", "README.md", note="deprecated since v1.13.2: aws-node ignores it"),
)
KNOWN = {variable.name: variable for variable in VARIABLES}


def check_name(name: str) -> str | None:
    """Why kubectl would refuse ``name``, or None."""
    if _ENV_NAME.fullmatch(name) is None:
        return f"{name!r} is not a valid environment variable name (letters, digits, '_', '-', '.'; no leading digit)"
    return None


def warnings(assignments: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """What aws-node will do with each NAME=VALUE / NAME- that it does not read, or reads and cannot use; then
    anything the resulting environment (``env`` changed by the assignments) leaves without effect."""
    found: list[str] = []
    for item in assignments:
        name, value = _split(item)
        if name not in KNOWN:
            found.append(_unknown(name))
        elif value is not None and (problem := value_problem(KNOWN[name], value)):
            found.append(f"{name}={value}: {problem}")
    return found + _without_effect(apply_assignments(env, list(assignments)))


def _split(item: str) -> tuple[str, str | None]:
    if "=" in item:
        name, value = item.split("=", 1)
        return name, value
    return item.removesuffix("-"), None


def _unknown(name: str) -> str:
    hint = did_you_mean(name)
    suggestion = f"; did you mean {hint}?" if hint else ""
    return f"{name}: aws-node reads no variable of this name, so setting it changes nothing{suggestion}"


def did_you_mean(name: str) -> str | None:
    """The known name ``name`` most likely meant: the same letters but for case and underscores, else a close
    spelling (difflib)."""
    squashed = {_squash(known): known for known in KNOWN}
    if _squash(name) in squashed:
        return squashed[_squash(name)]
    close = difflib.get_close_matches(name.upper(), list(KNOWN), n=1, cutoff=0.8)
    return close[0] if close else None


def _squash(name: str) -> str:
    return name.upper().replace("_", "").replace("-", "")


def value_problem(variable: Variable, value: str) -> str | None:
    """What aws-node does with ``value`` when it cannot use it as given; None when it can."""
    problem = _KIND_CHECKS.get(variable.kind, _no_check)(variable, value)
    if problem is None:
        return None
    if variable.kind == "cidrs":  # each entry on its own: the problem already says what aws-node keeps
        return f"{problem} ({variable.source})"
    if variable.refuses:
        return f"{problem}; aws-node refuses to start with it ({variable.source}), so its pods crash-loop"
    return f"{problem}; aws-node logs an error and uses {_default(variable)} ({variable.source})"


def _default(variable: Variable) -> str:
    return f"the default, {variable.default}" if variable.default else "no value"


def _no_check(variable: Variable, value: str) -> str | None:
    if variable.name == "AWS_VPC_K8S_PLUGIN_LOG_FILE" and value == "stdout":
        return "the plugin cannot log to stdout (validateEnvVars)"
    return None


def _bool(variable: Variable, value: str) -> str | None:
    # getBoolEnvVar / GetBoolAsStringEnvVar / parseBoolEnvVar all use strconv.ParseBool and fall back to the default.
    if value in _TRUE | _FALSE:
        return None
    accepted = ", ".join(sorted(_TRUE | _FALSE))
    return f"Go's strconv.ParseBool does not read {value!r} as a boolean (it takes {accepted})"


def _int(variable: Variable, value: str) -> str | None:
    if _GO_INT.fullmatch(value) is None:
        return f"{value!r} is not an integer (strconv.Atoi)"
    number = int(value)
    if number < variable.minimum or (variable.maximum is not None and number > variable.maximum):
        upper = f" to {variable.maximum}" if variable.maximum is not None else " or more"
        return f"{number} is out of range ({variable.minimum}{upper})"
    return None


def _cidrs(variable: Variable, value: str) -> str | None:
    problems = []
    for entry in value.split(","):
        network = _go_cidr(entry)
        if network is None:
            problems.append(
                f"{entry.strip()!r} is not an IPv4 CIDR (Go's net.ParseCIDR): aws-node logs an error and skips it"
            )
        elif str(network) != entry.strip():
            problems.append(f"{entry.strip()!r} is read as {network} (host bits cleared)")
    if not problems:
        return None
    kept = ",".join(_valid_cidrs(value)) or "nothing"
    return "; ".join(problems) + f"; aws-node keeps {kept}"


def _choice(variable: Variable, value: str) -> str | None:
    return None if value in variable.choices else f"{value!r} is not one of {', '.join(variable.choices)}"


def _connmark(variable: Variable, value: str) -> str | None:
    try:
        mark = int(value, 0) if value.isascii() and "_" not in value else None
    except ValueError:
        mark = None
    if mark is None or not 0 < mark <= 0xFFFFFFFF:
        return f"{value!r} is not a mark from 1 to 0xffffffff (strconv.ParseInt, base 0)"
    return None


def _veth_prefix(variable: Variable, value: str) -> str | None:
    if len(value) > 4 or value in ("eth", "lo", "vlan"):
        return f"{value!r}: the prefix must be at most 4 characters and not eth, lo or vlan"
    return None


_KIND_CHECKS = {
    "bool": _bool,
    "int": _int,
    "cidrs": _cidrs,
    "choice": _choice,
    "connmark": _connmark,
    "veth-prefix": _veth_prefix,
}


def _without_effect(env: Mapping[str, str]) -> list[str]:
    """Settings that parse but that another setting overrides."""
    if env.get(EXCLUDE_SNAT_CIDRS) and env.get(EXTERNAL_SNAT, "") in _TRUE:
        # GetExcludeSNATCIDRs (pkg/networkutils/network.go) returns nothing while external SNAT is on.
        return [f"{EXCLUDE_SNAT_CIDRS} has no effect while {EXTERNAL_SNAT} is true: aws-node SNATs nothing"]
    return []
