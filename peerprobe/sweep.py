"""`peerprobe sweep`: find what peerprobe left behind and (with --yes) remove it, idempotently.

Leftovers are: resources in moto (or AWS) tagged with an environment that has no state here (each verified to
still exist: moto keeps the tags of deleted resources); lab environments whose state survives but whose
namespaces or agent are gone; `pp-*` namespaces and echo agents no environment owns. With `--older-than`,
whole environments created longer ago than that are swept too. Environments go through the lab's own
teardown (`environment.down`); orphaned cloud resources through the adapter's ensure-absent deletes, in
dependency order. No Prefect here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog

from peerprobe import ownership, statedir
from peerprobe.backends.aws import AwsCloud, aws_cloud
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment, moto_service
from peerprobe.backends.lab.agent.process import is_agent, running_agents, stop_agent
from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.ports import TAG_CREATED_AT, IngressRule, LoadBalancer, Stamp
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError, EnvironmentBusyError, InfrastructureError, NotFoundError

log = structlog.get_logger()
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Namespaces and agents nobody owns are only swept once this old: a lab being built right now (in another
# state directory) has namespaces for a moment before its agent and state name them.
GRACE_SECONDS = 120.0
# Deletion order for orphaned cloud resources (what depends on what goes first).
_ORDER = [
    "elb",
    "elbv2",
    "target-group",
    "eks-nodegroup",
    "eks-cluster",
    "instance",
    "volume",
    "natgateway",
    "elastic-ip",
    "vpc-peering-connection",
    "security-group",
    "subnet",
    "route-table",
    "internet-gateway",
    "vpc",
]


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``7d``, ``90s``, ``1w`` -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"--older-than: {text!r} is not a duration like 30m, 2h or 7d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Leftover:
    kind: str  # environment, netns, agent, or a tagged kind (vpc, subnet, instance, ...)
    id: str
    environment: str
    age_seconds: float | None
    reason: str
    region: str = ""
    config: ExperimentConfig | None = field(default=None, compare=False, repr=False)

    @property
    def age(self) -> str:
        return format_age(self.age_seconds)


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit]:
            return f"{seconds / _UNIT_SECONDS[unit]:.0f}{unit}"
    return f"{seconds:.0f}s"


# --- finding -----------------------------------------------------------------------------------------------------


def find(
    *,
    older_than: float | None = None,
    now: float | None = None,
    namespaces: Callable[[], list[str]] | None = None,
    agents: Callable[[], list[tuple[int, Path]]] | None = None,
    grace_seconds: float = GRACE_SECONDS,
) -> list[Leftover]:
    """Everything sweep would remove (nothing is changed). `namespaces` and `agents` default to the machine's."""
    now = time.time() if now is None else now
    states = _states()
    found = [*_environments(states, older_than=older_than, now=now)]
    swept_envs = {item.environment for item in found}
    found += _cloud_orphans(states, now=now)
    owned = {names.prefix(key) for key in states} | _prefixes_of_live_agents(agents)
    found += _namespace_orphans(
        namespaces() if namespaces else _all_namespaces(), owned, swept_envs, states, now=now, grace=grace_seconds
    )
    found += _agent_orphans(agents() if agents else running_agents(), now=now, grace=grace_seconds)
    return found


def _states() -> dict[str, environment.LabState]:
    directory = statedir.state_dir() / "environments"
    found = {}
    for path in sorted(directory.glob("*.json")) if directory.exists() else []:
        with contextlib.suppress(Exception):  # an unreadable state file is not an environment
            state = environment.load_state(_key_of_file(path) or "")
            if state is not None:
                found[state.env_key] = state
    return found


def _key_of_file(path: Path) -> str | None:
    raw = statedir.read_json(f"environments/{path.name}")
    key = raw.get("env_key") if raw else None
    return key if isinstance(key, str) else None


