"""Benchmark of issue 6 (root, the lab): a drift check of a running lab from a fresh command (`peerprobe
drift`, a new process each time) with the local Prefect server and moto warm, against probe timeout + 6 s.
Prints each run and the median. `make`-free: .venv/bin/python bench/drift.py"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PEERPROBE_STATE_DIR", "/tmp/peerprobe-bench")

import yaml

from peerprobe import config, logs, server
from peerprobe.backends.lab import environment, moto_service

NAME = "benchdrift"
RUNS = 5


def main() -> None:
    logs.configure(0)
    api = server.ensure_running()  # warm: the local server, as `peerprobe run` leaves it
    moto_service.ensure_running()
    data = {"name": NAME, "clusters": {"vpc1": {"name": f"{NAME}-one"}, "vpc2": {"name": f"{NAME}-two"}}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(data))
        cfg = config.load(path)
        timeout = cfg.probe.timeout_seconds
        with environment.running(cfg):
            env = {**os.environ, "PREFECT_API_URL": api.api_url}
            command = [str(Path(sys.executable).with_name("peerprobe")), "drift", "--config", str(path)]
            subprocess.run(command, env=env, capture_output=True, check=False)  # warm: flow and task registration
            samples = []
            for _ in range(RUNS):
                started = time.perf_counter()
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                samples.append(time.perf_counter() - started)
                print(f"  peerprobe drift: exit {done.returncode}, {samples[-1]:.2f} s")
    median = statistics.median(samples)
    print(
        f"drift check from a fresh command: median {median:.2f} s (target probe timeout {timeout:.0f} + 6 = "
        f"{timeout + 6:.0f} s)"
    )


if __name__ == "__main__":
    main()
