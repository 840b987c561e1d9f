"""`peerprobe sweep`: find what peerprobe left that belongs to no live environment and (with --yes) remove it.

Lab (the default): this state directory's labs that broke (their namespaces or agent gone); `pp-*` namespaces
whose owner (the record in each namespace, lab/owners.py) does not name them; echo agents whose state does not
record them; and the moto resources of environments this state directory does not record. AWS: the resources
tagged `peerprobe:environment` in one region whose environment this state directory does not record. Nothing
younger than the grace period and nothing of an environment a live process holds is ever listed. Removal goes
through the lab's teardown and the adapter's ensure-absent deletes, in the one deletion order. No Prefect here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from peerprobe import holders, ownership, statedir
from peerprobe.backends.aws import AwsCloud, aws_cloud, identity_preflight
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.aws._sweep import DELETION_ORDER
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.lab import environment, moto_service, owners
from peerprobe.backends.lab.agent.process import is_agent, running_agents, stop_agent
from peerprobe.backends.lab.cloud import LAB_WAITS
from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.ports import TAG_CREATED_AT, IngressRule, LoadBalancer, Stamp, TaggedResource
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, EnvironmentBusyError, InfrastructureError, NotFoundError

log = structlog.get_logger()
_DURATION = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)([smhdw])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAMESPACE = re.compile(r"pp-[0-9a-f]{6}-.+", re.ASCII)
# Nothing younger than this is swept (`--older-than` sets it): a lab is built in seconds, but its namespaces
# exist a moment before they name their owner, and a build under a slow moto or a latency profile
# (PEERPROBE_LAB_LATENCY) takes minutes. On AWS an environment's newest tag is at most one step old, and every
# step's wait is bounded (EKS clusters, the longest, by their own wait), so a build whose tags are all older
# than that has stopped. Ten minutes covers the lab's slowest build many times over; for AWS, where a step may
# wait 20 minutes, use `--older-than 1h` when a build elsewhere may be running.
GRACE_SECONDS = 600.0
SCHEMA = "peerprobe.sweep/v1"


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``7d``, ``90s``, ``1w`` -> seconds."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ConfigError(f"--older-than: {text[:40]!r} is not a duration like 30m, 2h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Leftover:
    kind: str  # environment, netns, agent, or a tagged kind (vpc, subnet, instance, ... in DELETION_ORDER)
    id: str
    environment: str
    age_seconds: float | None
    reason: str
    region: str = ""
    backend: str = "lab"  # where a tagged resource is: the lab's moto, or AWS
    profile: str | None = field(default=None, compare=False)
    state_dir: Path | None = field(default=None, compare=False)  # the environment's (default: this one)
    config: ExperimentConfig | None = field(default=None, compare=False, repr=False)

    @property
    def age(self) -> str:
        return format_age(self.age_seconds)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "environment": self.environment or None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds),
            "reason": self.reason,
            "region": self.region or None,
        }


@dataclass
class Found:
    """What a sweep found, and what it could not read (each note names the file and what is wrong)."""

    leftovers: list[Leftover] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit]:
            return f"{seconds / _UNIT_SECONDS[unit]:.0f}{unit}"
    return f"{seconds:.0f}s"


@dataclass(frozen=True)
class Scope:
    """What of this machine a lab sweep looks at: its `pp-*` namespaces and its echo agents (pid, spec file)."""

    namespaces: Callable[[], list[str]]
    agents: Callable[[], list[tuple[int, Path]]]


def default_scope() -> Scope:
    """The whole machine. Tests replace this (a test-only hook) with their own namespaces and agents, so a
    sweep in a test never sees what other sessions are building on the same machine."""
    return Scope(namespaces=_all_namespaces, agents=running_agents)


# --- the lab ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Local:
    """An environment of this state directory: its state and when that was last written."""

    state: environment.LabState
    changed: float


def find_lab(*, grace_seconds: float = GRACE_SECONDS, now: float | None = None, scope: Scope | None = None) -> Found:
    """Everything a lab sweep would remove (nothing is changed)."""
    now = time.time() if now is None else now
    scope = scope or default_scope()
    found = Found()
    local = _local_states(found.notes)
    found.leftovers += _broken_environments(local, now=now, grace=grace_seconds)
    found.leftovers += _cloud_orphans(local, now=now, grace=grace_seconds)
    agents = scope.agents()
    found.leftovers += _namespace_orphans(scope.namespaces(), local, agents, now=now, grace=grace_seconds)
    found.leftovers += _agent_orphans(agents, now=now, grace=grace_seconds)
    return found


def _local_states(notes: list[str]) -> dict[str, _Local]:
    """This state directory's lab environments; one whose file does not validate is noted, not trusted."""
    directory = statedir.state_dir() / "environments"
    found = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            raw, changed = statedir.read_json_at(path), os.stat(path, follow_symlinks=False).st_mtime
            if raw is None:
                raise ValueError("not a JSON object in a regular file")
            state = environment.LabState.model_validate(raw)
        except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
            notes.append(f"{path}: unreadable ({_what(error)}); its namespaces count as orphans")
            continue
        found[state.env_key] = _Local(state, changed)
    return found


