"""ExperimentConfig: every key of design.md with the workshop topology as default, YAML loading, and
validation whose messages start with the dotted key path. Imports nothing heavy, so bad input costs nothing.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import types
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from peerprobe import config_yaml, vpc_cidrs
from peerprobe.config_yaml import KeyPath, dotted, shorten
from peerprobe.errors import ConfigError

# EKS CreateCluster: "can contain only alphanumeric characters (case-sensitive), hyphens, and underscores.
# It must start with an alphanumeric character and can't be longer than 100 characters." (EKS API reference)
# Every pattern is matched in full (re.fullmatch: `$` would let a final newline through) over ASCII classes
# (`\d` would take non-ASCII digits).
EKS_NAME = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}", re.ASCII)
# The experiment name becomes part of tags, artifact keys and lab namespace names: keep it DNS-label-like.
EXPERIMENT_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?", re.ASCII)
PHASE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?", re.ASCII)
REGION = re.compile(r"[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-[0-9]", re.ASCII)
VERSION = re.compile(r"v?([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})", re.ASCII)
# EC2 ids: the prefix and 8 or 17 hex digits (EC2 resource IDs, "Resource IDs" in the EC2 user guide).
VPC_ID = re.compile(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})", re.ASCII)
# A subnet's Name tag: EC2 tag values are up to 255 characters (Tag restrictions, EC2 user guide); printable.
SUBNET_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
# An image reference: [registry[:port]/]path[:tag][@digest]; printable ASCII without spaces (distribution/reference).
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}", re.ASCII)
AWS_PROFILE = re.compile(r"[A-Za-z0-9_.@+=,:/-]{1,128}", re.ASCII)
# EKS serviceIpv4Cidr: within 10/8, 172.16/12 or 192.168/16, between /24 and /12
# (EKS API reference, KubernetesNetworkConfigRequest).
SERVICE_CIDR_PARENTS = tuple(ipaddress.IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# Ranges no VPC may use. AWS takes RFC 1918 and publicly routable blocks between /16 and /28
# (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html); these are neither unicast nor
# routable (IANA IPv4 Special-Purpose Address Registry, RFC 6890), or the lab has them for its own addresses.
NOT_UNICAST = {
    "0.0.0.0/8": "'this network' (RFC 1122), not unicast",
    "127.0.0.0/8": "loopback",
    "224.0.0.0/4": "multicast",
    "240.0.0.0/4": "reserved (RFC 1112), with the broadcast address 255.255.255.255",
}
LAB_RESERVED = {  # peerprobe/backends/lab/net/_names.py and peerprobe/topology.py
    "169.254.0.0/16": "link-local: the lab's point-to-point links and the pods' gateway 169.254.1.1 "
    "(AWS uses it for instance metadata)",
    "192.0.2.0/24": "RFC 5737 documentation range: the lab's outside client and its internet link",
    "198.51.100.0/24": "RFC 5737 documentation range: the lab's public addresses of vpc1",
    "203.0.113.0/24": "RFC 5737 documentation range: the lab's public addresses of vpc2",
}
# outside_cidrs become loadBalancerSourceRanges: never wider than a /8 in all (design.md principles).
OUTSIDE_MAX_PREFIX = 8
RESERVED_PHASE = "live"  # drift checks own this phase name
# VPC CNI versions that first carry a feature: AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG appears in v1.2.0 (git grep across
# the release tags of aws/amazon-vpc-cni-k8s); security groups for pods need 1.7.7 ("If your Amazon VPC CNI plugin
# for Kubernetes version is earlier than 1.7.7, then update", EKS user guide, security-groups-for-pods);
# POD_SECURITY_GROUP_ENFORCING_MODE appears in v1.11.0 (pkg/sgpp; before it every branch-ENI pod was "strict").
CUSTOM_NETWORKING_SINCE = (1, 2, 0)
POD_SECURITY_GROUPS_SINCE = (1, 7, 7)
ENFORCING_MODE_SINCE = (1, 11, 0)
POD_SUBNET_SPLIT = 2  # custom networking: the CIDR cut in four, one pod subnet per zone (three used)
AZ_COUNT = 3  # eksctl spreads a new VPC over three zones and cuts it in eight: 3 public, 3 private subnets
NODE_BLOCK = 8  # addresses planned per node: primary, secondary ENI, echo, busybox, nginx, spare
FIRST_HOST = 16  # offset of the first node in its subnet; below it: gateways, NAT and LB nodes
MAX_ERROR_LINES = 20
KNOWN_KEYS_NOTE = "(known keys here: "


class KeyedError(ValueError):
    """A refusal that says more than the field's path: ``keys`` replaces it (a rule that names every key
    involved), ``item`` names the list item at fault (0-based; shown as "item 1"), ``wants`` what the key takes."""

    def __init__(self, message: str, *, keys: Iterable[str] = (), item: int | None = None, wants: str = "") -> None:
        super().__init__(message)
        self.keys = tuple(keys)
        self.item = item
        self.wants = wants


def parse_cidr(value: object) -> str:
    """A strict IPv4 CIDR: host bits set is an error, not silently normalised (design.md)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 CIDR like 10.0.0.0/16, got {_got(value)}")
    if not value.isascii() or "/" not in value:
        raise ValueError(f"{shorten(value)} is not a valid CIDR (write it as a.b.c.d/n)")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{shorten(value)} is not a valid CIDR") from None
    if network.version != 4:
        raise ValueError(f"{shorten(value)} is not IPv4")
    if str(network) != value:
        raise ValueError(f"{shorten(value)} has host bits set or is not written canonically (did you mean {network}?)")
    return value


