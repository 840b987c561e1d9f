"""Benchmarks of issues 5 and 14 (root, the lab): Prefect's overhead per task, the whole lab experiment against
3 x probe timeout + 8 s, the warm run with a 1 s probe timeout (<= 9 s) and where its time goes (each task
run's start and length), and the overlap of independent steps under an AWS-like latency profile.
Run with the local Prefect server and moto warm: `make bench-flow`. Prints medians and ratios."""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("PEERPROBE_STATE_DIR", "/tmp/peerprobe-bench")

from peerprobe import config, logs, server
from peerprobe.backends.lab import moto_service

PROFILE = {"cluster": 7.0, "nodegroup": 2.0, "load_balancer": 2.0, "ec2": 0.3}
CRITICAL_DELAYS = PROFILE["cluster"] + PROFILE["nodegroup"] + PROFILE["load_balancer"]  # both clusters overlap
TASKS = 60
WARM_RUN_TARGET = 9.0  # issue 14: the warm lab run with a 1 s probe timeout


def connect() -> None:
    logs.configure(0, through_stdlib=True)
    os.environ.update(server.ensure_running().client_env())  # its URL and auth string
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    moto_service.ensure_running()


def task_overhead() -> tuple[float, float]:
    """Prefect's cost per task run, timed inside the flow (TASKS trivial task calls minus the same calls
    without Prefect), and its fixed cost per flow run (an empty flow, from call to return: creating the run,
    its states, and the heartbeat thread it joins at the end). Medians of 5 rounds."""
    from prefect import flow, task

    def plain(value: int) -> int:
        return value

    noop = task(persist_result=False)(plain)

    @flow(persist_result=False)
    def many() -> float:
        started = time.perf_counter()
        for i in range(TASKS):
            noop(i)
        prefect_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for i in range(TASKS):
            plain(i)
        return (prefect_seconds - (time.perf_counter() - started)) / TASKS

    @flow(persist_result=False)
    def empty() -> None:
        return None

    many()  # warm: registration of the flow and task
    per_task, per_flow = [], []
    for _ in range(5):
        per_task.append(many())
        started = time.perf_counter()
        empty()
        per_flow.append(time.perf_counter() - started)
    return statistics.median(per_task), statistics.median(per_flow)


def experiment_seconds(name: str, *, probe_timeout: float | None = None) -> float:
    return _experiment(name, probe_timeout=probe_timeout)[0]


def _experiment(name: str, *, probe_timeout: float | None = None) -> tuple[float, object]:
    """One whole lab run (setup, every phase, cleanup); its wall time and its flow run's final state."""
    from flows.experiment import experiment
    from peerprobe.params import RunParameters

    mapping: dict[str, object] = {
        "name": name,
        "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}},
    }
    if probe_timeout is not None:
        mapping["probe"] = {"timeout_seconds": probe_timeout}
    started = time.perf_counter()
    state = experiment(
        parameters=RunParameters(config=config.from_mapping(mapping), cleanup_on_failure=True), return_state=True
    )
    elapsed = time.perf_counter() - started
    report = state.result()
    print(f"  {name}: {report.summary.cells} cells, {report.summary.drift} drift, {elapsed:.2f} s")
    return elapsed, state


def warm_run(rounds: int = 5) -> None:
    """Issue 14's figure: the median of warm runs with a 1 s probe timeout, and the task runs of the median
    one, each with its start (from the flow run's start) and length, so it shows where the time goes."""
    runs = sorted((_experiment(f"benchfast{i}", probe_timeout=1.0) for i in range(rounds)), key=lambda r: r[0])
    elapsed, state = runs[len(runs) // 2]
    verdict = "ok" if elapsed <= WARM_RUN_TARGET else "OVER"
    target = f"target {WARM_RUN_TARGET:.0f} s"
    print(f"warm lab run, 1 s probe timeout: median {elapsed:.2f} s of {rounds} ({target}) {verdict}")
    _where_time_goes(state.state_details.flow_run_id)  # type: ignore[attr-defined]


def _where_time_goes(flow_run_id: object) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))  # type: ignore[list-item]
    began = flow_run.start_time
    print(f"  flow run {flow_run.total_run_time.total_seconds():.2f} s inside Prefect; task runs by start:")
    for task in sorted((t for t in tasks if t.start_time), key=lambda t: t.start_time):
        offset = (task.start_time - began).total_seconds()
        print(f"    {offset:6.2f} s  {task.total_run_time.total_seconds():5.2f} s  {task.name}")


def main() -> None:
    connect()
    # Prefect's own cost per task, measured first in a fresh process: trivial tasks, nothing else running.
    overhead, per_flow = task_overhead()
    print(f"prefect overhead per task: {overhead * 1000:.1f} ms (target 25 ms); per flow run: {per_flow:.2f} s")
    experiment_seconds("benchwarm")  # warm: the server's first runs of the flow, moto's first calls per region
    timeout = config.load().probe.timeout_seconds
    plain = statistics.median(experiment_seconds(f"bench{i}") for i in range(5))
    print(f"lab experiment, 3 phases: median {plain:.2f} s (target 3 x {timeout:.0f} + 8 = {3 * timeout + 8:.0f} s)")
    warm_run()
    os.environ["PEERPROBE_LAB_LATENCY"] = ",".join(f"{k}={v}" for k, v in PROFILE.items())
    slow = experiment_seconds("benchlat")
    critical = CRITICAL_DELAYS + plain
    serial = 2 * (PROFILE["cluster"] + PROFILE["nodegroup"]) + PROFILE["ec2"] + PROFILE["load_balancer"] + plain
    print(
        f"with AWS-like latency {PROFILE}: {slow:.2f} s; critical path {critical:.2f} s; "
        f"ratio {slow / critical:.3f} (target 1.15; serial would be {serial:.2f} s)"
    )


if __name__ == "__main__":
    main()