def _what(error: Exception) -> str:
    lines = str(error).splitlines()
    return " ".join(line.strip() for line in lines[:3])[:200] if lines else type(error).__name__


def _busy(key: str, changed: float | None, *, now: float, grace: float) -> bool:
    """Being built or changed: its state was written within the grace, or a live process holds it."""
    return (changed is not None and now - changed < grace) or holders.held(names.owner_dir(), key)


def _broken_environments(local: dict[str, _Local], *, now: float, grace: float) -> Iterable[Leftover]:
    for key, entry in local.items():
        if environment.healthy(entry.state) or _busy(key, entry.changed, now=now, grace=grace):
            continue
        state = entry.state
        yield Leftover(
            "environment",
            key,
            key,
            _age(state.created_at, now),
            "broken: its namespaces or agent are gone",
            region=state.config.region,
            config=state.config,
        )


def _age(stamp: str | None, now: float) -> float | None:
    if not stamp:
        return None
    try:
        return now - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _cloud_orphans(local: dict[str, _Local], *, now: float, grace: float) -> list[Leftover]:
    """moto's resources (this state directory's moto) of environments this state directory does not record."""
    if moto_service.status() is None:
        return []
    regions = {entry.state.config.region for entry in local.values()} | {ExperimentConfig().region}

    def live(key: str) -> bool:
        return key in local or aws_state.is_recorded(key) or holders.held(names.owner_dir(), key)

    found = []
    for region in sorted(regions):
        found += tagged_orphans(_moto(region), live=live, now=now, grace=grace, backend="lab")
    return found


def _moto(region: str) -> AwsCloud:
    return aws_cloud(_SWEEP_STAMP, region=region, endpoint_url=moto_service.endpoint_url(), waits=LAB_WAITS)


def _namespace_orphans(
    found: Sequence[str],
    local: dict[str, _Local],
    agents: Sequence[tuple[int, Path]],
    *,
    now: float,
    grace: float,
) -> list[Leftover]:
    """Namespaces of no live environment: each group of one prefix is judged by the owner its namespaces name,
    or else its live agent's environment (lab/owners.py); this state directory's environments by their own
    state (a broken one goes whole)."""
    mine = {names.prefix(key) for key in local}
    served = owners.agents_owners(agents)
    groups: dict[str, list[str]] = defaultdict(list)
    for ns in found:
        groups[ns[: names.PREFIX_LENGTH]].append(ns)
    result = []
    for prefix, group in sorted(groups.items()):
        old = [ns for ns in group if not _young(_namespace_age(ns, now), grace)]
        if prefix in mine or not old:
            continue
        claim = owners.claim(group, now=now, grace=grace, fallback=served.get(prefix))
        for ns in claim.orphans(old):
            age, directory = _namespace_age(ns, now), claim.owner.state_dir if claim.owner else None
            result.append(Leftover("netns", ns, claim.env_key, age, claim.reason, state_dir=directory))
    return result


def _young(age: float | None, grace: float) -> bool:
    """Younger than the grace; an age that cannot be read counts as young (it may be a build in progress)."""
    return age is None or age < grace


def _all_namespaces() -> list[str]:
    try:
        return sorted(n for n in os.listdir(names.NETNS_DIR) if _NAMESPACE.fullmatch(n))
    except FileNotFoundError:
        return []


def _namespace_age(ns: str, now: float) -> float | None:
    try:
        return now - os.stat(Path(names.NETNS_DIR) / ns).st_mtime
    except OSError:
        return None


def _agent_orphans(agents: Sequence[tuple[int, Path]], *, now: float, grace: float) -> list[Leftover]:
    """Agents their environment's state does not record (it is gone, or names another agent): nobody will
    stop them. The spec an agent serves sits in its state directory: <dir>/environments/<key>/agent.json."""
    result = []
    for pid, spec in agents:
        state_file = spec.parent.with_suffix(".json")
        with contextlib.suppress(OSError):
            if (statedir.read_json_at(state_file) or {}).get("agent_pid") == pid:
                continue
        age = _process_age(pid, now)
        if _young(age, grace) or _agent_held(spec):
            continue
        result.append(
            Leftover("agent", str(pid), "", age, f"its environment's state ({state_file}) does not record it")
        )
    return result