def network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def version_tuple(version: str) -> tuple[int, int, int]:
    match = VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"{shorten(version)} is not a version like 1.20.4")
    return int(match[1]), int(match[2]), int(match[3])


def _matching(pattern: re.Pattern[str], value: str, what: str) -> str:
    """``value`` when ``pattern`` matches all of it; else "'value' <what>" (``what`` starts with "is not")."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{shorten(value)} {what}")
    return value


def _kind(value: object) -> str:
    kinds = {
        bool: "the boolean",
        int: "the number",
        float: "the number",
        str: "the text",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }
    return kinds.get(type(value), type(value).__name__)


def _got(value: object) -> str:
    """What a user gave, in YAML's words: ``the number 5``, ``null``, ``a list [1, 2]``."""
    return "null" if value is None else f"{_kind(value)} {_shown(value)}"


def _shown(value: object) -> str:
    """A value as the YAML a user wrote: true, null, 1.2, 'text' (cut to a few dozen characters)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return shorten(value)


def _reserved(cidr: str, ranges: Mapping[str, str]) -> str | None:
    net = network(cidr)
    for reserved, why in ranges.items():
        if net.overlaps(network(reserved)):
            return f"{shorten(cidr)} overlaps {reserved}, {why}"
    return None


def vpc_cidr(value: str) -> str:
    """A VPC's CIDR: /16 to /28, unicast, and clear of the ranges the lab keeps for itself."""
    # AWS: "The allowed block size is between a /16 netmask and /28 netmask" (vpc-cidr-blocks.html).
    if not 16 <= network(value).prefixlen <= 28:
        raise ValueError(f"{shorten(value)}: a VPC CIDR must be between /16 and /28")
    problem = _reserved(value, NOT_UNICAST) or _reserved(value, LAB_RESERVED)
    if problem:
        raise ValueError(f"{problem}; a VPC needs a private (RFC 1918) or publicly routable range")
    return value


def _secondary_block(value: object) -> str:
    return vpc_cidr(str(value))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Subnets(_Model):
    """Subnets of an adopted VPC (aws backend)."""

    private: list[str] = Field(default_factory=list, description="private subnets (id or Name tag) to place nodes in")
    public: list[str] = Field(
        default_factory=list, description="public subnets (id or Name tag) for the EC2 host and load balancers"
    )

    @field_validator("private", "public")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        for index, item in enumerate(value):
            if item.startswith("subnet-") and not SUBNET_ID.fullmatch(item):
                raise KeyedError(f"{shorten(item)} is not a subnet id like subnet-0123456789abcdef0", item=index)
            if not SUBNET_NAME.fullmatch(item):
                raise KeyedError(
                    f"{shorten(item)} is neither a subnet id nor a Name tag (1-255 printable characters)", item=index
                )
            if item in value[:index]:
                raise KeyedError(f"duplicate {shorten(item)}", item=index)
        return value


