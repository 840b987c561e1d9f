"""The expected-behaviour model: pure functions from topology facts to an expected cell and its explanation.

No I/O and no cloud SDKs here (a test asserts it): it is the oracle that lab, AWS and drift runs are compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.model.expect import expect
from peerprobe.model.facts import Facts, lb_source_ranges
from peerprobe.model.workshop import workshop_claim
from peerprobe.probes.plan import ProbeSpec, plan
from peerprobe.topology import Topology
from peerprobe.vocabulary import Cell

__all__ = ["Facts", "PhasePrediction", "expect", "lb_source_ranges", "predict", "predict_cell", "predict_phase"]


@dataclass(frozen=True)
class PhasePrediction:
    name: str
    snat: PhaseSnat
    cells: list[Cell]


def predict_cell(spec: ProbeSpec, facts: Facts) -> Cell:
    expected, why = expect(spec, facts)
    return Cell(
        vantage=spec.vantage,
        target=spec.target,
        target_node=spec.target_node,
        address=spec.address,
        expected=expected,
        explanation=why,
        workshop=workshop_claim(spec.vantage, spec.target, facts.snat, expected),
    )


def predict_phase(config: ExperimentConfig, topology: Topology, name: str, snat: PhaseSnat) -> PhasePrediction:
    facts = Facts(config=config, topology=topology, snat=snat)
    return PhasePrediction(name=name, snat=snat, cells=[predict_cell(spec, facts) for spec in plan(topology)])


def predict(config: ExperimentConfig, topology: Topology) -> list[PhasePrediction]:
    """Every phase of the config, every cell of the topology."""
    return [predict_phase(config, topology, phase.name, phase.snat) for phase in config.phases]
