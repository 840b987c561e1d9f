"""ExperimentConfig: every key of design.md with the workshop topology as default, YAML loading, and
validation whose messages start with the dotted key path. Imports nothing heavy, so bad input costs nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from peerprobe.errors import ConfigError

# EKS CreateCluster: "can contain only alphanumeric characters (case-sensitive), hyphens, and underscores.
# It must start with an alphanumeric character and can't be longer than 100 characters." (EKS API reference)
EKS_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
# The experiment name becomes part of tags, artifact keys and lab namespace names: keep it DNS-label-like.
EXPERIMENT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
PHASE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
REGION = re.compile(r"^[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d$")
VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
# EKS serviceIpv4Cidr: within 10/8, 172.16/12 or 192.168/16, between /24 and /12
# (EKS API reference, KubernetesNetworkConfigRequest).
SERVICE_CIDR_PARENTS = tuple(ipaddress.IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
RESERVED_PHASE = "live"  # drift checks own this phase name
AZ_COUNT = 3  # eksctl spreads a new VPC over three zones and cuts it in eight: 3 public, 3 private subnets
NODE_BLOCK = 8  # addresses planned per node: primary, secondary ENI, echo, busybox, nginx, spare
FIRST_HOST = 16  # offset of the first node in its subnet; below it: gateways, NAT and LB nodes


def parse_cidr(value: object) -> str:
    """A strict IPv4 CIDR: host bits set is an error, not silently normalised (design.md)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 CIDR string, got {type(value).__name__}")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a valid CIDR") from None
    if network.version != 4:
        raise ValueError(f"{value!r} is not IPv4")
    if "/" not in value:
        raise ValueError(f"{value!r} has no prefix length (write it as a.b.c.d/n)")
    if str(network) != value:
        raise ValueError(f"{value!r} has host bits set (did you mean {network}?)")
    return value


def network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def version_tuple(version: str) -> tuple[int, int, int]:
    match = VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a version like 1.20.4")
    return int(match[1]), int(match[2]), int(match[3])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Subnets(_Model):
    private: list[str] = Field(default_factory=list)
    public: list[str] = Field(default_factory=list)


class Vpc(_Model):
    cidr: str
    nat_gateway: bool = True
    id: str | None = None  # aws backend: adopt this VPC instead of creating one
    subnets: Subnets = Field(default_factory=Subnets)

    _cidr = field_validator("cidr", mode="before")(parse_cidr)

    @field_validator("cidr")
    @classmethod
    def _vpc_size(cls, value: str) -> str:
        # AWS: "The allowed block size is between a /16 netmask and /28 netmask" (VPC CIDR blocks doc).
        if not 16 <= network(value).prefixlen <= 28:
            raise ValueError(f"{value!r}: a VPC CIDR must be between /16 and /28")
        return value


class Vpcs(_Model):
    vpc1: Vpc = Vpc(cidr="172.16.0.0/16")
    vpc2: Vpc = Vpc(cidr="192.168.0.0/16")


class Cluster(_Model):
    name: str
    nodes: int = Field(default=2, ge=1, le=100)
    cni_version: str = "1.20.4"
    service_cidr: str = "10.100.0.0/16"
    pod_eni: Literal["primary", "secondary"] = "primary"
    node_subnets: Literal["private", "public"] = "private"

    _service = field_validator("service_cidr", mode="before")(parse_cidr)

    @field_validator("name")
    @classmethod
    def _eks_name(cls, value: str) -> str:
        if not EKS_NAME.match(value):
            raise ValueError(
                f"{value!r} is not a valid EKS cluster name (1-100 letters, digits, '-' or '_', "
                "starting with a letter or digit)"
            )
        return value

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


class Clusters(_Model):
    vpc1: Cluster = Cluster(name="gcr-eksworkshop-private", nodes=3)
    vpc2: Cluster = Cluster(name="gcr-zhy-eksworkshop", nodes=2)


class Peering(_Model):
    enabled: bool = True


_DEFAULT_PEER_PORTS: list[int | Literal["nodeport"]] = [8080, "nodeport"]


