"""The hop-by-hop path of a cell: built from the model's own walk, so it agrees with the cell's expectation."""

from __future__ import annotations

from hypothesis import given

from peerprobe import config, topology
from peerprobe.config import ExperimentConfig, PhaseSnat, Snat
from peerprobe.model import places
from peerprobe.model.facts import Facts
from peerprobe.model.path import CellPath, cell_path
from peerprobe.probes.plan import ProbeSpec, plan
from peerprobe.probes.roles import classify
from peerprobe.vocabulary import Cell
from tests.model.helpers import make_config, phase_cells
from tests.model.test_properties import FAST, configs, snats


def path_of(vantage: str, target: str, cfg: ExperimentConfig | None = None, snat: PhaseSnat | None = None) -> CellPath:
    cfg = cfg or config.load()
    planned = topology.plan(cfg)
    spec = next(s for s in plan(planned) if (s.vantage, s.target) == (vantage, target))
    return cell_path(spec, Facts(config=cfg, topology=planned, snat=snat or PhaseSnat()))


def test_a_vpc2_pod_to_the_pod_ip_is_snated_by_aws_snat_chain_0_on_its_node() -> None:
    planned = topology.plan(config.load())
    busybox, node = planned.vpc2.busybox_pod, planned.vpc2.nodes[0]
    assert busybox is not None
    path = path_of("vpc2-pod", "pod-ip")
    [rewrite] = [r for r in path.rewrites() if r.field == "source"]
    assert (rewrite.before, rewrite.after, rewrite.by) == (busybox.ip, node.ip, "AWS-SNAT-CHAIN-0 SNAT")
    assert [hop.at for hop in path.hops] == [
        "vpc2-pod",
        places.node(busybox.node),
        places.PEERING,
        places.node(planned.vpc1.nodes[0].name),
        places.ECHO_POD,
    ]


def test_externalsnat_keeps_the_pod_address_and_says_which_setting_kept_it() -> None:
    path = path_of("vpc2-pod", "pod-ip", snat=PhaseSnat(vpc2=Snat(external_snat=True)))
    assert not path.rewrites() and "AWS_VPC_K8S_CNI_EXTERNALSNAT=true" in path.hops[1].kept_by


def test_the_nat_gateway_rewrites_the_source_to_its_public_address() -> None:
    planned = topology.plan(config.load())
    path = path_of("vpc1-pod", "peer-host-public")
    nat = next(hop for hop in path.hops if hop.at == places.nat_gateway("vpc1"))
    assert [(r.field, r.after, r.by) for r in nat.rewrites] == [("source", planned.vpc1.nat_gateway, "NAT gateway")]


def test_the_internet_gateway_maps_the_public_address_back_to_the_private_one() -> None:
    planned = topology.plan(config.load())
    path = path_of("vpc1-pod", "peer-host-public")
    assert path.hops[-1].at == places.PEER_HOST and path.hops[-1].dst == planned.peer_host.private_ip
    assert any(r.field == "destination" and r.after == planned.peer_host.private_ip for r in path.rewrites())


def test_the_classic_elb_proxies_then_kube_proxy_masquerades() -> None:
    by = [r.by for r in path_of("vpc2-pod", "load-balancer").rewrites() if r.field == "source"]
    assert by[-2:] == ["Classic ELB proxy", "KUBE-MARK-MASQ / KUBE-POSTROUTING MASQUERADE"]


def test_the_nginx_nlb_is_dnated_and_masqueraded_at_the_vpc1_node_not_at_the_pod() -> None:
    planned = topology.plan(config.load())
    node, nginx = planned.vpc1.nodes[0], planned.vpc1.nginx_pod
    assert nginx is not None
    path = path_of("outside", "nginx-nlb")
    [at_node] = [hop for hop in path.hops if hop.at == places.node(node.name)]
    assert [(r.field, r.after, r.by) for r in at_node.rewrites] == [
        ("destination", nginx.ip, "kube-proxy KUBE-SVC/KUBE-SEP DNAT"),
        ("source", node.ip, "KUBE-MARK-MASQ / KUBE-POSTROUTING MASQUERADE"),
    ]
    [pod] = [hop for hop in path.hops if hop.at == places.NGINX_POD]
    assert pod.rewrites == ()


