"""Invariants of the model over generated topologies with the features beyond the workshop (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from peerprobe import config, topology
from peerprobe.config import ExperimentConfig, PhaseSnat, Snat
from peerprobe.model.facts import Facts
from peerprobe.model.path import cell_path
from peerprobe.probes.plan import plan
from peerprobe.probes.roles import classify
from tests.model.helpers import phase_cells
from tests.model.test_properties import FAST, configs, snats

SECONDARY = {"vpc1": "100.64.0.0/16", "vpc2": "100.65.0.0/16"}


@st.composite
def beyond(draw: st.DrawFn) -> ExperimentConfig:
    data: dict[str, Any] = draw(configs()).model_dump(mode="python")
    for key, cidr in SECONDARY.items():
        if draw(st.booleans()):
            data["vpcs"][key]["secondary_cidrs"] = [cidr]
            data["clusters"][key]["custom_networking"] = {"enabled": draw(st.booleans()), "cidr": cidr}
        cluster = data["clusters"][key]
        if draw(st.booleans()) and config.version_tuple(cluster["cni_version"]) >= config.ENFORCING_MODE_SINCE:
            cluster["pod_security_groups"] = {
                "mode": draw(st.sampled_from(["strict", "standard"])),
                "pods": draw(st.sampled_from([["echo"], ["busybox"], ["echo", "busybox"]])),
                "open_from_peer": draw(st.booleans()),
                "include_cluster_sg": draw(st.booleans()),
            }
    data["peering"]["via"] = draw(st.sampled_from(["peering", "transit-gateway"]))
    data["peering"]["route_cidrs"] = draw(st.sampled_from(["all", "primary"]))
    return config.from_mapping(data)


@FAST
@given(cfg=beyond(), vpc1=snats, vpc2=snats)
def test_every_path_ends_as_its_cell_with_the_role_its_addresses_have(
    cfg: ExperimentConfig, vpc1: Snat, vpc2: Snat
) -> None:
    """The hop-by-hop path agrees with the cell, and the final source classifies (by address alone) as the role."""
    snat = PhaseSnat(vpc1=vpc1, vpc2=vpc2)
    planned = topology.plan(cfg)
    facts = Facts(config=cfg, topology=planned, snat=snat)
    specs = {(s.vantage, s.target, s.target_node): s for s in plan(planned)}
    for cell in phase_cells(cfg, snat):
        path = cell_path(specs[(cell.vantage, cell.target, cell.target_node)], facts)
        assert path.outcome == cell.expected.outcome and cell.explanation
        assert all(r.by and r.by != "the model" for r in path.rewrites())
        role = cell.expected.client_address_role
        if cell.expected.outcome != "ok":
            assert role is None
        elif role is not None:
            seen = classify(
                path.hops[-1].src,
                vantage=cell.vantage,
                target=cell.target,
                target_node=cell.target_node,
                topology=planned,
            )
            assert seen == role, (cell.vantage, cell.target)
