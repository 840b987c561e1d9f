"""Benchmark of issue 18 (root, the lab): N lab environments on a process work pool, all their drift checks due
at once, run by one `prefect worker --limit K`, for each K: checks per hour, the time a check waits in the queue
(due -> running), a check's own time, and the worker's CPU and memory (its process tree: the flow runs it starts).
`.venv/bin/python bench/fleet.py [N] [K,K,...]`; the machine's cores are shared, so note the load beside it."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PEERPROBE_STATE_DIR", "/tmp/peerprobe-bench-fleet")

from peerprobe import config, fleet, logs, server
from peerprobe.backends.lab import environment, moto_service

PREFIX = "benchfleet"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def fleet_config(index: int) -> config.ExperimentConfig:
    name = f"{PREFIX}{index}"
    return config.from_mapping(
        {
            "name": name,
            "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}},
            "probe": {"timeout_seconds": 2},
            "phases": [{"name": "baseline"}],
        }
    )


def tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """The worker's CPU time with that of its reaped children (the flow runs that ended) and its live ones."""
    total = 0.0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15]) / TICKS  # utime stime cutime cstime
    return total


def rss_mib(pid: int) -> float:
    total = 0
    for member in tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total / 2**20


def measure(pool: str, members: list[fleet.Member], limit: int, env: dict[str, str]) -> dict[str, Any]:
    from prefect import get_client

    from flows import fleet as fleet_flows

    fleet_flows.add(pool, members)
    command = [server.prefect_executable(), "worker", "start", "--pool", pool, "--limit", str(limit)]
    worker_env = env | {"PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "0"}
    log = open(Path(os.environ["PEERPROBE_STATE_DIR"]) / f"bench-worker-{pool}.log", "ab")  # noqa: SIM115
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=worker_env, start_new_session=True)
    try:
        time.sleep(5)  # the worker is up and polling before the checks fall due
        cpu_before = cpu_seconds(worker.pid)
        with get_client(sync_client=True) as client:
            ids = [
                client.create_flow_run_from_deployment(
                    client.read_deployment_by_name(f"{fleet.FLOW_NAME}/{member.name}").id
                ).id
                for member in members
            ]
        started = time.monotonic()
        peak = 0.0
        while True:
            peak = max(peak, rss_mib(worker.pid))
            with get_client(sync_client=True) as client:
                runs = [client.read_flow_run(run_id) for run_id in ids]
            if all(run.state is not None and run.state.is_final() for run in runs):
                break
            time.sleep(0.5)
        makespan = time.monotonic() - started
        cpu = cpu_seconds(worker.pid) - cpu_before
    finally:
        os.killpg(worker.pid, 15)
        worker.wait(30)
        log.close()
    waits = [(run.start_time - run.expected_start_time).total_seconds() for run in runs if run.start_time]
    durations = [run.total_run_time.total_seconds() for run in runs]
    return {
        "K": limit,
        "states": sorted({str(run.state_name) for run in runs}),
        "makespan": makespan,
        "per_hour": len(runs) / makespan * 3600,
        "wait_median": statistics.median(waits),
        "wait_max": max(waits),
        "check_median": statistics.median(durations),
        "cpu_per_check": cpu / len(runs),
        "cpu_share": cpu / makespan,
        "rss_peak": peak,
    }


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    limits = [int(k) for k in (sys.argv[2] if len(sys.argv) > 2 else "1,2,4").split(",")]
    logs.configure(0)
    api = server.ensure_running()
    moto_service.ensure_running()
    env = {**os.environ, **api.client_env()}
    os.environ.update(api.client_env())
    configs = [fleet_config(index) for index in range(count)]
    members = [fleet.Member(backend="lab", config=c) for c in configs]
    began = time.monotonic()
    for c in configs:
        environment.up(c)
    print(f"{count} lab environments up in {time.monotonic() - began:.1f} s; load {os.getloadavg()[0]:.2f}")
    try:
        for limit in limits:
            figures = measure(f"bench-fleet-k{limit}", members, limit, env)
            print(
                f"N={count} K={limit}: {figures['states']} in {figures['makespan']:.1f} s = "
                f"{figures['per_hour']:.0f} checks/h; queue wait median {figures['wait_median']:.1f} s "
                f"(max {figures['wait_max']:.1f}); a check {figures['check_median']:.1f} s; worker CPU "
                f"{figures['cpu_per_check']:.2f} s/check ({figures['cpu_share']:.2f} cores), peak RSS "
                f"{figures['rss_peak']:.0f} MiB; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        for c in configs:
            environment.down(c)


if __name__ == "__main__":
    main()