def _environments(
    states: dict[str, environment.LabState], *, older_than: float | None, now: float
) -> Iterable[Leftover]:
    for key, state in states.items():
        age = _age(state.created_at, now)
        if not environment.healthy(state):
            reason = "broken: its namespaces or agent are gone"
        elif older_than is not None and age is not None and age > older_than:
            reason = f"older than {format_age(older_than)}"
        else:
            continue
        yield Leftover("environment", key, key, age, reason, region=state.config.region, config=state.config)


def _age(stamp: str | None, now: float) -> float | None:
    if not stamp:
        return None
    try:
        return now - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _cloud_orphans(states: dict[str, environment.LabState], *, now: float) -> list[Leftover]:
    """Tagged resources in moto whose environment has no state here, each verified to still exist."""
    if moto_service.status() is None:
        return []
    regions = {state.config.region for state in states.values()} | {ExperimentConfig().region}
    found = []
    for region in sorted(regions):
        cloud = _cloud(region)
        for resource in cloud.find_tagged():
            if _owned(resource.environment, states) or not cloud.exists(resource):
                continue
            age = _age(resource.tags.get(TAG_CREATED_AT), now)
            found.append(
                Leftover(resource.kind, resource.id, resource.environment, age, "no live environment", region=region)
            )
    return found


def _owned(environment_key: str, states: dict[str, environment.LabState]) -> bool:
    """A live environment's: the lab's data plane is on record, or the steps recorded its ids (a build in
    progress, or one whose data plane is not up yet)."""
    return environment_key in states or aws_state.is_recorded(environment_key)


def _cloud(region: str) -> AwsCloud:
    return aws_cloud(
        Stamp(experiment="sweep", environment="sweep", run_id="sweep"),
        region=region,
        endpoint_url=moto_service.endpoint_url(),
    )


def _prefixes_of_live_agents(agents: Callable[[], list[tuple[int, Path]]] | None) -> set[str]:
    """Namespaces served by a live agent whose environment's state exists (in any state directory) are owned."""
    owned = set()
    for _, spec in agents() if agents else running_agents():
        key = _env_key_of_agent(spec)
        if key is not None:
            owned.add(names.prefix(key))
    return owned