def _agent_held(spec: Path) -> bool:
    state_dir, slug = spec.parent.parent.parent, spec.parent.name
    return holders.held(state_dir, slug)


def _process_age(pid: int, now: float) -> float | None:
    try:
        return now - os.stat(f"/proc/{pid}").st_mtime
    except OSError:
        return None


# --- AWS ----------------------------------------------------------------------------------------------------------

_SWEEP_STAMP = Stamp(experiment="sweep", environment="sweep", run_id="sweep")


def check_aws(config: ExperimentConfig) -> str:
    """Credentials and region first (STS GetCallerIdentity; without credentials nothing is called): who is
    sweeping where. Raises CredentialsError (exit 2)."""
    identity = identity_preflight(ClientFactory(config.region, profile=config.aws.profile))
    return f"aws: {identity.arn} in {identity.region}"


def find_aws(
    config: ExperimentConfig,
    *,
    grace_seconds: float = GRACE_SECONDS,
    now: float | None = None,
    cloud: AwsCloud | None = None,
) -> Found:
    """Everything tagged in the config's region whose environment this state directory does not record, none
    tagged within the grace, none a live process holds (nothing is changed)."""
    now = time.time() if now is None else now
    cloud = cloud or aws_cloud(_SWEEP_STAMP, region=config.region, profile=config.aws.profile)

    def live(key: str) -> bool:
        return aws_state.is_recorded(key) or _lab_recorded(key) or holders.held(names.owner_dir(), key)

    return Found(
        tagged_orphans(cloud, live=live, now=now, grace=grace_seconds, backend="aws", profile=config.aws.profile)
    )


def _lab_recorded(key: str) -> bool:
    with contextlib.suppress(OSError):
        return statedir.read_json_at(environment.state_file(key, statedir.state_dir())) is not None
    return False


def tagged_orphans(
    cloud: AwsCloud,
    *,
    live: Callable[[str], bool],
    now: float,
    grace: float,
    backend: str,
    profile: str | None = None,
) -> list[Leftover]:
    """The tagged resources (each verified to still exist: deleted ones keep their tags a while) of every
    environment that is not `live` and whose newest resource was tagged before the grace."""
    by_environment: dict[str, list[TaggedResource]] = defaultdict(list)
    for resource in cloud.find_tagged():
        by_environment[resource.environment].append(resource)
    found = []
    for key, resources in sorted(by_environment.items()):
        if live(key):
            continue
        existing = [r for r in resources if cloud.exists(r)]
        ages = [_age(r.tags.get(TAG_CREATED_AT), now) for r in existing]
        if any(age is not None and age < grace for age in ages):  # its newest step ran a moment ago
            continue
        reason = "no state in this state directory records its environment"
        found += [
            Leftover(r.kind, r.id, key, age, reason, region=cloud.clients.region, backend=backend, profile=profile)
            for r, age in zip(existing, ages, strict=True)
        ]
    return found


# --- removing -----------------------------------------------------------------------------------------------------


CloudOf = Callable[[Leftover], AwsCloud]


def remove(leftovers: Sequence[Leftover], *, cloud_of: CloudOf | None = None, owned: bool = False) -> list[str]:
    """Remove them: environments through the lab's teardown, namespaces and agents directly, tagged resources
    through ensure-absent deletes in the deletion order (already gone counts as removed). Returns one line per
    item; raises InfrastructureError naming what is left. `cloud_of`: the adapter a tagged resource is deleted
    through (default: the lab's moto, or AWS in the item's region). `owned`: the caller holds the environments'
    locks itself (a run removing what is left of its own lost environment), so none is taken or checked."""
    cloud_of = cloud_of or _cloud_of
    done: list[str] = []
    failed: list[str] = []
    _unlink_groups([item for item in leftovers if item.kind == "security-group"], cloud_of)
    for item in sorted(leftovers, key=_rank):
        try:
            if not owned and _taken(item):
                done.append(f"kept {item.kind} {item.id}: its environment is held by a live process now")
                continue
            with contextlib.nullcontext() if owned else _owning(item.environment):
                _remove_one(item, cloud_of)
            done.append(f"removed {item.kind} {item.id}")
        except EnvironmentBusyError as error:  # someone took it since the check: it is live, not left behind
            done.append(f"kept {item.kind} {item.id}: {error}")
        except (InfrastructureError, OSError) as error:
            failed.append(f"{item.kind} {item.id}: {error}")
    if failed:
        raise InfrastructureError("sweep left: " + "; ".join(failed), resource="sweep", state="partial")
    return done


