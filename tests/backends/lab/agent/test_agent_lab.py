"""The agent in real namespaces: serve in one, probe from the other, over a veth pair of their own.

Everything stays inside two throwaway namespaces (10.250.x.x/30); the host's namespace is never touched.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from peerprobe.backends.lab.agent import spec
from peerprobe.backends.lab.agent.client import run_batch, run_batches
from peerprobe.backends.lab.agent.process import is_agent, reload_agent, start_agent, stop_agent
from peerprobe.errors import InfrastructureError
from peerprobe.probes import batch
from peerprobe.probes.plan import ProbeSpec

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces and a veth pair"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2's `ip`"),
]

TIMEOUT = 1.0  # the answers expected to come must come within it on a loaded 2-core CI machine


@dataclass(frozen=True)
class Pair:
    a: str  # namespace of the servers
    b: str  # namespace of the client
    ip_a: str
    ip_b: str
    silent: str  # on b's link, but no one answers ARP for it: packets vanish, as in a VPC
    unrouted: str  # b has no route at all to it


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest) -> Pair:
    tag = secrets.token_hex(3)
    octet = 1 + secrets.randbelow(250)
    a, b = f"pp-test-{tag}-a", f"pp-test-{tag}-b"

    def remove() -> None:
        for name in (a, b):  # deleting a namespace also deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    request.addfinalizer(remove)  # registered before anything exists, so a half-built pair goes too
    _ip("netns", "add", a)
    _ip("netns", "add", b)
    # Created directly inside the namespaces: neither end ever exists in the host's namespace.
    _ip("link", "add", f"pp{tag}a", "netns", a, "type", "veth", "peer", "name", f"pp{tag}b", "netns", b)
    pair = Pair(a, b, f"10.250.{octet}.1", f"10.250.{octet}.2", f"10.250.{(octet + 1) % 256}.9", "10.251.0.1")
    for ns, dev, ip in ((a, f"pp{tag}a", pair.ip_a), (b, f"pp{tag}b", pair.ip_b)):
        _ip("-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
        _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", b, "route", "add", f"10.250.{(octet + 1) % 256}.0/24", "dev", f"pp{tag}b")
    return pair


@pytest.fixture(scope="module")
def agent(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("agent")
    spec_path = directory / "agent.json"
    spec.write(
        spec_path,
        [
            spec.Listener(netns=pair.a, ip=pair.ip_a, port=8080, kind="echo", name="echo-pod"),
            spec.Listener(netns=pair.a, port=80, kind="nginx", name="nginx"),
            spec.Listener(netns=pair.b, port=80, kind="echo", name="peer-host"),
        ],
    )
    pid = start_agent(spec_path, log_path=directory / "agent.log", ready_timeout=10)
    yield pid
    stop_agent(pid, timeout=5)


def _spec(target: str, host: str, port: int, vantage: str = "vpc2-pod") -> ProbeSpec:
    return ProbeSpec(vantage, target, host, port)  # type: ignore[arg-type]


def test_echo_reports_the_client_host_and_request_uri(pair: Pair, agent: int) -> None:
    [result] = run_batch(pair.b, [_spec("pod-ip", pair.ip_a, 8080)], timeout_seconds=TIMEOUT, resolver={})
    assert result.outcome == "ok", result.detail
    assert result.client_address == pair.ip_b
    assert result.host == f"{pair.ip_a}:8080"
    assert result.request_uri == f"http://{pair.ip_a}:8080/"
    assert result.resolved is None


def test_port_80_omits_the_port_from_host(pair: Pair, agent: int) -> None:
    [result] = run_batch(pair.a, [_spec("peer-host", pair.ip_b, 80, "vpc1-pod")], timeout_seconds=TIMEOUT, resolver={})
    assert (result.outcome, result.client_address) == ("ok", pair.ip_a)
    assert result.host == pair.ip_b
    assert result.request_uri == f"http://{pair.ip_b}:80/"


def test_nginx_is_reachable_but_not_an_echo(pair: Pair, agent: int) -> None:
    [result] = run_batch(pair.b, [_spec("nginx-nlb", pair.ip_a, 80, "outside")], timeout_seconds=TIMEOUT, resolver={})
    assert (result.outcome, result.http_status, result.client_address) == ("ok", 200, None)


def test_names_resolve_through_the_resolver(pair: Pair, agent: int) -> None:
    specs = [_spec("headless", "echo.lab.local", 8080), _spec("headless", "missing.lab.local", 8080)]
    found, missing = run_batch(pair.b, specs, timeout_seconds=TIMEOUT, resolver={"echo.lab.local": [pair.ip_a]})
    assert (found.outcome, found.resolved) == ("ok", (pair.ip_a,))
    assert found.host == "echo.lab.local:8080"
    assert found.request_uri == "http://echo.lab.local:8080/"
    assert (missing.outcome, missing.resolved, missing.client_address) == ("dns-error", None, None)


def test_closed_port_is_refused(pair: Pair, agent: int) -> None:
    [result] = run_batch(pair.b, [_spec("cluster-ip", pair.ip_a, 9)], timeout_seconds=TIMEOUT, resolver={})
    assert result.outcome == "refused"
    assert result.detail is not None and "ECONNREFUSED" in result.detail


def test_silent_drop_times_out_within_the_timeout(pair: Pair, agent: int) -> None:
    started = time.monotonic()
    [result] = run_batch(pair.b, [_spec("pod-ip", pair.silent, 8080)], timeout_seconds=TIMEOUT, resolver={})
    elapsed = time.monotonic() - started
    assert result.outcome == "timeout"
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.0  # at the timeout, plus the batch's own start-up


def test_unrouted_address_counts_as_timeout(pair: Pair, agent: int) -> None:
    [result] = run_batch(pair.b, [_spec("pod-ip", pair.unrouted, 8080)], timeout_seconds=TIMEOUT, resolver={})
    assert result.outcome == "timeout"
    assert result.elapsed_seconds < TIMEOUT
    assert result.detail is not None and "ENETUNREACH" in result.detail


def _twenty(pair: Pair, vantage: str = "vpc2-pod") -> list[ProbeSpec]:
    kinds = [
        _spec("pod-ip", pair.ip_a, 8080, vantage),
        _spec("cluster-ip", pair.ip_a, 9, vantage),
        _spec("load-balancer", pair.silent, 80, vantage),
        _spec("headless", "missing.lab.local", 8080, vantage),
    ]
    return kinds * 5


def test_twenty_probes_take_one_timeout(pair: Pair, agent: int) -> None:
    started = time.monotonic()
    results = run_batch(pair.b, _twenty(pair), timeout_seconds=TIMEOUT, resolver={})
    elapsed = time.monotonic() - started
    assert [r.outcome for r in results] == ["ok", "refused", "timeout", "dns-error"] * 5
    assert len({r.client_address for r in results if r.outcome == "ok"}) == 1
    assert elapsed < TIMEOUT + 1.0, f"20 probes took {elapsed:.3f}s"  # one after another: 5 timeouts at least


def test_all_vantages_at_once_take_one_timeout(pair: Pair, agent: int) -> None:
    started = time.monotonic()
    results = run_batches(
        {pair.a: _twenty(pair, "vpc1-pod"), pair.b: _twenty(pair)},
        timeout_seconds=TIMEOUT,
        resolver={},
        resolvers={pair.b: {"missing.lab.local": [pair.ip_a]}},
    )
    elapsed = time.monotonic() - started
    assert elapsed < 1.9 * TIMEOUT, f"40 probes from 2 vantages took {elapsed:.3f}s"  # one vantage after another: 2
    # From a, the echo server is local and sees a's own address; b's view resolves the name a lacks.
    assert results[pair.a][0].client_address == pair.ip_a
    assert results[pair.a][3].outcome == "dns-error"
    assert (results[pair.b][3].outcome, results[pair.b][3].client_address) == ("ok", pair.ip_b)


def test_probe_command_reads_a_batch_on_stdin(pair: Pair, agent: int) -> None:
    document = batch.dump_batch(
        [_spec("headless", "echo.lab.local", 8080)], timeout_seconds=TIMEOUT, hosts={"echo.lab.local": [pair.ip_a]}
    )
    completed = subprocess.run(
        [sys.executable, "-m", "peerprobe.backends.lab.agent", "probe", "--netns", pair.b, "--batch", "-"],
        input=document,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    [result] = batch.load_results(completed.stdout)
    assert (result.outcome, result.client_address) == ("ok", pair.ip_b)


def test_missing_vantage_is_an_infrastructure_error(pair: Pair) -> None:
    with pytest.raises(InfrastructureError, match="pp-test-absent"):
        run_batch("pp-test-absent", [_spec("pod-ip", pair.ip_a, 8080)], timeout_seconds=TIMEOUT, resolver={})


def test_agent_stops_on_sigterm(pair: Pair, tmp_path: Path) -> None:
    spec_path, log_path = tmp_path / "agent.json", tmp_path / "agent.log"
    spec.write(spec_path, [spec.Listener(netns=pair.a, ip=pair.ip_a, port=8090)])
    pid = start_agent(spec_path, log_path=log_path, ready_timeout=10, pid_path=tmp_path / "agent.pid")
    assert (tmp_path / "agent.pid").read_text().strip() == str(pid)
    probe = [_spec("pod-ip", pair.ip_a, 8090)]
    assert run_batch(pair.b, probe, timeout_seconds=TIMEOUT, resolver={})[0].outcome == "ok"

    assert stop_agent(pid, timeout=5) is True
    assert not is_agent(pid)
    assert run_batch(pair.b, probe, timeout_seconds=TIMEOUT, resolver={})[0].outcome == "refused"
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines()]
    assert events[-1] == "agent.stopped"  # it shut down itself: no SIGKILL was needed
    assert stop_agent(pid, timeout=1) is False


@pytest.mark.parametrize("where", ["missing-namespace", "taken-port"])
def test_agent_that_cannot_listen_fails_fast(pair: Pair, agent: int, tmp_path: Path, where: str) -> None:
    netns, port = ("pp-test-absent", 8080) if where == "missing-namespace" else (pair.a, 80)
    spec_path = tmp_path / "agent.json"
    spec.write(spec_path, [spec.Listener(netns=netns, port=port)])
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match=netns):
        start_agent(spec_path, log_path=tmp_path / "agent.log", ready_timeout=10)
    assert time.monotonic() - started < 5


@pytest.fixture
def lone_agent(pair: Pair, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An agent of its own serving 8091 in a (the module's agent must keep its listeners)."""
    spec_path = tmp_path / "agent.json"
    spec.write(spec_path, [spec.Listener(netns=pair.a, ip=pair.ip_a, port=8091)])
    pid = start_agent(spec_path, log_path=tmp_path / "agent.log", ready_timeout=10)
    yield pid, spec_path
    stop_agent(pid, timeout=5)


