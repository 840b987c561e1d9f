"""Build and tear down one environment's lab network: four batched steps, nothing in the host's namespace.

Steps: every namespace (one `ip -batch`), every veth pair born inside its two namespaces (one `ip -batch`),
then each namespace's addresses/routes/rules (`ip -n NS -batch`) and sysctls + tables (`iptables-restore`),
all namespaces at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from peerprobe.backends.lab.net import _cni, _fabric, _owner, _run
from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net._layout import layout
from peerprobe.backends.lab.net._lb import add_load_balancers, layout_load_balancers
from peerprobe.backends.lab.net._script import NsScript, Script
from peerprobe.backends.lab.net.model import KubeService, LabNet, SecurityGroupRule, Visitor, VpcKey
from peerprobe.backends.lab.net.security_groups import filter_table, workshop_rules
from peerprobe.config import ExperimentConfig, Snat
from peerprobe.errors import InfrastructureError, WaitTimeoutError
from peerprobe.topology import Topology
from peerprobe.wait import Waits, until

log = structlog.get_logger()
NETNS_CONFIG_DIR = Path("/etc/netns")  # per-namespace resolv.conf/hosts that `ip netns exec` bind-mounts
KILL_GRACE_SECONDS = 1.0


def build(
    env_key: str,
    config: ExperimentConfig,
    topology: Topology,
    *,
    snat: Mapping[VpcKey, Snat] | None = None,
    security_groups: list[SecurityGroupRule] | None = None,
    peering: bool | None = None,
    services: list[KubeService] | None = None,
    visitors: Sequence[Visitor] = (),
) -> LabNet:
    """Build the two-VPC network of the topology; replaces any earlier lab of the same environment.

    Defaults: the CNI's default SNAT env, `workshop_rules`, and the config's peering setting; `services` (the
    applied Kubernetes Services) give the load balancer nodes, which start with no healthy target; `visitors`
    (attach mode) add other experiments' pods and load balancers. On failure everything created is removed
    again and the error is raised.
    """
    _run.check_available()
    started = time.perf_counter()
    lab = layout(
        env_key,
        config,
        topology,
        snat=dict(snat or {}),
        security_groups=workshop_rules(config, topology) if security_groups is None else list(security_groups),
        peering=config.peering.enabled if peering is None else peering,
        visitors=visitors,
    )
    lbs = layout_load_balancers(lab.prefix, config, topology, list(services or []))
    for visitor in visitors:
        lbs += layout_load_balancers(
            lab.prefix, config, visitor.topology, visitor.services, guest=visitor.tag, marks_from=len(lbs)
        )
    lab = lab.model_copy(update={"load_balancers": lbs})
    teardown(env_key)
    try:
        _create(lab, _script(lab))
    except BaseException:
        teardown(env_key)
        raise
    log.info(
        "lab.net.built",
        env=env_key,
        prefix=lab.prefix,
        namespaces=len(lab.namespaces()),
        nodes=len(lab.nodes),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return lab


def attach_load_balancers(
    lab: LabNet, config: ExperimentConfig, topology: Topology, services: list[KubeService]
) -> LabNet:
    """Add the load balancer nodes of newly applied Services to a running lab, as AWS adds an ELB's nodes to a
    VPC: their namespaces, and what the build script of the larger lab adds to the routers and gateways
    (ENI routes, source/destination checks, 1:1 NAT, return paths). Nothing that runs is rebuilt. Raises
    InfrastructureError when the larger lab would also take something away (rebuild instead); on failure the
    new namespaces are removed again."""
    started = time.perf_counter()
    attached = lab.model_copy(update={"load_balancers": layout_load_balancers(lab.prefix, config, topology, services)})
    change = _additions(_script(lab), _script(attached), env_key=lab.env_key)
    added = [ns for ns in attached.namespaces() if ns not in set(lab.namespaces())]
    try:
        _create_in(added, change)
    except BaseException:
        _remove_namespaces(added)
        raise
    log.info(
        "lab.net.load_balancers.attached",
        env=lab.env_key,
        namespaces=len(added),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return attached


def _additions(before: Script, after: Script, *, env_key: str) -> Script:
    """What `after` has that `before` lacks: new veths, ip lines, sysctls, and whole tables that differ."""
    change = Script(veths=[line for line in after.veths if line not in set(before.veths)])
    for name, new in after.namespaces.items():
        old = before.namespaces.get(name, NsScript())
        if set(old.ip) - set(new.ip) or set(old.tables) - set(new.tables):
            raise InfrastructureError(
                f"lab {env_key}: the new load balancers would change {name}; rebuild instead",
                resource="netns",
                resource_id=name,
                state="changed",
            )
        ns = NsScript(
            ip=[line for line in new.ip if line not in set(old.ip)],
            sysctls={key: value for key, value in new.sysctls.items() if old.sysctls.get(key) != value},
            tables={key: t for key, t in new.tables.items() if key not in old.tables or old.tables[key] != t},
        )
        if ns.ip or ns.sysctls or ns.tables:
            change.namespaces[name] = ns
    return change


def _script(lab: LabNet) -> Script:
    script = Script()
    owner = _owner.alias_line(lab.env_key, names.owner_dir())  # first: the namespace names its owner (sweep)
    for ns in lab.namespaces():
        script.ns(ns).ip.append(owner)
    _cni.add_nodes(script, lab)
    _fabric.add_fabric(script, lab)
    add_load_balancers(script, lab)
    for key, vpc in lab.vpcs.items():
        script.ns(vpc.router_ns).tables["filter"] = filter_table(lab, key, lab.security_groups)
    return script


def _create(lab: LabNet, script: Script) -> None:
    _create_in(lab.namespaces(), script)
    for node in lab.nodes:
        log.info(
            "lab.node.built",
            node=node.name,
            ns=node.ns,
            cluster=node.cluster,
            enis=[e.device for e in node.enis],
            pods=[p.ip for p in node.pods],
        )


def _create_in(namespaces: list[str], script: Script) -> None:
    """Create `namespaces`, then the script's veth pairs and every namespace's configuration (new or not)."""
    if namespaces:
        _run.run(_run.ip_batch("create namespaces", [f"netns add {ns}" for ns in namespaces]))
    log.info("lab.net.namespaces", count=len(namespaces))
    if script.veths:
        _run.run(_run.ip_batch("create veth pairs", script.veths))
    jobs = [_run.ip_batch(f"ip config of {ns}", s.ip, ns=ns) for ns, s in script.namespaces.items() if s.ip]
    jobs += [
        _run.shell_job(f"sysctls and iptables of {ns}", ns, s.sysctls, s.rules())
        for ns, s in script.namespaces.items()
        if s.sysctls or s.tables
    ]
    _run.run_all(jobs)


# --- teardown ---------------------------------------------------------------------------------------------


def list_namespaces(env_key: str) -> list[str]:
    """This environment's namespaces, found by name alone (so it works after a crash)."""
    pre = names.prefix(env_key)
    try:
        return sorted(entry for entry in os.listdir(names.NETNS_DIR) if entry.startswith(pre))
    except FileNotFoundError:
        return []


