"""Lab-network test helpers (conftest.py holds the fixtures): a peer-address server and a one-shot TCP client
run inside the lab's namespaces, the model's expectation for a cell, and the role an observed address plays.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from peerprobe import config as cfg
from peerprobe import topology as topo
from peerprobe.backends.lab import net
from peerprobe.config import ExperimentConfig, PhaseSnat, Snat
from peerprobe.model import predict_phase
from peerprobe.topology import Topology
from peerprobe.vocabulary import Expected, Role, Vantage

PROBE_TIMEOUT = 1.0  # seconds; every path in the lab answers in milliseconds or never

# Accepts forever; answers each connection with the peer address it saw (after all NAT), then closes.
SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(128)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall((peer[0] + "\\n").encode())
    c.close()
"""

CLIENT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print("ok", c.recv(64).decode().strip())
except socket.timeout:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("error", exc.errno)
"""


def unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab network needs root"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"`ip netns` is unavailable: {probe.stderr.decode().strip()}"
    return None


@dataclass(frozen=True)
class Seen:
    outcome: str  # ok, timeout, refused, error
    address: str | None = None


@dataclass
class Lab:
    """A built lab with servers in the echo pod (:8080) and on the EC2 host (:80)."""

    config: ExperimentConfig
    topology: Topology
    net: net.LabNet
    servers: list[subprocess.Popen[str]] = field(default_factory=list)

    def start_servers(self) -> None:
        echo = self.topology.vpc1.echo_pod
        assert echo is not None
        for ns, host, port in ((self.net.echo_ns, echo.ip, 8080), (self.net.ec2.ns, "0.0.0.0", 80)):
            server = net.spawn_in(ns, [sys.executable, "-c", SERVER, host, str(port)], stdout=subprocess.PIPE)
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            self.servers.append(server)

    def probe(self, vantage: Vantage, host: str, port: int) -> Seen:
        argv = [sys.executable, "-c", CLIENT, host, str(port), str(PROBE_TIMEOUT)]
        words = net.exec_in(self.net.vantage_ns(vantage), argv, timeout=PROBE_TIMEOUT + 10).stdout.split()
        return Seen(words[0], words[1] if len(words) > 1 else None) if words else Seen("error")

    def probe_all(self, cells: dict[str, tuple[Vantage, str, int]]) -> dict[str, Seen]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {key: pool.submit(self.probe, *cell) for key, cell in cells.items()}
        return {key: future.result() for key, future in futures.items()}

    def stop(self) -> None:
        for server in self.servers:
            server.terminate()
            server.wait(timeout=5)
        net.teardown(self.net.env_key)


def build_lab(config: ExperimentConfig, **kwargs: object) -> Lab:
    topology = topo.plan(config)
    key = f"lab:pytest-{uuid.uuid4().hex[:8]}:{config.region}"
    lab = Lab(config, topology, net.build(key, config, topology, **kwargs))  # type: ignore[arg-type]
    try:
        lab.start_servers()
    except BaseException:
        lab.stop()
        raise
    return lab


def config_with(**overrides: object) -> ExperimentConfig:
    return cfg.from_mapping(overrides)


# --- the cells this piece can check, and what the model says about them ------------------------------------


def cells(topology: Topology) -> dict[str, tuple[Vantage, str, int]]:
    """(vantage, host, port) per "vantage/target" key: the pod-IP and peer-host cells (no Services yet)."""
    echo = topology.vpc1.echo_pod
    assert echo is not None
    found: dict[str, tuple[Vantage, str, int]] = {
        f"{v}/pod-ip": (v, echo.ip, 8080) for v in ("vpc1-pod", "vpc2-pod", "vpc2-ec2", "outside")
    }
    found["vpc1-pod/peer-host"] = ("vpc1-pod", topology.peer_host.private_ip, 80)
    if topology.peer_host.public_ip:
        found["vpc1-pod/peer-host-public"] = ("vpc1-pod", topology.peer_host.public_ip, 80)
    return found


def expected(config: ExperimentConfig, topology: Topology, snat: PhaseSnat) -> dict[str, Expected]:
    phase = predict_phase(config, topology, "lab", snat)
    return {f"{c.vantage}/{c.target}": c.expected for c in phase.cells}


def role_of(address: str, vantage: Vantage, topology: Topology) -> Role:
    """design.md's order for non-Service targets: client-pod, client-node, client-host, nat-gateway, other."""
    side = topology.vpc1 if vantage == "vpc1-pod" else topology.vpc2
    if vantage in ("vpc1-pod", "vpc2-pod"):
        pod = side.busybox_pod
        assert pod is not None
        if address == pod.ip:
            return "client-pod"
        if address in side.node(pod.node).all_addresses():
            return "client-node"
    if vantage == "vpc2-ec2" and address in (topology.peer_host.private_ip, topology.peer_host.public_ip):
        return "client-host"
    if vantage != "outside" and address == side.nat_gateway:
        return "nat-gateway"
    return "other"


def disagreements(lab: Lab, snat: PhaseSnat, config: ExperimentConfig | None = None) -> dict[str, str]:
    """Probe every checkable cell and compare outcome and role with the model; empty when they agree."""
    config = config or lab.config
    want = expected(config, lab.topology, snat)
    seen = lab.probe_all(cells(lab.topology))
    found = {}
    for key, observed in seen.items():
        vantage = key.split("/")[0]
        role = role_of(observed.address, vantage, lab.topology) if observed.address else None  # type: ignore[arg-type]
        exp = want[key]
        if observed.outcome != exp.outcome or (exp.outcome == "ok" and role != exp.client_address_role):
            lab_side = f"lab {observed.outcome} {observed.address} ({role})"
            found[key] = f"{lab_side}; model {exp.outcome} {exp.client_address_role}"
    return found


def snat(vpc1: Snat | None = None, vpc2: Snat | None = None) -> PhaseSnat:
    return PhaseSnat(vpc1=vpc1 or Snat(), vpc2=vpc2 or Snat())
