"""Benchmark: `predict` for a 100-node VPC1 (issue 2 target: well under 1 s). Prints medians of repeated runs."""

from __future__ import annotations

import statistics
import time

from peerprobe import config
from peerprobe.run import predicted_report

RUNS = 7


def timed(nodes: int) -> float:
    cfg = config.from_mapping({"clusters": {"vpc1": {"nodes": nodes}}})
    start = time.perf_counter()
    report = predicted_report(cfg)
    elapsed = time.perf_counter() - start
    assert report.summary.cells > nodes * 3
    return elapsed


def main() -> None:
    timed(3)  # warm imports and pydantic's validators
    for nodes in (3, 30, 100):
        samples = [timed(nodes) for _ in range(RUNS)]
        cells = predicted_report(config.from_mapping({"clusters": {"vpc1": {"nodes": nodes}}})).summary.cells
        print(
            f"predict nodes={nodes:<3} cells={cells:<5} median={statistics.median(samples) * 1000:.1f} ms "
            f"min={min(samples) * 1000:.1f} ms max={max(samples) * 1000:.1f} ms (n={RUNS})"
        )


if __name__ == "__main__":
    main()