def teardown(env_key: str) -> None:
    """Remove every namespace of the environment, its links with them, and end what still runs inside
    (echo servers, agents). Removing an absent environment succeeds."""
    found = list_namespaces(env_key)
    if not found:
        log.info("lab.net.absent", env=env_key)
        return
    started = time.perf_counter()
    end_processes(found)
    # Deleting a namespace destroys its devices; a veth's peer in another namespace goes with it.
    _remove_namespaces(found)
    for ns in found:
        shutil.rmtree(NETNS_CONFIG_DIR / ns, ignore_errors=True)
    left = list_namespaces(env_key)
    if left:
        raise InfrastructureError(
            f"namespaces still present after teardown: {', '.join(left)}",
            resource="netns",
            resource_id=left[0],
            state="present",
        )
    log.info(
        "lab.net.torn_down",
        env=env_key,
        namespaces=len(found),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )


def _remove_namespaces(namespaces: list[str]) -> None:
    """Delete those of `namespaces` that exist; a veth's peer in another namespace goes with its end."""
    present = set(os.listdir(names.NETNS_DIR)) if os.path.isdir(names.NETNS_DIR) else set()
    doomed = [ns for ns in namespaces if ns in present]
    if doomed:
        _run.run(_run.ip_batch("delete namespaces", [f"netns del {ns}" for ns in doomed]))


EXITING = Waits(delay=0.02, max_delay=0.1, max_attempts=1000)


def end_processes(namespaces: list[str]) -> None:
    pids = _pids_in(namespaces)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    with contextlib.suppress(WaitTimeoutError):  # what is still there after the grace is killed below
        until(
            lambda: not any(_alive(pid) for pid in pids),
            kind="lab processes",
            resource_id=str(pids),
            goal="gone",
            timeout_seconds=KILL_GRACE_SECONDS,
            timing=EXITING,
        )
    left = [pid for pid in pids if _alive(pid)]
    for pid in left:
        _signal(pid, signal.SIGKILL)
    if left:
        log.warning("lab.net.killed", pids=left)


def _pids_in(namespaces: list[str]) -> list[int]:
    """Processes whose network namespace is one of these (what `ip netns pids` does, in one /proc pass)."""
    inodes = set()
    for ns in namespaces:
        with contextlib.suppress(OSError):
            inodes.add(f"net:[{os.stat(Path(names.NETNS_DIR) / ns).st_ino}]")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{entry}/ns/net") in inodes:
                found.append(int(entry))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: its parent will reap it.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    return False