def _env_key_of_agent(spec: Path) -> str | None:
    try:
        raw = json.loads(spec.parent.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key = raw.get("env_key") if isinstance(raw, dict) else None
    return key if isinstance(key, str) else None


def _namespace_orphans(
    found: Sequence[str],
    owned: set[str],
    swept: set[str],
    states: dict[str, environment.LabState],
    *,
    now: float,
    grace: float,
) -> list[Leftover]:
    swept_prefixes = {names.prefix(key) for key in swept}
    result = []
    for ns in found:
        pre = ns[: len("pp-000000-")]
        if pre in owned or pre in swept_prefixes:
            continue
        age = _namespace_age(ns, now)
        if age is not None and age < grace:
            continue
        result.append(Leftover("netns", ns, "", age, "no environment owns it"))
    return result


def _all_namespaces() -> list[str]:
    try:
        return sorted(n for n in os.listdir(names.NETNS_DIR) if re.match(r"^pp-[0-9a-f]{6}-", n))
    except FileNotFoundError:
        return []


def _namespace_age(ns: str, now: float) -> float | None:
    try:
        return now - os.stat(Path(names.NETNS_DIR) / ns).st_mtime
    except OSError:
        return None


def _agent_orphans(agents: Sequence[tuple[int, Path]], *, now: float, grace: float) -> list[Leftover]:
    """Agents whose environment's state is gone, or names another agent: nobody will stop them."""
    result = []
    for pid, spec in agents:
        state_file = spec.parent.with_suffix(".json")
        recorded = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            recorded = json.loads(state_file.read_text(encoding="utf-8")).get("agent_pid")
        if recorded == pid:
            continue
        age = _process_age(pid, now)
        if age is not None and age < grace:
            continue
        result.append(Leftover("agent", str(pid), "", age, f"its environment's state ({state_file.name}) is gone"))
    return result


def _process_age(pid: int, now: float) -> float | None:
    try:
        return now - os.stat(f"/proc/{pid}").st_mtime
    except OSError:
        return None


# --- removing ----------------------------------------------------------------------------------------------------


def remove(leftovers: Sequence[Leftover]) -> list[str]:
    """Remove them: environments through the lab's teardown, orphans through ensure-absent deletes (already
    gone counts as removed). Returns one line per item; raises InfrastructureError naming what is left."""
    done: list[str] = []
    failed: list[str] = []
    _unlink_groups([item for item in leftovers if item.kind == "security-group"])
    for item in sorted(leftovers, key=_rank):
        try:
            with _owning(item.environment):
                _remove_one(item)
            done.append(f"removed {item.kind} {item.id}")
        except EnvironmentBusyError as error:  # someone owns it now: it is live, not left behind
            done.append(f"skipped {item.kind} {item.id}: {error}")
        except (InfrastructureError, OSError) as error:
            failed.append(f"{item.kind} {item.id}: {error}")
    if failed:
        raise InfrastructureError("sweep left: " + "; ".join(failed), resource="sweep", state="partial")
    return done


@contextlib.contextmanager
def _owning(environment: str) -> Iterator[None]:
    """Own the leftover's environment while deleting (design.md "Ownership of an environment"), without waiting:
    an environment another command or flow holds is in use."""
    if not environment:  # a namespace or an agent nobody owns
        yield
        return
    with ownership.hold(environment, "peerprobe sweep --yes", timeout_seconds=0):
        yield


def _rank(item: Leftover) -> tuple[int, str]:
    order = ["agent", "environment", *_ORDER, "netns"]
    return (order.index(item.kind) if item.kind in order else len(order), item.id)


def _remove_one(item: Leftover) -> None:
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
        _remove_tagged(_cloud(item.region), item)


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
            cloud.delete_load_balancer(_load_balancer(cloud, item))
        elif kind == "target-group":
            cloud.delete_target_group(resource_id)
        elif kind == "eks-nodegroup":
            cluster, _, name = resource_id.partition("/")
            cloud.delete_nodegroup(cluster, name=name)
        elif kind == "eks-cluster":
            cloud.delete_cluster(resource_id)
        elif kind == "instance":
            cloud.terminate_instance(resource_id)
        elif kind == "volume":  # an instance's root volume
            cloud.delete_volume(resource_id)
        elif kind == "natgateway":
            cloud.delete_nat_gateway(resource_id)
        elif kind == "elastic-ip":
            cloud.release_address(resource_id)
        elif kind == "vpc-peering-connection":
            cloud.delete_peering(resource_id)
        elif kind == "security-group":
            _delete_group(cloud, resource_id)
        elif kind == "subnet":
            cloud.delete_subnet(resource_id)
        elif kind == "route-table":
            cloud.delete_route_table(resource_id)
        elif kind == "internet-gateway":
            cloud.delete_internet_gateway(resource_id)
        elif kind == "vpc":
            cloud.delete_vpc(resource_id)


def _load_balancer(cloud: AwsCloud, item: Leftover) -> LoadBalancer:
    if item.kind == "elb":
        return LoadBalancer(name=item.id, kind="classic", dns_name="", scheme="")
    return LoadBalancer(name=item.id.split("/")[-2], kind="network", dns_name="", scheme="", arn=item.id)


def _unlink_groups(groups: Sequence[Leftover]) -> None:
    """Rules naming other groups go first: AWS refuses to delete a group another group's rule references."""
    for item in groups:
        cloud = _cloud(item.region)
        with contextlib.suppress(NotFoundError):
            referencing: list[IngressRule] = [r for r in cloud.ingress_rules(item.id) if r.source_group]
            if referencing:
                cloud.revoke_ingress(item.id, rules=referencing)


def _delete_group(cloud: AwsCloud, group_id: str) -> None:
    cloud.delete_security_group(group_id)
