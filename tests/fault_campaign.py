"""The fault campaign (issue 13): one lab run of its own per (fault, step), stopped at that step by the fault
(tasks/_faults.py PEERPROBE_FAULT), then recovered by the next `peerprobe run` or `peerprobe cleanup`, and
afterwards nothing of the environment may remain. Used by tests/test_fault_campaign.py and bench/faults.py."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tasks._faults import KILL_ENV

COMMAND = [sys.executable, "-m", "peerprobe.cli"]
KINDS = ("kill-moto", "kill-prefect", "sigint", "sigkill")
STEPS = (
    "create-network",
    "create-cluster",
    "create-peer-host",
    "peer-vpcs",
    "deploy-apps",
    "expose-services",
    "set-snat",
    "probe",
    "cleanup",
)
RECOVERIES = ("run", "cleanup")
REGION = "cn-northwest-1"  # the config's default region
# What the faulted command may end with: 3 (a step failed: its service is gone) or 0 (it started the service
# again and carried on), 130 (SIGINT), -9 (SIGKILL). A killed Prefect server is started again on its port by the
# command itself (server.kept_up) while the client retries, and the run carries on; only when another server took
# the port first (a parallel test's) does it fail, and then it says so.
FAULTED_EXITS = {"kill-moto": {0, 3}, "kill-prefect": {0, 3}, "sigint": {130}, "sigkill": {-signal.SIGKILL}}
KILLED_SERVER_SAYS = {0: "prefect.server.restarted", 3: "prefect.server.restart_failed"}
# Had the server not come back, the run would go on through the Prefect client's retries (about 3 minutes here)
# before it failed; the bound leaves room for that on a loaded CI machine.
COMMAND_TIMEOUT = 480.0


@dataclass
class Outcome:
    """One cell of the matrix: how the faulted command ended, how the recovery ended, and what was left."""

    kind: str
    step: str
    recovery: str
    faulted_exit: int | None = None
    recovered_exit: int | None = None
    leftovers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def survived(self) -> bool:
        return (
            self.faulted_exit in FAULTED_EXITS[self.kind]
            and self.recovered_exit == 0
            and not self.leftovers
            and not self.notes
        )

    def describe(self) -> str:
        return (
            f"{self.kind}@{self.step} -> {self.recovery}: faulted exit {self.faulted_exit}, recovery exit "
            f"{self.recovered_exit}, leftovers {self.leftovers}, notes {self.notes}"
        )


def cell_name(kind: str, step: str) -> str:
    """A short experiment name of its own (EKS names are per account: each environment needs its own)."""
    return "f" + hashlib.sha256(f"{kind}@{step}@{os.getpid()}@{time.time()}".encode()).hexdigest()[:8]


def write_config(directory: Path, name: str, phases: list[dict[str, object]] | None = None) -> Path:
    """The smallest experiment: one phase, 1 s probes."""
    overrides = {
        "name": name,
        "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}},
        "probe": {"timeout_seconds": 1},
        "phases": phases or [{"name": "baseline"}],
    }
    path = directory / "experiment.yaml"
    path.write_text(yaml.safe_dump(overrides))
    return path


def cell_env(state_dir: Path, prefect_env: dict[str, str] | None) -> dict[str, str]:
    """The commands' environment: the cell's own state directory (so its own moto, killed without harm to
    others) and either the given Prefect server (`prefect_env`) or the state directory's own, started by the
    first command, with a database of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != KILL_ENV}
    env |= {"PEERPROBE_STATE_DIR": str(state_dir), "PREFECT_HOME": str(state_dir / "prefect-home"), "COLUMNS": "200"}
    env |= {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "PEERPROBE_LOCK_TIMEOUT": "60"}
    return env | (prefect_env or {})


def run_cell(kind: str, step: str, recovery: str, workdir: Path, prefect_env: dict[str, str] | None) -> Outcome:
    """The faulted run, its recovery, the leftover check; what the cell started is removed in any case."""
    started = time.monotonic()
    outcome = Outcome(kind, step, recovery)
    state_dir = workdir / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    name = cell_name(kind, step)
    config_file = write_config(workdir, name)
    env = cell_env(state_dir, prefect_env)
    key = f"lab:{name}:{REGION}"
    baseline = host_snapshot()
    try:
        faulted = _cli(["run", "--config", str(config_file)], env | {KILL_ENV: f"{kind}@{step}"})
        outcome.faulted_exit = faulted.returncode
        _check_faulted_output(outcome, faulted)
        recovered = _cli([recovery, "--config", str(config_file)], env)
        outcome.recovered_exit = recovered.returncode
        if recovered.returncode != 0:
            outcome.notes.append(f"recovery said: {_tail(recovered)}")
        if "Traceback" in recovered.stdout + recovered.stderr:
            outcome.notes.append("recovery printed a traceback")
        outcome.leftovers = leftovers(state_dir, key, baseline, env)
    finally:
        scrub(state_dir, key, config_file, env)
        outcome.seconds = time.monotonic() - started
    return outcome


def _check_faulted_output(outcome: Outcome, faulted: subprocess.CompletedProcess[str]) -> None:
    output = faulted.stdout + faulted.stderr
    if outcome.kind != "sigkill" and "Traceback" in output:
        outcome.notes.append("the faulted run printed a traceback")
    if outcome.kind == "sigint" and "interrupted:" not in output:
        outcome.notes.append(f"the interrupted run did not say what exists: {_tail(faulted)}")
    if outcome.faulted_exit not in FAULTED_EXITS[outcome.kind]:
        outcome.notes.append(f"faulted run said: {_tail(faulted)}")
    said = KILLED_SERVER_SAYS.get(outcome.faulted_exit or 0, "")
    if outcome.kind == "kill-prefect" and said not in output:
        outcome.notes.append(f"the run whose server was killed did not say {said!r}: {_tail(faulted)}")