@contextlib.contextmanager
def _owning(environment: str) -> Iterator[None]:
    """Own the leftover's environment while deleting it (design.md "Ownership of an environment"), without
    waiting: an environment another command or flow holds is in use."""
    if not environment:  # a namespace or an agent nobody owns
        yield
        return
    with ownership.hold(environment, "peerprobe sweep --yes", timeout_seconds=0):
        yield


def _taken(item: Leftover) -> bool:
    """Checked again just before deleting: an environment someone started holding since it was listed."""
    return bool(item.environment) and holders.held(item.state_dir or names.owner_dir(), item.environment)


def _rank(item: Leftover) -> tuple[int, str]:
    order = ["agent", "environment", *DELETION_ORDER, "netns"]
    return (order.index(item.kind) if item.kind in order else len(order), item.id)


def _remove_one(item: Leftover, cloud_of: CloudOf) -> None:
    log.info("sweep.remove", kind=item.kind, id=item.id, environment=item.environment, reason=item.reason)
    if item.kind == "environment":
        assert item.config is not None
        environment.down(item.config)
    elif item.kind == "agent":
        pid = int(item.id)
        if is_agent(pid):
            stop_agent(pid)
    elif item.kind == "netns":
        _remove_namespace(item.id)
    else:
        _remove_tagged(cloud_of(item), item)


def _cloud_of(item: Leftover) -> AwsCloud:
    if item.backend == "aws":
        return aws_cloud(_SWEEP_STAMP, region=item.region, profile=item.profile)
    return _moto(item.region)


def _remove_namespace(ns: str) -> None:
    from peerprobe.backends.lab.net import _run
    from peerprobe.backends.lab.net import lab as lab_net

    if not (Path(names.NETNS_DIR) / ns).exists():
        return
    lab_net.end_processes([ns])
    _run.run(_run.ip_batch("delete namespace", [f"netns del {ns}"], force=True))
    shutil.rmtree(lab_net.NETNS_CONFIG_DIR / ns, ignore_errors=True)


def _remove_tagged(cloud: AwsCloud, item: Leftover) -> None:
    kind, resource_id = item.kind, item.id
    with contextlib.suppress(NotFoundError):
        if kind in ("elb", "elbv2"):
            cloud.delete_load_balancer(_load_balancer(item))
        elif kind == "target-group":
            cloud.delete_target_group(resource_id)
        elif kind == "eks-nodegroup":
            cluster, _, name = resource_id.partition("/")
            cloud.delete_nodegroup(cluster, name=name)
        elif kind == "eks-cluster":
            # Its Services' load balancers carry only the cluster's tag (the controllers made them): they go
            # first, found as cleanup from tags finds them; delete_cluster then takes the controllers' groups.
            cloud.delete_tagged_load_balancers(resource_id)
            cloud.delete_cluster(resource_id)
        else:
            _remove_ec2(cloud, kind, resource_id)


def _remove_ec2(cloud: AwsCloud, kind: str, resource_id: str) -> None:
    deletes: dict[str, Callable[[str], None]] = {
        "instance": cloud.terminate_instance,
        "volume": cloud.delete_volume,  # an instance's root volume
        "natgateway": cloud.delete_nat_gateway,
        "elastic-ip": cloud.release_address,
        "vpc-peering-connection": cloud.delete_peering,
        "transit-gateway-attachment": cloud.delete_transit_gateway_attachment,
        "transit-gateway": cloud.delete_transit_gateway,
        "security-group": cloud.delete_security_group,
        "subnet": cloud.delete_subnet,
        "route-table": cloud.delete_route_table,
        "internet-gateway": cloud.delete_internet_gateway,
        "vpc": cloud.delete_vpc,
    }
    if kind in deletes:
        deletes[kind](resource_id)


def _load_balancer(item: Leftover) -> LoadBalancer:
    if item.kind == "elb":
        return LoadBalancer(name=item.id, kind="classic", dns_name="", scheme="")
    return LoadBalancer(name=item.id.split("/")[-2], kind="network", dns_name="", scheme="", arn=item.id)


def _unlink_groups(groups: Sequence[Leftover], cloud_of: CloudOf) -> None:
    """Rules naming other groups go first: AWS refuses to delete a group another group's rule references."""
    for item in groups:
        cloud = cloud_of(item)
        with contextlib.suppress(NotFoundError):
            referencing: list[IngressRule] = [r for r in cloud.ingress_rules(item.id) if r.source_group]
            if referencing:
                cloud.revoke_ingress(item.id, rules=referencing)
