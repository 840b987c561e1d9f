"""The lab's reading of conntrack, without the kernel: a probe's entries named by the model's places and put in
the order its packet crossed the lab's namespaces."""

from __future__ import annotations

from peerprobe import config
from peerprobe import topology as topo
from peerprobe.backends.lab import observe
from peerprobe.backends.lab.net import LabNet
from peerprobe.backends.lab.net._layout import layout
from peerprobe.probes import conntrack
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec


def lab() -> LabNet:
    cfg = config.load()
    return layout("lab:observe:cn-northwest-1", cfg, topo.plan(cfg), snat={}, security_groups=[], peering=True)


def entry(ns: str, src: str, sport: int, dst: str, *, left_from: tuple[str, int] | None = None) -> str:
    """One /proc/net/nf_conntrack line to the echo pod's :8080, its source rewritten to ``left_from``."""
    to_ip, to_port = left_from or (src, sport)
    return (
        f"ipv4 2 tcp 6 117 TIME_WAIT src={src} dst={dst} sport={sport} dport=8080 src={dst} dst={to_ip} "
        f"sport=8080 dport={to_port} [ASSURED] zone=0 use=2"
    )


def test_a_probe_from_the_vpc2_pod_is_followed_outward_from_its_node_and_named_by_place() -> None:
    net = lab()
    node2, node1 = net.nodes_of("vpc2")[0], net.nodes_of("vpc1")[0]
    pod, node_ip, echo = net.pod("vpc2", "busybox").ip, node2.primary.ip, net.pod("vpc1", "echo").ip
    at_node = entry(node2.ns, pod, 40312, echo, left_from=(node_ip, 1615))
    passed = entry("any", node_ip, 1615, echo)
    # Listed from the server's side back: the order must come from the lab's links, not from the listing.
    listings = {node1.ns: passed, net.vpcs["vpc1"].router_ns: passed, net.vpcs["vpc2"].router_ns: passed}
    listings[node2.ns] = at_node
    tables = conntrack.Tables.of({ns: conntrack.parse(ns, text) for ns, text in listings.items()})
    spec = ProbeSpec("vpc2-pod", "pod-ip", echo, 8080)
    seen = observe.Way(net).observed(ProbeResult(spec, "ok", source=f"{pod}:40312"), tables).translations
    assert seen is not None
    assert [(t.at, t.namespace) for t in seen] == [
        (f"node:{node2.name}", "vpc2-node0"),
        ("router:vpc2", "vpc2-router"),
        ("router:vpc1", "vpc1-router"),
        (f"node:{node1.name}", "vpc1-node0"),
    ]
    assert seen[0].snat and seen[0].leaving.src == node_ip and not any(t.snat or t.dnat for t in seen[1:])


def test_a_probe_whose_client_never_had_an_address_has_no_translations() -> None:
    spec = ProbeSpec("outside", "pod-ip", "172.16.96.18", 8080)
    result = observe.Way(lab()).observed(ProbeResult(spec, "timeout"), conntrack.Tables([]))
    assert result.translations == ()