def _tail(result: subprocess.CompletedProcess[str], lines: int = 12) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [*COMMAND, *args], capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else expired.stdout or ""
        return subprocess.CompletedProcess(args, 124, out, f"timed out after {COMMAND_TIMEOUT}s")


# --- what remains ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostSnapshot:
    """The host namespace's veths and iptables rules before the cell: the lab adds neither (design.md)."""

    veths: frozenset[str]
    rules: frozenset[str]


def host_snapshot() -> HostSnapshot:
    return HostSnapshot(frozenset(_host_veths()), frozenset(_host_rules()))


def _host_veths() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def _host_rules() -> list[str]:
    found = []
    for command in ("iptables-save", "ip6tables-save"):
        with contextlib.suppress(OSError):
            out = subprocess.run([command], capture_output=True, text=True).stdout
            found += [f"{command}: {line}" for line in out.splitlines() if line.startswith("-A")]
    return found


def leftovers(state_dir: Path, key: str, before: HostSnapshot, env: dict[str, str]) -> list[str]:
    """Everything of the environment still there: its namespaces and /etc/netns entries (by the prefix of its
    state directory and key), its agents, new host veths or iptables rules, its resources in the cell's moto."""
    from peerprobe.backends.lab.agent.process import running_agents
    from peerprobe.backends.lab.net import _names as names

    prefix = names.prefix_in(state_dir.resolve(), key)
    found = [f"netns {ns}" for ns in _listdir(names.NETNS_DIR) if ns.startswith(prefix)]
    found += [f"/etc/netns/{ns}" for ns in _listdir("/etc/netns") if ns.startswith(prefix)]
    found += [f"agent pid {pid}" for pid, spec in running_agents() if spec.is_relative_to(state_dir)]
    found += [f"host veth {v}" for v in sorted(set(_host_veths()) - before.veths)]
    found += [f"host rule {r}" for r in sorted(set(_host_rules()) - before.rules) if "pp-" in r or "peerprobe" in r]
    found += _moto_leftovers(key, env)
    return found


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


_MOTO_CHECK = """
import json, sys
from peerprobe.backends.lab import moto_service
from peerprobe.backends.aws import aws_cloud
from peerprobe.backends.lab.cloud import LAB_WAITS
from peerprobe.backends.ports import Stamp
import boto3
key, region = sys.argv[1], sys.argv[2]
service = moto_service.status()
if service is None:
    print(json.dumps([])); sys.exit(0)
cloud = aws_cloud(Stamp(experiment="check", environment="check", run_id="check"), region=region,
                  endpoint_url=service.endpoint_url, waits=LAB_WAITS)
found = [f"moto {r.kind} {r.id} ({r.tags.get('Name', '')})" for r in cloud.find_tagged(key) if cloud.exists(r)]
iam = boto3.client("iam", region_name=region, endpoint_url=service.endpoint_url)
name = key.split(":")[1]
found += [f"moto iam role {r['RoleName']}" for r in iam.list_roles()["Roles"] if name in r["RoleName"]]
eks = boto3.client("eks", region_name=region, endpoint_url=service.endpoint_url)
found += [f"moto eks cluster {c}" for c in eks.list_clusters()["clusters"] if name in c]
print(json.dumps(sorted(set(found))))
"""


def _moto_leftovers(key: str, env: dict[str, str]) -> list[str]:
    """The environment's resources in the cell's moto (if it runs: a moto that is gone holds nothing)."""
    import json

    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-c", _MOTO_CHECK, key, REGION], capture_output=True, text=True, env=env | aws, timeout=120
    )
    if result.returncode != 0:
        return [f"moto check failed: {result.stderr.strip().splitlines()[-1:]}"]
    return list(json.loads(result.stdout))


_SCRUB = """
import contextlib, os, signal, sys
from pathlib import Path
from peerprobe import config, daemon, statedir
from peerprobe.backends.lab import environment as lab, moto_service
from peerprobe.backends.lab.agent.process import running_agents, stop_agent
from peerprobe.backends.lab.net import _names as names
import subprocess
key, state_dir = sys.argv[1], Path(sys.argv[2])
with contextlib.suppress(Exception):
    lab.down(config.load(Path(sys.argv[3])))
prefix = names.prefix_in(state_dir.resolve(), key)
for ns in sorted(os.listdir(names.NETNS_DIR)) if os.path.isdir(names.NETNS_DIR) else []:
    if ns.startswith(prefix):
        subprocess.run(["ip", "netns", "del", ns], check=False)
for pid, spec in running_agents():
    if spec.is_relative_to(state_dir):
        stop_agent(pid)
moto_service.stop()
server = statedir.read_json("prefect-server.json") or {}
if isinstance(server.get("pid"), int):
    daemon.terminate(server["pid"], timeout=10)
"""


def scrub(state_dir: Path, key: str, config_file: Path, env: dict[str, str]) -> None:
    """Remove whatever the cell left (after the check) and stop its moto and its own Prefect server."""
    subprocess.run(
        [sys.executable, "-c", _SCRUB, key, str(state_dir), str(config_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
