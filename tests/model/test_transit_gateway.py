"""A transit gateway instead of a peering: another router on the path, the same sources and outcomes."""

from __future__ import annotations

from hypothesis import given

from peerprobe.config import ExperimentConfig, PhaseSnat, Snat
from peerprobe.model import places
from tests.model.helpers import cell, make_config, outcome_role, phase_cells
from tests.model.test_path import path_of
from tests.model.test_properties import FAST, configs, snats

TGW = {"peering": {"via": "transit-gateway"}}


def with_tgw(cfg: ExperimentConfig) -> ExperimentConfig:
    return cfg.model_copy(update={"peering": cfg.peering.model_copy(update={"via": "transit-gateway"})})


def test_the_ec2_host_reaches_the_pod_through_the_transit_gateway_with_its_own_address() -> None:
    """vpc2-ec2 -> pod-ip: TGW guide "How transit gateways work": a layer-3 router that sends packets to the
    next-hop attachment by destination (D); no source translation (I)."""
    found = cell(phase_cells(make_config(**TGW)), "vpc2-ec2", "pod-ip")
    assert outcome_role(found) == ("ok", "client-host")
    assert any("through the transit gateway" in reason for reason in found.explanation)


def test_the_path_passes_the_transit_gateway_route_table_and_rewrites_nothing_there() -> None:
    """The hop is named: the transit gateway, kept by its route table."""
    path = path_of("vpc2-ec2", "pod-ip", make_config(**TGW))
    hop = next(h for h in path.hops if h.at == places.TRANSIT_GATEWAY)
    assert hop.kept_by == ("transit gateway route table",) and not hop.rewrites
    assert places.PEERING not in [h.at for h in path.hops]


def test_an_unlinked_pair_of_vpcs_stops_at_the_transit_gateway() -> None:
    """peering.enabled: false turns the link off whatever carries it."""
    path = path_of("vpc2-pod", "pod-ip", make_config(peering={"enabled": False, "via": "transit-gateway"}))
    assert path.outcome == "timeout" and path.hops[-1].at == places.TRANSIT_GATEWAY


@FAST
@given(cfg=configs(), vpc1=snats, vpc2=snats)
def test_a_transit_gateway_changes_no_outcome_and_no_role(cfg: ExperimentConfig, vpc1: Snat, vpc2: Snat) -> None:
    """Every cell of every generated topology: the transit gateway routes by destination like the peering, and the
    rules peerprobe opens name CIDR blocks, not the peer's security groups (docs/model.md)."""
    snat = PhaseSnat(vpc1=vpc1, vpc2=vpc2)
    peered = [(c.expected.outcome, c.expected.client_address_role) for c in phase_cells(cfg, snat)]
    routed = [(c.expected.outcome, c.expected.client_address_role) for c in phase_cells(with_tgw(cfg), snat)]
    assert peered == routed
