"""Invariants of the model over generated configs (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerprobe import config
from peerprobe.config import PhaseSnat, Snat
from peerprobe.vocabulary import Cell
from tests.model.helpers import phase_cells

VERSIONS = ["1.5.5", "1.7.10", "1.8.0", "1.20.4"]


@st.composite
def configs(draw: st.DrawFn, *, min_cni: str | None = None) -> config.ExperimentConfig:
    versions = [v for v in VERSIONS if min_cni is None or config.version_tuple(v) >= config.version_tuple(min_cni)]

    def cluster() -> dict[str, Any]:
        return {
            "nodes": draw(st.integers(1, 5)),
            "cni_version": draw(st.sampled_from(versions)),
            "pod_eni": draw(st.sampled_from(["primary", "secondary"])),
            "node_subnets": draw(st.sampled_from(["private", "public"])),
        }

    data = {
        "vpcs": {"vpc1": {"nat_gateway": draw(st.booleans())}, "vpc2": {"nat_gateway": draw(st.booleans())}},
        "clusters": {"vpc1": cluster(), "vpc2": cluster()},
        "peering": {"enabled": draw(st.booleans())},
        "security_groups": {"open_from_peer": draw(st.lists(st.sampled_from([8080, "nodeport"]), unique=True))},
        "peer_host": {"public_ip": draw(st.booleans()), "admit_vpc1": draw(st.booleans())},
        "services": {
            "external_traffic_policy": draw(st.sampled_from(["Cluster", "Local"])),
            "load_balancer": {"scheme": draw(st.sampled_from(["internet-facing", "internal"]))},
            "internal_nlb": {
                "target_type": draw(st.sampled_from(["instance", "ip"])),
                "preserve_client_ip": draw(st.booleans()),
            },
        },
    }
    return config.from_mapping(data)


snats = st.builds(
    Snat,
    external_snat=st.booleans(),
    exclude_snat_cidrs=st.lists(st.sampled_from(["192.168.0.0/16", "172.16.0.0/16", "10.0.0.0/8"]), unique=True),
)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def key(cell: Cell) -> tuple[str, str, str | None]:
    return cell.vantage, cell.target, cell.target_node


def summary(cell: Cell) -> tuple[str, str | None, bool]:
    return cell.expected.outcome, cell.expected.client_address_role, cell.expected.may_timeout


@FAST
@given(cfg=configs(min_cni="1.8.0"), before=snats, after=snats, vpc2=snats)
def test_vpc1_snat_changes_only_what_vpc1_pods_send_out_of_vpc1(
    cfg: config.ExperimentConfig, before: Snat, after: Snat, vpc2: Snat
) -> None:
    old = {key(c): c for c in phase_cells(cfg, PhaseSnat(vpc1=before, vpc2=vpc2))}
    new = {key(c): c for c in phase_cells(cfg, PhaseSnat(vpc1=after, vpc2=vpc2))}
    changed = {k for k in old if summary(old[k]) != summary(new[k])}
    allowed = {("vpc1-pod", t, None) for t in ("peer-host", "peer-host-public", "load-balancer")}
    assert changed <= allowed


@FAST
@given(before=snats, after=snats, vpc2=snats)
def test_with_private_vpc1_nodes_behind_nat_only_peer_host_changes(before: Snat, after: Snat, vpc2: Snat) -> None:
    cfg = config.load()
    old = {key(c): c for c in phase_cells(cfg, PhaseSnat(vpc1=before, vpc2=vpc2))}
    new = {key(c): c for c in phase_cells(cfg, PhaseSnat(vpc1=after, vpc2=vpc2))}
    assert {k for k in old if summary(old[k]) != summary(new[k])} <= {("vpc1-pod", "peer-host", None)}


@FAST
@given(cfg=configs(), vpc1=snats, vpc2=snats)
def test_unreachable_cells_have_no_client_address_role(cfg: config.ExperimentConfig, vpc1: Snat, vpc2: Snat) -> None:
    for cell in phase_cells(cfg, PhaseSnat(vpc1=vpc1, vpc2=vpc2)):
        if cell.expected.outcome != "ok":
            assert cell.expected.client_address_role is None and cell.expected.host is None
        assert cell.explanation


@FAST
@given(cfg=configs(min_cni="1.8.0"), vpc1=snats, vpc2_before=snats, vpc2_after=snats)
def test_vpc2_snat_changes_only_vpc2_pod_cells(
    cfg: config.ExperimentConfig, vpc1: Snat, vpc2_before: Snat, vpc2_after: Snat
) -> None:
    old = {key(c): c for c in phase_cells(cfg, PhaseSnat(vpc1=vpc1, vpc2=vpc2_before))}
    new = {key(c): c for c in phase_cells(cfg, PhaseSnat(vpc1=vpc1, vpc2=vpc2_after))}
    assert all(k[0] == "vpc2-pod" for k in old if summary(old[k]) != summary(new[k]))


RENUMBER = {"172.16.0.0/16": "10.16.0.0/16", "192.168.0.0/16": "10.32.0.0/16"}


def renumbered(cfg: config.ExperimentConfig) -> config.ExperimentConfig:
    data = cfg.model_dump(mode="python")
    data["vpcs"]["vpc1"]["cidr"], data["vpcs"]["vpc2"]["cidr"] = RENUMBER["172.16.0.0/16"], RENUMBER["192.168.0.0/16"]
    for key_ in ("vpc1", "vpc2"):
        data["clusters"][key_]["service_cidr"] = "172.20.0.0/16"
    return config.from_mapping(data)


def renumber_snat(snat: Snat) -> Snat:
    return Snat(
        external_snat=snat.external_snat,
        exclude_snat_cidrs=[
            RENUMBER.get(c, "192.168.0.0/16" if c == "10.0.0.0/8" else c) for c in snat.exclude_snat_cidrs
        ],
    )


@FAST
@given(cfg=configs(), vpc1=snats, vpc2=snats)
def test_renumbering_every_cidr_consistently_changes_no_role(
    cfg: config.ExperimentConfig, vpc1: Snat, vpc2: Snat
) -> None:
    original = phase_cells(cfg, PhaseSnat(vpc1=vpc1, vpc2=vpc2))
    moved = phase_cells(renumbered(cfg), PhaseSnat(vpc1=renumber_snat(vpc1), vpc2=renumber_snat(vpc2)))
    assert [(c.vantage, c.target) for c in original] == [(c.vantage, c.target) for c in moved]
    assert [summary(c) for c in original] == [summary(c) for c in moved]
