"""Name resolution as each vantage sees it: VPC1's cluster DNS knows the headless name, public DNS knows the
load balancers (internet-facing: public addresses; internal: private ones), answering only with the nodes of
zones that have a healthy target (behaviour.md 3 and 5; ELB docs: DNS drops a node with no healthy target).

The views feed the probe client, and /etc/netns/<ns>/hosts (bind-mounted by `ip netns exec`) gives
`peerprobe lab exec` the same view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from peerprobe.backends.lab.net import LabNet, LbNode, Visitor
from peerprobe.topology import LoadBalancerFacts, Topology
from peerprobe.vocabulary import VANTAGES

NETNS_CONFIG_DIR = Path("/etc/netns")
# Nothing answers here inside a namespace: an unknown name fails at once instead of leaving the machine.
RESOLV_CONF = "# peerprobe lab: names come from the hosts file; no resolver is reachable\nnameserver 127.0.0.1\n"


def load_balancer_records(lab: LabNet, topology: Topology, guest: str = "") -> dict[str, list[str]]:
    """Public DNS: each load balancer's name -> its nodes' addresses in zones with a healthy target (`guest`:
    a visitor's load balancers, attach mode)."""
    records = {}
    for kind, facts in topology.vpc1.load_balancer_facts.items():
        mine = (lb for lb in lab.load_balancers if lb.kind == kind and lb.guest == guest)
        nodes = sorted(mine, key=lambda lb: lb.zone)
        if nodes:
            records[facts.dns_name] = [_address(lb, facts) for lb in _answering(nodes)]
    return records


def _answering(nodes: list[LbNode]) -> list[LbNode]:
    # With no healthy target anywhere, AWS fails open and answers with every node.
    healthy = [lb for lb in nodes if lb.healthy]
    return healthy or nodes


def _address(lb: LbNode, facts: LoadBalancerFacts) -> str:
    if facts.scheme == "internet-facing" and lb.eni.public_ip:
        return lb.eni.public_ip
    return lb.eni.ip


def views(
    lab: LabNet, topology: Topology, cluster_dns: Mapping[str, Sequence[str]], visitors: Sequence[Visitor] = ()
) -> dict[str, dict[str, list[str]]]:
    """Per vantage namespace: public DNS for everyone, plus VPC1's cluster DNS for the VPC1 pods only (VPC2's
    CoreDNS answers NXDOMAIN for VPC1's Services; the EC2 host and the outside use public DNS only). Visitors'
    (attach mode) load balancers are in public DNS, their pod vantages see it too."""
    public = load_balancer_records(lab, topology)
    for visitor in visitors:
        public |= load_balancer_records(lab, visitor.topology, visitor.tag)
    busyboxes = [p for node in lab.nodes for p in node.pods if p.name == "busybox" and p.guest]
    vpc1_pods = {lab.vantage_ns("vpc1-pod"), *(p.ns for p in busyboxes if p.cluster == "vpc1")}
    namespaces = [*(lab.vantage_ns(v) for v in VANTAGES), *(p.ns for p in busyboxes)]
    cluster = {k: list(v) for k, v in cluster_dns.items()}
    return {ns: {**public, **(cluster if ns in vpc1_pods else {})} for ns in namespaces}


def write_views(views_by_ns: Mapping[str, Mapping[str, Sequence[str]]]) -> None:
    """/etc/netns/<ns>/hosts and resolv.conf for each vantage; teardown removes the directories."""
    for ns, records in views_by_ns.items():
        directory = NETNS_CONFIG_DIR / ns
        directory.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", *(f"{ip} {name}" for name, ips in records.items() for ip in ips)]
        (directory / "hosts").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (directory / "resolv.conf").write_text(RESOLV_CONF, encoding="utf-8")
