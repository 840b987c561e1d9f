"""The whole fault campaign (issue 13): every fault at every step of a lab run, each recovered by the next
`peerprobe run` (or `cleanup`), printed as a table of faults x steps (survived or not). Needs root.

    .venv/bin/python bench/faults.py [--recovery run|cleanup] [--kinds sigint,...] [--steps probe,...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' campaign helpers

from tests.fault_campaign import KINDS, RECOVERIES, STEPS, Outcome, run_cell


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recovery", choices=RECOVERIES, default="run")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--steps", default=",".join(STEPS))
    args = parser.parse_args()
    kinds, steps = args.kinds.split(","), args.steps.split(",")
    outcomes: dict[tuple[str, str], Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="peerprobe-faults-") as root:
        for kind in kinds:
            for step in steps:
                # Each cell its own state directory, moto and Prefect server: a killed service is the cell's own.
                outcome = run_cell(kind, step, args.recovery, Path(root) / f"{kind}-{step}", None)
                outcomes[kind, step] = outcome
                mark = "survived" if outcome.survived else "FAILED"
                print(f"{kind:>13} @ {step:<16} {mark} ({outcome.seconds:.0f} s)", file=sys.stderr, flush=True)
                if not outcome.survived:
                    print(f"    {outcome.describe()}", file=sys.stderr, flush=True)
    print(table(kinds, steps, outcomes, args.recovery))
    return 0 if all(o.survived for o in outcomes.values()) else 1


def table(kinds: list[str], steps: list[str], outcomes: dict[tuple[str, str], Outcome], recovery: str) -> str:
    width = max(len(s) for s in steps)
    lines = [f"recovered by `peerprobe {recovery}`", " " * (width + 2) + "".join(f"{k:>14}" for k in kinds)]
    for step in steps:
        cells = "".join(f"{'survived' if outcomes[k, step].survived else 'NOT':>14}" for k in kinds)
        lines.append(f"{step:<{width}}  {cells}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