def _outcome(pair: Pair, port: int) -> str:
    return run_batch(pair.b, [_spec("pod-ip", pair.ip_a, port)], timeout_seconds=TIMEOUT, resolver={})[0].outcome


def test_a_reload_opens_new_listeners_and_closes_dropped_ones_in_the_same_process(
    pair: Pair, lone_agent: tuple[int, Path]
) -> None:
    pid, spec_path = lone_agent
    spec.write(spec_path, [spec.Listener(netns=pair.a, ip=pair.ip_a, port=8092)])
    reload_agent(pid, spec_path, timeout=10)
    assert is_agent(pid)
    assert (_outcome(pair, 8092), _outcome(pair, 8091)) == ("ok", "refused")


def test_a_reload_that_cannot_bind_names_the_listener_and_keeps_serving_the_rest(
    pair: Pair, agent: int, lone_agent: tuple[int, Path]
) -> None:
    pid, spec_path = lone_agent
    taken = spec.Listener(netns=pair.a, port=80, name="taken by the module's nginx")
    spec.write(spec_path, [spec.Listener(netns=pair.a, ip=pair.ip_a, port=8091), taken])
    with pytest.raises(InfrastructureError, match="taken by the module's nginx"):
        reload_agent(pid, spec_path, timeout=10)
    assert is_agent(pid) and _outcome(pair, 8091) == "ok"


def test_reloading_an_agent_that_is_gone_is_an_error_naming_it(tmp_path: Path) -> None:
    spec_path = tmp_path / "agent.json"
    spec.write(spec_path, [])
    with pytest.raises(InfrastructureError, match="not running"):
        reload_agent(_exited_pid(), spec_path, timeout=1)


def _exited_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
