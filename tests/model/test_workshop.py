"""The workshop's stated results: attached to default-SNAT cells, and judged as behaviour.md section 8 says."""

from __future__ import annotations

from peerprobe.config import ExperimentConfig
from tests.model.helpers import cell, phase_cells, snat

WRONG = {
    ("vpc1-pod", "headless"),
    ("vpc2-ec2", "load-balancer"),
    ("vpc2-ec2", "internal-nlb"),
    ("vpc2-pod", "load-balancer"),
    ("vpc2-pod", "internal-nlb"),
}


def test_the_claims_that_do_not_hold_are_section_8s(workshop: ExperimentConfig) -> None:
    cells = phase_cells(workshop)
    wrong = {(c.vantage, c.target) for c in cells if c.workshop and not c.workshop.agrees}
    assert wrong == WRONG


def test_vpc2_pod_to_pod_ip_claim_holds_by_default(workshop: ExperimentConfig) -> None:
    claim = cell(phase_cells(workshop), "vpc2-pod", "pod-ip").workshop
    assert claim is not None and claim.agrees and claim.ref == "12.3.3"


def test_claims_are_not_attached_to_toggled_phases(workshop: ExperimentConfig) -> None:
    cells = phase_cells(workshop, snat("X", "vpc1", "vpc2"))
    assert cells and all(c.workshop is None for c in cells)


def test_claim_would_hold_under_local_policy() -> None:
    from tests.model.helpers import make_config

    cells = phase_cells(make_config(services={"external_traffic_policy": "Local"}))
    claim = cell(cells, "vpc2-pod", "internal-nlb").workshop
    assert claim is not None and claim.agrees