class SecurityGroups(_Model):
    open_from_peer: list[int | Literal["nodeport"]] = Field(default_factory=lambda: _DEFAULT_PEER_PORTS.copy())

    @field_validator("open_from_peer", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        seen: set[object] = set()
        for item in value:
            if item != "nodeport" and (not isinstance(item, int) or isinstance(item, bool)):
                raise ValueError(f"{item!r} is neither a port number nor 'nodeport'")
            if isinstance(item, int) and not 1 <= item <= 65535:
                raise ValueError(f"port {item} is outside 1..65535")
            if item in seen:
                raise ValueError(f"duplicate {item!r}")
            seen.add(item)
        return value


class PeerHost(_Model):
    public_ip: bool = True
    admit_vpc1: bool = True


class LoadBalancer(_Model):
    scheme: Literal["internet-facing", "internal"] = "internet-facing"


class InternalNlb(_Model):
    target_type: Literal["instance", "ip"] = "instance"
    preserve_client_ip: bool = True


class Services(_Model):
    external_traffic_policy: Literal["Cluster", "Local"] = "Cluster"
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    internal_nlb: InternalNlb = Field(default_factory=InternalNlb)


class Images(_Model):
    echo: str = Field(default="registry.k8s.io/echoserver:1.10", min_length=1)
    busybox: str = Field(default="busybox", min_length=1)
    nginx: str = Field(default="nginx", min_length=1)


class Aws(_Model):
    profile: str | None = None


class Probe(_Model):
    timeout_seconds: float = Field(default=3, ge=0.5, le=60)
    attempts: int = Field(default=1, ge=1, le=5)


class Snat(_Model):
    """One cluster's aws-node SNAT environment; absolute, so unset keys mean the CNI defaults."""

    external_snat: bool = False
    exclude_snat_cidrs: list[str] = Field(default_factory=list)

    @field_validator("exclude_snat_cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        if isinstance(value, str):  # the env var's own comma-separated form
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [parse_cidr(item) for item in value]
        return value

    @property
    def is_default(self) -> bool:
        return not self.external_snat and not self.exclude_snat_cidrs


class PhaseSnat(_Model):
    vpc1: Snat = Field(default_factory=Snat)
    vpc2: Snat = Field(default_factory=Snat)


class Phase(_Model):
    name: str
    snat: PhaseSnat = Field(default_factory=PhaseSnat)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PHASE_NAME.match(value):
            raise ValueError(f"{value!r}: use lowercase letters, digits and '-' (it becomes an artifact key)")
        if value == RESERVED_PHASE:
            raise ValueError(f"{value!r} is reserved for drift checks")
        return value


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
    name: str = "workshop"
    region: str = "cn-northwest-1"
    vpcs: Vpcs = Field(default_factory=Vpcs)
    clusters: Clusters = Field(default_factory=Clusters)
    peering: Peering = Field(default_factory=Peering)
    security_groups: SecurityGroups = Field(default_factory=SecurityGroups)
    peer_host: PeerHost = Field(default_factory=PeerHost)
    outside_cidrs: list[str] = Field(default_factory=list)
    services: Services = Field(default_factory=Services)
    images: Images = Field(default_factory=Images)
    aws: Aws = Field(default_factory=Aws)
    probe: Probe = Field(default_factory=Probe)
    phases: list[Phase] = Field(default_factory=_default_phases, min_length=1)

    @field_validator("name")
    @classmethod
    def _experiment_name(cls, value: str) -> str:
        if not EXPERIMENT_NAME.match(value):
            raise ValueError(f"{value!r}: 1-32 lowercase letters, digits or '-', not starting or ending with '-'")
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION.match(value):
            raise ValueError(f"{value!r} is not an AWS region name like cn-northwest-1")
        return value

    @field_validator("outside_cidrs", mode="before")
    @classmethod
    def _outside(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        cidrs = [parse_cidr(item) for item in value]
        for cidr in cidrs:
            # peerprobe never opens anything to the whole internet (design.md principles).
            if network(cidr).prefixlen == 0:
                raise ValueError(f"{cidr!r} would open the echo server to the whole internet")
        return cidrs

    @model_validator(mode="after")
    def _cross_field(self) -> ExperimentConfig:
        for message in _cross_field_errors(self):
            raise ValueError(message)
        return self

    def vpc_cidrs(self) -> dict[str, str]:
        return {"vpc1": self.vpcs.vpc1.cidr, "vpc2": self.vpcs.vpc2.cidr}


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


def _nodes_fit(cidr: str, nodes: int) -> bool:
    subnet_size = network(cidr).num_addresses // 8
    per_zone = -(-nodes // AZ_COUNT)
    return FIRST_HOST + NODE_BLOCK * per_zone + 5 <= subnet_size  # AWS reserves 5 addresses per subnet


# --- loading -------------------------------------------------------------------------------------------


def defaults_dict() -> dict[str, Any]:
    return ExperimentConfig().model_dump(mode="python")


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


def from_mapping(data: object, *, source: str = "config") -> ExperimentConfig:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping (got {type(data).__name__})")
    # Lists (phases among them) replace the defaults whole; each phase's snat is absolute, so pydantic
    # fills a phase's unset keys with the CNI defaults, never with another phase's settings.
    merged = merge(defaults_dict(), data)
    try:
        return ExperimentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, source)) from None


def load(path: str | Path | None = None) -> ExperimentConfig:
    """The config at ``path`` merged over the workshop defaults; no path means the defaults."""
    if path is None:
        return ExperimentConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the config file ({exc.__class__.__name__})") from None
    return from_mapping(_parse_yaml(text, file), source=str(file))


def _parse_yaml(text: str, file: Path) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: {where}invalid YAML: {problem}") from None


def _format_validation(exc: ValidationError, source: str) -> str:
    lines = [_format_error(error) for error in exc.errors(include_url=False)]
    unique = list(dict.fromkeys(lines))
    return "\n".join(unique) if unique else f"{source}: invalid config"


def _format_error(error: Mapping[str, Any]) -> str:
    path = _dotted(error["loc"])
    message = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        return f"{path}: unknown key"
    if error.get("type") == "literal_error":
        return f"{path}: {error.get('input')!r} is not one of {_expected(error)}"
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if path == "" or message.split(":", 1)[0].startswith(("vpcs.", "clusters.", "phases[")):
        return message  # cross-field rules already name every key involved
    return f"{path}: {message}"


def _expected(error: Mapping[str, Any]) -> str:
    expected = (error.get("ctx") or {}).get("expected", "")
    return str(expected).replace("'", "")


def _dotted(loc: Iterable[object]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item}]"]
        elif str(item) in ("int", "str", "literal['nodeport']", "list[str]", "bool", "float"):
            continue  # pydantic names the union member it tried; the key path is what users need
        else:
            parts.append(str(item))
    return ".".join(parts)