class Vpc(_Model):
    cidr: str = Field(description="the VPC's IPv4 CIDR, /16 to /28, RFC 1918 or publicly routable")
    nat_gateway: StrictBool = Field(default=True, description="a NAT gateway for the private subnets")
    id: str | None = Field(default=None, description="aws backend: adopt this VPC (vpc-…) instead of creating one")
    subnets: Subnets = Field(default_factory=Subnets, description="aws backend: the adopted VPC's subnets")
    secondary_cidrs: list[str] = Field(
        default_factory=list,
        max_length=vpc_cidrs.MAX_BLOCKS - 1,
        description="further IPv4 CIDR blocks associated with the VPC (e.g. 100.64.0.0/16 for pods), /16 to /28, "
        "within AWS's association restrictions for the primary CIDR's range",
    )

    _cidr = field_validator("cidr", mode="before")(parse_cidr)

    @field_validator("secondary_cidrs", mode="before")
    @classmethod
    def _secondary(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        cidrs = [_indexed(parse_cidr, item, index) for index, item in enumerate(value)]
        for index, cidr in enumerate(cidrs):
            _indexed(_secondary_block, cidr, index)
            if cidr in cidrs[:index]:
                raise KeyedError(f"duplicate {cidr!r}", item=index)
        return cidrs

    @field_validator("cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        return vpc_cidr(value)

    @field_validator("id")
    @classmethod
    def _vpc_id(cls, value: str | None) -> str | None:
        return None if value is None else _matching(VPC_ID, value, "is not a VPC id like vpc-0123456789abcdef0")


class Vpcs(_Model):
    vpc1: Vpc = Field(default=Vpc(cidr="172.16.0.0/16"), description="the VPC of the cluster with the echo server")
    vpc2: Vpc = Field(default=Vpc(cidr="192.168.0.0/16"), description="the peered VPC: a cluster and the EC2 host")


def _optional_cidr(value: object) -> object:
    return None if value is None else parse_cidr(value)


class CustomNetworking(_Model):
    """The VPC CNI's custom networking: pods on secondary ENIs in ENIConfig subnets of another CIDR."""

    enabled: StrictBool = Field(
        default=False,
        description="AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG with one ENIConfig per zone: every pod sits on a secondary "
        "ENI in a subnet of `cidr` (whatever pod_eni says), the nodes stay in the primary CIDR",
    )
    cidr: str | None = Field(
        default=None, description="one of the VPC's secondary_cidrs, cut in four: one pod subnet per zone"
    )

    _cidr = field_validator("cidr", mode="before")(_optional_cidr)


_ALL_PODS: tuple[Literal["echo", "busybox"], ...] = ("echo", "busybox")


class PodSecurityGroups(_Model):
    """Security groups for pods: branch ENIs on a trunk ENI, each with the pod's own security groups."""

    mode: Literal["strict", "standard"] = Field(
        default="strict", description="POD_SECURITY_GROUP_ENFORCING_MODE (the CNI's default: strict)"
    )
    pods: list[Literal["echo", "busybox"]] = Field(
        default_factory=lambda: list(_ALL_PODS),
        description="the pods a SecurityGroupPolicy gives branch ENIs (vpc2 runs only busybox: `echo` selects "
        "nothing there)",
    )
    open_from_peer: StrictBool = Field(
        default=True, description="the pods' own group admits the peer VPC's CIDRs on the ports the nodes' group does"
    )
    include_cluster_sg: StrictBool = Field(
        default=True, description="the SecurityGroupPolicy also lists the EKS cluster security group"
    )

    @field_validator("pods")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no pod; `pod_security_groups: null` turns the feature off")
        for index, item in enumerate(value):
            if item in value[:index]:
                raise KeyedError(f"duplicate {item!r}", item=index)
        return value


class Cluster(_Model):
    name: str = Field(description="EKS cluster name: 1-100 letters, digits, '-' or '_'")
    nodes: StrictInt = Field(default=2, ge=1, le=100, description="worker nodes in the node group")
    cni_version: str = Field(default="1.20.4", description="VPC CNI (aws-node) version, pinned as the EKS add-on")
    service_cidr: str = Field(
        default="10.100.0.0/16", description="the cluster's service CIDR: /12 to /24 inside an RFC 1918 range"
    )
    pod_eni: Literal["primary", "secondary"] = Field(
        default="primary", description="which ENI the pods' addresses sit on"
    )
    node_subnets: Literal["private", "public"] = Field(
        default="private", description="private: behind the NAT gateway; public: nodes get their own public IPs"
    )
    custom_networking: CustomNetworking = Field(
        default_factory=CustomNetworking, description="pod addresses from a secondary CIDR of the VPC"
    )
    pod_security_groups: PodSecurityGroups | None = Field(
        default=None,
        description="null, or a SecurityGroupPolicy giving the listed pods branch ENIs (ENABLE_POD_ENI) and a group "
        "of their own",
    )
    existing: StrictBool = Field(
        default=False,
        description="attach to the cluster `name` that is already there: read it, its VPC, nodes and aws-node "
        "settings, and create, change or delete none of them (only the namespace peerprobe-<experiment>)",
    )
    allow_snat_changes: StrictBool = Field(
        default=False,
        description="an attached cluster: phases that name its `snat` may change aws-node, which is restored "
        "exactly as found afterwards",
    )

    _service = field_validator("service_cidr", mode="before")(parse_cidr)

    @field_validator("name")
    @classmethod
    def _eks_name(cls, value: str) -> str:
        return _matching(
            EKS_NAME,
            value,
            "is not a valid EKS cluster name (1-100 letters, digits, '-' or '_', starting with a letter or digit)",
        )

    @field_validator("cni_version")
    @classmethod
    def _version(cls, value: str) -> str:
        version_tuple(value)
        return value

    @field_validator("service_cidr")
    @classmethod
    def _service_range(cls, value: str) -> str:
        net = network(value)
        if not 12 <= net.prefixlen <= 24 or not any(net.subnet_of(p) for p in SERVICE_CIDR_PARENTS):
            raise ValueError(
                f"{value!r}: EKS needs a service CIDR between /12 and /24 inside 10/8, 172.16/12 or 192.168/16"
            )
        return value

    @property
    def cni(self) -> tuple[int, int, int]:
        return version_tuple(self.cni_version)

    @property
    def pods_on_secondary_eni(self) -> bool:
        """Custom networking never gives pods addresses of the primary ENI (EKS user guide, cni-custom-network)."""
        return self.pod_eni == "secondary" or self.custom_networking.enabled

    def branch_eni(self, pod: str) -> bool:
        """Whether the SecurityGroupPolicy gives ``pod`` (echo, busybox) a branch ENI."""
        return self.pod_security_groups is not None and pod in self.pod_security_groups.pods


class Clusters(_Model):
    vpc1: Cluster = Field(
        default=Cluster(name="gcr-eksworkshop-private", nodes=3), description="the cluster in vpc1 (echo server)"
    )
    vpc2: Cluster = Field(
        default=Cluster(name="gcr-zhy-eksworkshop", nodes=2), description="the cluster in vpc2 (a busybox client)"
    )


class Peering(_Model):
    enabled: StrictBool = Field(default=True, description="peer the two VPCs and route each one's CIDR to the other")
    via: Literal["peering", "transit-gateway"] = Field(
        default="peering",
        description="a VPC peering connection, or a transit gateway with an attachment in every zone of each VPC "
        "and propagation to its route table",
    )
    route_cidrs: Literal["all", "primary"] = Field(
        default="all", description="which of each VPC's CIDRs the other VPC's route tables send to the link"
    )


_DEFAULT_PEER_PORTS: list[int | Literal["nodeport"]] = [8080, "nodeport"]


class SecurityGroups(_Model):
    open_from_peer: list[int | Literal["nodeport"]] = Field(
        default_factory=lambda: _DEFAULT_PEER_PORTS.copy(),
        description="ports opened on the vpc1 nodes to the peer VPC's CIDR for the probes, then revoked; "
        "`nodeport` is the NodePort Service's port",
    )

    @field_validator("open_from_peer", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        seen: set[object] = set()
        for index, item in enumerate(value):
            if item != "nodeport" and (not isinstance(item, int) or isinstance(item, bool)):
                raise KeyedError(
                    f"{_shown(item)} is neither a port number nor 'nodeport'", item=index, wants="a port number"
                )
            if isinstance(item, int) and not 1 <= item <= 65535:
                raise KeyedError(f"port {item} is outside 1..65535", item=index)
            if item in seen:
                raise KeyedError(f"duplicate {item!r}", item=index)
            seen.add(item)
        return value


class PeerHost(_Model):
    create: StrictBool = Field(
        default=True,
        description="create the EC2 host in vpc2 (default false when a cluster is attached; without it the "
        "vpc2-ec2 vantage is omitted)",
    )
    public_ip: StrictBool = Field(default=True, description="give the EC2 host in vpc2 a public IP")
    admit_vpc1: StrictBool = Field(
        default=True, description="the host's security group admits vpc1's CIDR and NAT gateway address on :80"
    )


class LoadBalancer(_Model):
    scheme: Literal["internet-facing", "internal"] = Field(
        default="internet-facing", description="scheme of the type=LoadBalancer Service's Classic ELB"
    )


class InternalNlb(_Model):
    target_type: Literal["instance", "ip"] = Field(
        default="instance", description="instance: the in-tree controller; ip: the AWS Load Balancer Controller"
    )
    preserve_client_ip: StrictBool = Field(default=True, description="the NLB target group keeps the client's IP")


class Services(_Model):
    external_traffic_policy: Literal["Cluster", "Local"] = Field(
        default="Cluster", description="externalTrafficPolicy of the NodePort and LoadBalancer Services"
    )
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer, description="the plain LoadBalancer Service")
    internal_nlb: InternalNlb = Field(default_factory=InternalNlb, description="the internal NLB Service")


class Images(_Model):
    echo: str = Field(default="registry.k8s.io/echoserver:1.10", description="the echo server (answers on :8080)")
    busybox: str = Field(default="busybox", description="the probing client pods")
    nginx: str = Field(default="nginx", description="the workshop's nginx behind the internet-facing NLB")

    @field_validator("echo", "busybox", "nginx")
    @classmethod
    def _image(cls, value: str) -> str:
        return _matching(IMAGE, value, "is not an image reference (ASCII, no spaces, at most 255 characters)")


class Aws(_Model):
    profile: str | None = Field(default=None, description="aws backend: the AWS profile; null: the default chain")

    @field_validator("profile")
    @classmethod
    def _profile(cls, value: str | None) -> str | None:
        return None if value is None else _matching(AWS_PROFILE, value, "is not an AWS profile name")


class Probe(_Model):
    timeout_seconds: StrictFloat = Field(default=3, ge=0.5, le=60, description="seconds one probe waits for an answer")
    attempts: StrictInt = Field(default=1, ge=1, le=5, description="tries per cell before it counts as failed")


class Snat(_Model):
    """One cluster's aws-node SNAT environment; absolute, so unset keys mean the CNI defaults."""

    external_snat: StrictBool = Field(default=False, description="AWS_VPC_K8S_CNI_EXTERNALSNAT")
    exclude_snat_cidrs: list[str] = Field(
        default_factory=list, description="AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: destinations the CNI does not SNAT"
    )

    @field_validator("exclude_snat_cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        if isinstance(value, str):  # the env var's own comma-separated form
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [_indexed(parse_cidr, item, index) for index, item in enumerate(value)]
        return value

    @property
    def is_default(self) -> bool:
        return not self.external_snat and not self.exclude_snat_cidrs


def _indexed(check: Callable[[object], str], item: object, index: int) -> str:
    try:
        return check(item)
    except KeyedError:
        raise
    except ValueError as exc:
        raise KeyedError(str(exc), item=index) from None


def _given_only(model: BaseModel, handler: SerializerFunctionWrapHandler, keys: Iterable[str]) -> dict[str, Any]:
    """The dump without those of ``keys`` the config did not give: whether a phase named an attached cluster's
    snat decides whether aws-node is touched, so a saved config must load back with the same fields given."""
    dumped: dict[str, Any] = handler(model)
    for key in keys:
        if key not in model.model_fields_set:
            dumped.pop(key, None)
    return dumped


class PhaseSnat(_Model):
    vpc1: Snat = Field(default_factory=Snat, description="vpc1's aws-node SNAT settings in this phase")
    vpc2: Snat = Field(default_factory=Snat, description="vpc2's aws-node SNAT settings in this phase")

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _given_only(self, handler, ("vpc1", "vpc2"))


class Phase(_Model):
    name: str = Field(description="phase name: lowercase letters, digits and '-'; `live` is for drift checks")
    snat: PhaseSnat = Field(
        default_factory=PhaseSnat, description="aws-node settings, absolute: what a phase leaves out is unset"
    )

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _given_only(self, handler, ("snat",))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _matching(
            PHASE_NAME,
            value,
            "is not a phase name: 1-40 lowercase letters, digits and '-', not starting "
            "or ending with '-' (it becomes an artifact key)",
        )
        if value == RESERVED_PHASE:
            raise ValueError(f"{value!r} is reserved for drift checks")
        return value


AS_FOUND = "as-found"  # the one default phase when attaching: aws-node left exactly as it was found


def _attach_phases() -> list[Phase]:
    return [Phase(name=AS_FOUND)]


def _default_phases() -> list[Phase]:
    return [
        Phase(name="baseline"),
        Phase(name="external-snat", snat=PhaseSnat(vpc1=Snat(external_snat=True), vpc2=Snat(external_snat=True))),
        Phase(
            name="exclude-snat",
            snat=PhaseSnat(
                vpc1=Snat(exclude_snat_cidrs=["192.168.0.0/16"]), vpc2=Snat(exclude_snat_cidrs=["172.16.0.0/16"])
            ),
        ),
    ]


class ExperimentConfig(_Model):
    name: str = Field(default="workshop", description="experiment name; every resource is tagged with it")
    region: str = Field(default="cn-northwest-1", description="AWS region (the lab names its environment by it)")
    vpcs: Vpcs = Field(default_factory=Vpcs, description="the two VPCs")
    clusters: Clusters = Field(default_factory=Clusters, description="one EKS cluster per VPC")
    peering: Peering = Field(default_factory=Peering, description="the VPC peering between vpc1 and vpc2")
    security_groups: SecurityGroups = Field(
        default_factory=SecurityGroups, description="rules opened for the probes and revoked afterwards"
    )
    peer_host: PeerHost = Field(default_factory=PeerHost, description="the EC2 web host in a public subnet of vpc2")
    outside_cidrs: list[str] = Field(
        default_factory=list,
        description="aws backend: where `outside` probes come from (your public address); at most a /8 in all",
    )
    services: Services = Field(default_factory=Services, description="how the echo server is exposed")
    images: Images = Field(default_factory=Images, description="container images")
    aws: Aws = Field(default_factory=Aws, description="settings of the aws backend")
    probe: Probe = Field(default_factory=Probe, description="how each cell is probed")
    phases: list[Phase] = Field(
        default_factory=_default_phases, min_length=1, description="SNAT settings probed one after the other"
    )

    @model_validator(mode="before")
    @classmethod
    def _attach_defaults(cls, data: object) -> object:
        """Attach mode's defaults also for a mapping validated directly (a deployment's or the UI's parameters),
        not only for one loaded through from_mapping: what it leaves out is what attaching defaults it to."""
        if not isinstance(data, Mapping) or not _attaching(data):
            return data
        defaults = defaults_dict(attaching=True)
        given = dict(data)
        given.setdefault("phases", defaults["phases"])
        for section, key in (("security_groups", "open_from_peer"), ("peer_host", "create")):
            part = given.get(section, {})
            if isinstance(part, Mapping) and key not in part:
                given[section] = {**part, key: defaults[section][key]}
        return given

    @field_validator("name")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        return _matching(
            EXPERIMENT_NAME,
            value,
            "is not an experiment name: 1-32 lowercase letters, digits or '-', not starting or ending with '-'",
        )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _matching(REGION, value, "is not an AWS region name like cn-northwest-1")

    @field_validator("outside_cidrs", mode="before")
    @classmethod
    def _outside(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        cidrs = [_indexed(parse_cidr, item, index) for index, item in enumerate(value)]
        for index, cidr in enumerate(cidrs):
            _outside_cidr(cidr, index, cidrs[:index])
        total = sum(network(cidr).num_addresses for cidr in cidrs)
        if total > 2 ** (32 - OUTSIDE_MAX_PREFIX):
            raise ValueError(
                f"{', '.join(cidrs)} hold {total:,} addresses, more than a /{OUTSIDE_MAX_PREFIX} "
                f"({2 ** (32 - OUTSIDE_MAX_PREFIX):,}): they would open the load balancers to a large part of the "
                "internet; list only the addresses `outside` probes come from"
            )
        return cidrs

    @model_validator(mode="after")
    def _cross_field(self) -> ExperimentConfig:
        errors = list(_cross_field_errors(self))
        if errors:
            raise CrossFieldErrors(errors)
        return self

    def vpc_cidrs(self) -> dict[str, str]:
        return {"vpc1": self.vpcs.vpc1.cidr, "vpc2": self.vpcs.vpc2.cidr}

    def attached(self, key: str) -> bool:
        """Whether cluster ``key`` (vpc1, vpc2) is an existing cluster peerprobe attaches to."""
        cluster: Cluster = getattr(self.clusters, key)
        return cluster.existing

    @property
    def attaching(self) -> bool:
        return self.attached("vpc1") or self.attached("vpc2")

    def phase_snat(self, phase: Phase, key: str) -> Snat | None:
        """The aws-node SNAT settings ``phase`` sets on cluster ``key``; None: leave aws-node as it was found.
        A created cluster always gets the phase's settings (absolute); an attached one only when the phase
        names its snat (design.md, "Existing clusters (attach)")."""
        snat: Snat = getattr(phase.snat, key)
        if self.attached(key) and not names_snat(phase, key):
            return None
        return snat


def names_snat(phase: Phase, key: str) -> bool:
    """Whether the config file named ``phases[i].snat.<key>`` (pydantic keeps which fields were given)."""
    return "snat" in phase.model_fields_set and key in phase.snat.model_fields_set


def _outside_cidr(cidr: str, index: int, earlier: list[str]) -> None:
    # peerprobe never opens anything to the whole internet (design.md principles).
    prefix = network(cidr).prefixlen
    if prefix < OUTSIDE_MAX_PREFIX:
        reach = "the whole internet" if prefix == 0 else "a large part of the internet"
        raise KeyedError(
            f"{cidr} is wider than a /{OUTSIDE_MAX_PREFIX}: it would open the load balancers to {reach}", item=index
        )
    problem = _reserved(cidr, NOT_UNICAST)
    if problem:
        raise KeyedError(f"{problem}; no probe comes from there", item=index)
    for other_index, other in enumerate(earlier):
        if cidr == other:
            raise KeyedError(f"duplicate {cidr!r}", item=index)
        if network(cidr).overlaps(network(other)):
            raise KeyedError(
                f"{cidr} overlaps {other}", keys=(f"outside_cidrs[{index}]", f"outside_cidrs[{other_index}]")
            )


class CrossFieldErrors(ValueError):
    """Every cross-field refusal at once; each line already names the keys involved."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _cross_field_errors(config: ExperimentConfig) -> Iterable[str]:
    cidrs = config.vpc_cidrs()
    if network(cidrs["vpc1"]).overlaps(network(cidrs["vpc2"])):
        yield (
            f"vpcs.vpc1.cidr, vpcs.vpc2.cidr: {cidrs['vpc1']} overlaps {cidrs['vpc2']} "
            "(VPC peering needs disjoint CIDRs)"
        )
    for cluster_key in ("vpc1", "vpc2"):
        service = getattr(config.clusters, cluster_key).service_cidr
        for vpc_key, vpc_cidr in cidrs.items():
            if network(service).overlaps(network(vpc_cidr)):
                yield (
                    f"clusters.{cluster_key}.service_cidr, vpcs.{vpc_key}.cidr: "
                    f"{service} overlaps {vpc_cidr} (EKS rejects a service CIDR that overlaps a VPC)"
                )
    for key in ("vpc1", "vpc2"):
        vpc, cluster = getattr(config.vpcs, key), getattr(config.clusters, key)
        if not _nodes_fit(vpc.cidr, cluster.nodes):
            yield f"vpcs.{key}.cidr, clusters.{key}.nodes: {vpc.cidr} is too small for {cluster.nodes} nodes"
    if config.clusters.vpc1.name == config.clusters.vpc2.name:
        yield f"clusters.vpc1.name, clusters.vpc2.name: duplicate {config.clusters.vpc1.name!r} (names are per region)"
    seen: dict[str, int] = {}
    for index, phase in enumerate(config.phases):
        if phase.name in seen:
            yield f"phases[{index}].name, phases[{seen[phase.name]}].name: duplicate {phase.name!r}"
        seen.setdefault(phase.name, index)
    yield from _secondary_cidr_errors(config)
    for key in ("vpc1", "vpc2"):
        yield from _custom_networking_errors(config, key)
        yield from _pod_security_group_errors(config, key)
        yield from _attach_errors(config, key)


def _attach_errors(config: ExperimentConfig, key: str) -> Iterable[str]:
    """An attached cluster's aws-node is changed only with its owner's leave (allow_snat_changes)."""
    cluster: Cluster = getattr(config.clusters, key)
    path = f"clusters.{key}"
    if not cluster.existing:
        if cluster.allow_snat_changes:
            yield f"{path}.allow_snat_changes, {path}.existing: only an attached cluster (existing: true) takes it"
        return
    if cluster.allow_snat_changes:
        return
    for index, phase in enumerate(config.phases):
        if names_snat(phase, key):
            yield (
                f"phases[{index}].snat.{key}, {path}.allow_snat_changes: phase {phase.name!r} changes aws-node of "
                f"the attached cluster {cluster.name!r}; set {path}.allow_snat_changes: true to allow it (peerprobe "
                "restores what it found) or leave this phase's snat out"
            )


def _nodes_fit(cidr: str, nodes: int) -> bool:
    return _block_fits(network(cidr).num_addresses // 8, nodes)


def _block_fits(subnet_size: int, nodes: int) -> bool:
    """The planned addresses of ``nodes`` nodes (per zone) fit one subnet of each zone."""
    per_zone = -(-nodes // AZ_COUNT)
    return FIRST_HOST + NODE_BLOCK * per_zone + 5 <= subnet_size  # AWS reserves 5 addresses per subnet


def _blocks(config: ExperimentConfig) -> list[tuple[str, str, str]]:
    """Every CIDR block of both VPCs as (vpc key, key path, cidr), primaries first."""
    found = []
    for key in ("vpc1", "vpc2"):
        vpc = getattr(config.vpcs, key)
        found.append((key, f"vpcs.{key}.cidr", vpc.cidr))
        found += [(key, f"vpcs.{key}.secondary_cidrs[{i}]", c) for i, c in enumerate(vpc.secondary_cidrs)]
    return found


def _secondary_cidr_errors(config: ExperimentConfig) -> Iterable[str]:
    """Secondary blocks: disjoint from every other block of both VPCs (VPC user guide: "must not overlap with any
    existing CIDR block that's associated with the VPC"; peering guide: no peering "if any of the CIDR blocks
    overlap"; a transit gateway routes by destination and cannot tell them apart), within AWS's association
    restrictions for the primary block, and clear of both service CIDRs."""
    blocks = _blocks(config)
    for index, (key, path, cidr) in enumerate(blocks):
        for other_key, other_path, other in blocks[index + 1 :]:
            secondary = ".secondary_cidrs[" in path or ".secondary_cidrs[" in other_path
            if secondary and network(cidr).overlaps(network(other)):
                why = "a VPC's CIDR blocks must be disjoint" if other_key == key else "the link needs disjoint CIDRs"
                first, second = (
                    ((path, cidr), (other_path, other)) if ".secondary" in path else ((other_path, other), (path, cidr))
                )
                yield f"{first[0]}, {second[0]}: {first[1]} overlaps {second[1]} ({why})"
    for key, path, cidr in blocks:
        if path.endswith(".cidr"):
            continue
        yield from _association_errors(config, key, path, cidr)
        for cluster_key in ("vpc1", "vpc2"):
            service = getattr(config.clusters, cluster_key).service_cidr
            if network(service).overlaps(network(cidr)):
                yield (
                    f"clusters.{cluster_key}.service_cidr, {path}: {service} overlaps {cidr} (a service CIDR must not "
                    "overlap the VPC's blocks or a connected VPC's)"
                )


def _association_errors(config: ExperimentConfig, key: str, path: str, cidr: str) -> Iterable[str]:
    vpc = getattr(config.vpcs, key)
    earlier = [vpc.cidr, *vpc.secondary_cidrs[: vpc.secondary_cidrs.index(cidr)]]
    problem = vpc_cidrs.association_problem(vpc.cidr, earlier, cidr)
    if problem:
        yield f"{path}, vpcs.{key}.cidr: {problem}"


def _custom_networking_errors(config: ExperimentConfig, key: str) -> Iterable[str]:
    cluster, vpc = getattr(config.clusters, key), getattr(config.vpcs, key)
    custom, path = cluster.custom_networking, f"clusters.{key}.custom_networking"
    if not custom.enabled:
        return
    if custom.cidr is None:
        yield f"{path}.cidr, {path}.enabled: custom networking needs the CIDR its pod subnets are cut from"
        return
    if custom.cidr not in vpc.secondary_cidrs:
        listed = ", ".join(vpc.secondary_cidrs) or "none"
        yield (
            f"{path}.cidr, vpcs.{key}.secondary_cidrs: {custom.cidr} is not one of {key}'s secondary CIDRs ({listed}); "
            "the ENIConfig subnets must be in a CIDR associated with the VPC"
        )
    elif not _pod_subnets_fit(custom.cidr, cluster.nodes):
        yield f"{path}.cidr, clusters.{key}.nodes: {custom.cidr} is too small for pod subnets of {cluster.nodes} nodes"
    if cluster.cni < CUSTOM_NETWORKING_SINCE:
        yield (
            f"{path}.enabled, clusters.{key}.cni_version: custom networking (AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG) "
            f"needs VPC CNI {_version_text(CUSTOM_NETWORKING_SINCE)} or later, not {cluster.cni_version}"
        )


def _pod_subnets_fit(cidr: str, nodes: int) -> bool:
    net = network(cidr)
    return net.prefixlen + POD_SUBNET_SPLIT <= 28 and _block_fits(net.num_addresses >> POD_SUBNET_SPLIT, nodes)


def _pod_security_group_errors(config: ExperimentConfig, key: str) -> Iterable[str]:
    cluster = getattr(config.clusters, key)
    groups, path = cluster.pod_security_groups, f"clusters.{key}.pod_security_groups"
    if groups is None:
        return
    if cluster.cni < POD_SECURITY_GROUPS_SINCE:
        yield (
            f"{path}, clusters.{key}.cni_version: security groups for pods need VPC CNI "
            f"{_version_text(POD_SECURITY_GROUPS_SINCE)} or later, not {cluster.cni_version}"
        )
    elif groups.mode == "standard" and cluster.cni < ENFORCING_MODE_SINCE:
        yield (
            f"{path}.mode, clusters.{key}.cni_version: POD_SECURITY_GROUP_ENFORCING_MODE=standard needs VPC CNI "
            f"{_version_text(ENFORCING_MODE_SINCE)} or later (before it, branch-ENI pods are always strict), "
            f"not {cluster.cni_version}"
        )


def _version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


# --- loading -------------------------------------------------------------------------------------------


def defaults_dict(*, attaching: bool = False) -> dict[str, Any]:
    """The defaults; when attaching, those of design.md's attach mode: one phase `as-found`, no rules opened
    from the peer, no EC2 host."""
    defaults = ExperimentConfig().model_dump(mode="python", exclude={"phases"})
    if attaching:
        defaults["security_groups"]["open_from_peer"] = []
        defaults["peer_host"]["create"] = False
    # Phases go in as models, not dicts: a dict would make every default phase's snat look given by the user.
    defaults["phases"] = _attach_phases() if attaching else _default_phases()
    return defaults


def _attaching(data: Mapping[str, Any]) -> bool:
    clusters = data.get("clusters")
    if not isinstance(clusters, Mapping):
        return False
    return any(isinstance(c, Mapping) and c.get("existing") is True for c in clusters.values())


def merge(defaults: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge into the defaults; lists and scalars replace them (design.md merge rules)."""
    merged = dict(defaults)
    for key, value in override.items():
        base = merged.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            merged[key] = merge(base, value)
        else:
            merged[key] = value
    return merged


def from_mapping(
    data: object, *, source: str = "config", boolean_words: Mapping[KeyPath, str] | None = None
) -> ExperimentConfig:
    """The config of ``data`` merged over the defaults. ``boolean_words`` (from config_yaml) say where YAML
    read a word like `yes` as a boolean, so a message can say so."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (got {_kind(data)})")
    # Lists (phases among them) replace the defaults whole; each phase's snat is absolute, so pydantic
    # fills a phase's unset keys with the CNI defaults, never with another phase's settings.
    merged = merge(defaults_dict(attaching=_attaching(data)), data)
    try:
        return ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source, boolean_words or {})) from None


def load(path: str | Path | None = None) -> ExperimentConfig:
    """The config at ``path`` merged over the workshop defaults; no path means the defaults."""
    if path is None:
        return ExperimentConfig()
    document = config_yaml.read(Path(path))
    return from_mapping(document.data, source=str(path), boolean_words=document.boolean_words)


# --- error messages ------------------------------------------------------------------------------------


def _format_validation(exc: ValidationError, source: str, words: Mapping[KeyPath, str]) -> str:
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        lines.extend(_format_error(error, words))
    unique = _once(list(dict.fromkeys(lines)), KNOWN_KEYS_NOTE) or [f"{source}: invalid config"]
    if len(unique) > MAX_ERROR_LINES:
        unique = [*unique[:MAX_ERROR_LINES], f"... and {len(unique) - MAX_ERROR_LINES} more errors"]
    return "\n".join(unique)


def _once(lines: list[str], marker: str) -> list[str]:
    """Drop a trailing note (from ``marker`` on) that an earlier line already carried word for word."""
    seen: set[str] = set()
    result = []
    for line in lines:
        head, found, note = line.partition(marker)
        if found and note in seen:
            line = head.rstrip()
        seen.add(note)
        result.append(line)
    return result


def _format_error(error: Mapping[str, Any], words: Mapping[KeyPath, str]) -> list[str]:
    loc = _key_path(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, CrossFieldErrors):
        return cause.lines  # each line already names every key involved
    word = _boolean_word(loc, error.get("input"), words)
    if word is not None:
        path, text = word
        return [
            f"{dotted(path)}: {text!r} is read by YAML as a boolean, but this key wants "
            f"{_wanted(error, cause)}; quote it ('{text}') if you mean the word"
        ]
    if isinstance(cause, KeyedError):
        keys = ", ".join(cause.keys) if cause.keys else dotted(loc)
        item = f"item {cause.item + 1}: " if cause.item is not None and not cause.keys else ""
        return [f"{keys}: {item}{cause}"]
    return [f"{dotted(loc) or 'config'}: {_message(error, loc)}"]


def _key_path(loc: Iterable[object]) -> KeyPath:
    """pydantic's location without the union members it names (`int`, `literal['nodeport']`, …)."""
    parts: list[str | int] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(item)
        elif str(item) in ("int", "str", "literal['nodeport']", "list[str]", "bool", "float") and parts:
            continue
        else:
            parts.append(str(item))
    return tuple(parts)


def _boolean_word(loc: KeyPath, value: object, words: Mapping[KeyPath, str]) -> tuple[KeyPath, str] | None:
    has_bool = isinstance(value, bool) or (isinstance(value, list) and any(isinstance(v, bool) for v in value))
    if not has_bool:
        return None
    return next(((path, text) for path, text in words.items() if path[: len(loc)] == loc), None)


def _wanted(error: Mapping[str, Any], cause: object) -> str:
    kind = str(error.get("type", ""))
    if isinstance(cause, KeyedError) and cause.wants:
        return cause.wants
    if kind.startswith(("int", "float")):
        return "a number"
    if kind == "literal_error":
        return f"one of {_expected(error)}"
    return "text" if kind.startswith("string") else "another value"


def _message(error: Mapping[str, Any], loc: KeyPath) -> str:
    kind, value = str(error.get("type", "")), error.get("input")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        return "unknown key" + _did_you_mean(loc)
    if kind == "literal_error":
        return f"{_shown(value)} is not one of {_expected(error)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of keys (got {_got(value)})"
    if kind == "list_type":
        return f"must be a list (got {_got(value)})"
    if kind.endswith("_type") and kind.split("_")[0] in ("int", "float", "bool", "string"):
        wanted = {"int": "a whole number", "float": "a number", "bool": "true or false", "string": "text"}
        hint = "; quote it" if kind == "string_type" and value is not None else ""
        return f"expected {wanted[kind.split('_')[0]]}, got {_got(value)}{hint}"
    if kind == "missing":
        return "is required"
    return message


def _expected(error: Mapping[str, Any]) -> str:
    expected = (error.get("ctx") or {}).get("expected", "")
    return str(expected).replace("'", "")


def _did_you_mean(loc: KeyPath) -> str:
    """A close known key at the same place (camelCase and dashes included), else the same key elsewhere."""
    key, parent = str(loc[-1]), loc[:-1]
    known = _fields_at(parent)
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower().replace("-", "_")
    close = [snake] if snake in known else difflib.get_close_matches(snake, known, n=1, cutoff=0.6)
    close = close or [k for k in known if len(k) >= 3 and snake.startswith(k)]  # cidr_block -> cidr
    if close:
        return f" (did you mean {dotted((*parent, close[0]))}?)"
    elsewhere = [path for path in _all_keys(ExperimentConfig, ()) if path[-1] == snake]
    if elsewhere:
        return f" (did you mean {dotted(elsewhere[0])}?)"
    return f" {KNOWN_KEYS_NOTE}{', '.join(known)})" if known else ""


def _fields_at(path: KeyPath) -> list[str]:
    model: type[BaseModel] | None = ExperimentConfig
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue  # a list's item has the list's item type, already taken below
        field = model.model_fields.get(part)
        model = model_of(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def model_of(annotation: object) -> type[BaseModel] | None:
    """The config model a field holds (directly or as a list's items); None for a plain value."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is list:
        return model_of(get_args(annotation)[0])
    members = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) in (Union, types.UnionType) and len(members) == 1:
        return model_of(members[0])  # an optional mapping: `pod_security_groups: null | {...}`
    return None


def _all_keys(model: type[BaseModel], path: KeyPath) -> Iterable[KeyPath]:
    for name, field in model.model_fields.items():
        yield (*path, name)
        inner = model_of(field.annotation)
        if inner is not None:
            yield from _all_keys(inner, (*path, name))
