"""Lab timings for the workshop topology (issue 4): `up` with moto warm (<= 3 s), `down` (<= 1.5 s), and one
phase of probes over every cell (<= 1.5 x the probe timeout); and the kernel side alone (namespaces, links,
routes, iptables) for 3 and 30 VPC1 nodes, for scale. Medians of N rounds; needs root.

    .venv/bin/python bench/lab.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time

import structlog

from peerprobe import config
from peerprobe import topology as topo
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import moto_service, net
from peerprobe.probes.plan import plan

LIMITS = {"up": 3.0, "down": 1.5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    os.environ.setdefault("PEERPROBE_STATE_DIR", tempfile.mkdtemp(prefix="peerprobe-bench-"))
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    moto_service.ensure_running()
    try:
        timings = [_round(config.from_mapping({"name": "bench"})) for _ in range(args.rounds)]
    finally:
        moto_service.stop()
    for nodes in (3, 30):
        kernel = statistics.median(_kernel_build(nodes) for _ in range(args.rounds))
        print(f"kernel side of the lab, {nodes:2} VPC1 nodes: median {kernel:6.3f} s")
    return _report(timings, config.load().probe.timeout_seconds)


def _kernel_build(nodes: int) -> float:
    """The namespaces and their networking alone, from the address plan (no moto): how the lab scales."""
    cfg = config.from_mapping({"name": "bench-kernel", "clusters": {"vpc1": {"nodes": nodes}}})
    key = f"lab:bench-kernel-{nodes}:{cfg.region}"
    started = time.perf_counter()
    net.build(key, cfg, topo.plan(cfg))
    built = time.perf_counter() - started
    net.teardown(key)
    return built


def _round(cfg: config.ExperimentConfig) -> dict[str, float]:
    started = time.perf_counter()
    state = lab.up(cfg)
    up = time.perf_counter() - started
    try:
        specs = plan(state.topology)
        started = time.perf_counter()
        lab.probe(state, specs, timeout_seconds=cfg.probe.timeout_seconds)
        probe = time.perf_counter() - started
    finally:
        started = time.perf_counter()
        lab.down(cfg)
        down = time.perf_counter() - started
    return {"up": up, "probe": probe, "down": down, "cells": float(len(specs))}


def _report(timings: list[dict[str, float]], timeout: float) -> int:
    limits = {**LIMITS, "probe": 1.5 * timeout}
    failed = False
    for key in ("up", "probe", "down"):
        median = statistics.median(t[key] for t in timings)
        ok = median <= limits[key]
        failed |= not ok
        print(
            f"{key:6} median {median:6.3f} s  (limit {limits[key]:.2f} s, {len(timings)} rounds)  "
            f"{'ok' if ok else 'OVER'}"
        )
    print(f"cells per phase: {int(timings[0]['cells'])}, probe timeout {timeout:g} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