def test_an_nlb_with_ip_targets_that_preserves_the_client_rewrites_no_source() -> None:
    cfg = make_config(services={"internal_nlb": {"target_type": "ip", "preserve_client_ip": True}})
    path = path_of("vpc2-ec2", "internal-nlb", cfg)
    nlb = next(hop for hop in path.hops if hop.at == places.load_balancer("internal-nlb"))
    assert "NLB client IP preservation" in nlb.kept_by and not [r for r in nlb.rewrites if r.field == "source"]


def test_a_name_that_does_not_resolve_stops_at_the_client() -> None:
    path = path_of("vpc2-pod", "headless")
    assert path.outcome == "dns-error" and [h.at for h in path.hops] == ["vpc2-pod"]
    assert path.hops[-1].blocked_by == "DNS"


def test_a_blocked_connection_ends_where_it_is_dropped() -> None:
    path = path_of("vpc2-pod", "pod-ip", make_config(peering={"enabled": False}))
    assert path.outcome == "timeout" and path.hops[-1].at == places.PEERING and path.hops[-1].blocked_by


def _trace(cfg: ExperimentConfig, snat: PhaseSnat) -> list[tuple[Cell, CellPath, ProbeSpec]]:
    planned = topology.plan(cfg)
    specs = {(s.vantage, s.target, s.target_node): s for s in plan(planned)}
    facts = Facts(config=cfg, topology=planned, snat=snat)
    found = []
    for cell in phase_cells(cfg, snat):
        spec = specs[(cell.vantage, cell.target, cell.target_node)]
        found.append((cell, cell_path(spec, facts), spec))
    return found


@FAST
@given(cfg=configs(), vpc1=snats, vpc2=snats)
def test_every_path_ends_as_the_model_expects(cfg: ExperimentConfig, vpc1: Snat, vpc2: Snat) -> None:
    """The path's outcome is the cell's, and the source it delivers has the role the cell expects."""
    planned = topology.plan(cfg)
    for cell, path, spec in _trace(cfg, PhaseSnat(vpc1=vpc1, vpc2=vpc2)):
        assert path.outcome == cell.expected.outcome and path.hops, spec.key
        role = cell.expected.client_address_role
        if role is not None:
            seen = classify(
                path.hops[-1].src,
                vantage=cell.vantage,
                target=cell.target,
                target_node=cell.target_node,
                topology=planned,
            )
            assert seen == role, spec.key


@FAST
@given(cfg=configs(), vpc1=snats, vpc2=snats)
def test_every_rewrite_names_what_did_it(cfg: ExperimentConfig, vpc1: Snat, vpc2: Snat) -> None:
    for _, path, spec in _trace(cfg, PhaseSnat(vpc1=vpc1, vpc2=vpc2)):
        assert all(r.by and r.by != "the model" and r.before != r.after for r in path.rewrites()), spec.key


def test_the_nginx_nlb_keeps_the_client_under_local_like_every_external_service() -> None:
    """resources.fill_service gives the nginx Service the experiment's externalTrafficPolicy: under Local KUBE-SVL
    DNATs to the local nginx pod without masquerade (the lab's kernel shows the same)."""
    cfg = make_config(services={"external_traffic_policy": "Local"})
    path = path_of("outside", "nginx-nlb", cfg)
    assert [r.by for r in path.rewrites() if r.field == "source"][-1:] != [
        "KUBE-MARK-MASQ / KUBE-POSTROUTING MASQUERADE"
    ]
    assert path.outcome == "ok"
