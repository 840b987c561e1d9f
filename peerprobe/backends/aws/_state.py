"""What the aws backend made or adopted for one environment, persisted (ids only, never a credential or a
token) so that later steps, a resumed run and cleanup find it again."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field, ValidationError

from peerprobe import statedir
from peerprobe.errors import UnreadableStateError
from peerprobe.vocabulary import VpcKey as VpcKey  # re-exported


class NetworkIds(BaseModel):
    key: VpcKey
    vpc: str
    cidr: str
    adopted: bool = False  # adopted VPCs and subnets are never deleted; only the tags we added are removed
    public_subnets: list[str] = Field(default_factory=list)
    private_subnets: list[str] = Field(default_factory=list)
    route_tables: list[str] = Field(default_factory=list)  # every table the subnets use (peering routes go here)
    internet_gateway: str | None = None
    nat_gateway: str | None = None
    nat_public_ip: str | None = None
    added_tags: dict[str, list[str]] = Field(default_factory=dict)  # subnet id -> tag keys peerprobe added
    cidr_associations: dict[str, str] = Field(default_factory=dict)  # secondary CIDR -> association id (ours)
    pod_subnets: dict[str, str] = Field(default_factory=dict)  # custom networking: zone -> ENIConfig subnet id
    pod_route_table: str | None = None  # the pod subnets' table (also in route_tables)
    attached: bool = False  # an attached cluster's VPC, as read: never changed or removed (design.md, attach)


class ClusterIds(BaseModel):
    name: str
    nodegroup: str
    security_group: str = ""  # the EKS cluster security group, which managed nodes use
    pod_security_group: str = ""  # security groups for pods: the SecurityGroupPolicy's own group
    attached: bool = False  # someone else's cluster: only peerprobe's namespace there is removed


class OpenedRule(BaseModel):
    group: str
    protocol: str
    from_port: int
    to_port: int
    cidr: str


class AwsState(BaseModel):
    environment: str
    networks: dict[VpcKey, NetworkIds] = Field(default_factory=dict)
    clusters: dict[VpcKey, ClusterIds] = Field(default_factory=dict)
    roles: list[str] = Field(default_factory=list)
    instance_profile: str = ""
    peer_host_instance: str = ""
    peer_host_security_group: str = ""
    peering: str | None = None
    transit_gateway: str | None = None  # peering.via: transit-gateway
    transit_gateway_attachments: dict[VpcKey, str] = Field(default_factory=dict)
    opened: list[OpenedRule] = Field(default_factory=list)
    peering_read: str | None = None  # attach mode: the peering found between the attached VPCs (never removed)


def state_name(environment: str) -> str:
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in environment)
    return f"aws/{slug}.json"


def load(environment: str) -> AwsState:
    """The recorded ids (none recorded: an empty state); a file that cannot be used raises UnreadableStateError."""
    name = state_name(environment)
    data = statedir.read_state(name)
    if data is None:
        return AwsState(environment=environment)
    try:
        return AwsState.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top)"
        raise UnreadableStateError(statedir.state_dir() / name, f"not an aws state: {where}: {first['msg']}") from None


def is_recorded(environment: str) -> bool:
    """Whether this state directory holds a record of the environment's ids (a wiped one, or another machine's,
    does not); a record that cannot be read counts: `load` says what is wrong with it."""
    path = statedir.state_dir() / state_name(environment)
    return path.is_symlink() or path.exists()


def update(environment: str, change: Callable[[AwsState], AwsState]) -> AwsState:
    """Read-modify-write under the environment's lock (steps run concurrently in the flow's threads)."""
    name = state_name(environment)
    with statedir.locked(name):
        updated = change(load(environment))
        statedir.write_json(name, updated.model_dump(mode="json"))
        return updated


def forget(environment: str) -> None:
    """Remove the record; an unreadable one is quarantined instead (statedir.discard)."""
    statedir.discard(state_name(environment))
