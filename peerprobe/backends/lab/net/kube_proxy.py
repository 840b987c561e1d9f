"""kube-proxy in iptables mode on each VPC1 node, as EKS runs it, loaded with iptables-restore (behaviour.md 2).

Follows kubernetes pkg/proxy/iptables/proxier.go: KUBE-SERVICES -> KUBE-SVC-* -> KUBE-SEP-* (DNAT, hairpin
masquerade), KUBE-NODEPORTS -> KUBE-EXT-* (Cluster: masquerade everything; Local: only --src-type LOCAL, then
KUBE-SVL-* with the node's own endpoints, DROP in KUBE-EXTERNAL-SERVICES when it has none), KUBE-MARK-MASQ
and KUBE-POSTROUTING. EKS leaves clusterCIDR empty, so the local-traffic detector is a no-op
(cmd/kube-proxy/app/server_linux.go getLocalDetector; awslabs/amazon-eks-ami#152): no detector rules at all.
"""

from __future__ import annotations

import base64
import hashlib
import time

import structlog

from peerprobe.backends.lab.net import _run
from peerprobe.backends.lab.net._script import Table
from peerprobe.backends.lab.net.model import KubeService, LabNet, NodeNet
from peerprobe.backends.lab.net.snat import merge_saved

log = structlog.get_logger()
MASQ_MARK = "0x4000"  # --iptables-masquerade-bit 14, kube-proxy's default
MASQ = "KUBE-MARK-MASQ"
# Jumps kube-proxy keeps at the top of the built-in chains (iptablesJumpChains, utiliptables.Prepend).
JUMPS: dict[str, list[tuple[str, ...]]] = {
    "nat": [
        ("PREROUTING", "kubernetes service portals", "KUBE-SERVICES"),
        ("OUTPUT", "kubernetes service portals", "KUBE-SERVICES"),
        ("POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING"),
    ],
    "filter": [
        ("INPUT", "kubernetes health check service ports", "KUBE-NODEPORTS"),
        ("INPUT", "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES", "NEW"),
        ("FORWARD", "kubernetes forwarding rules", "KUBE-FORWARD"),
        ("FORWARD", "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES", "NEW"),
    ],
}
TABLES = ("nat", "filter")


def chain_name(prefix: str, *parts: str) -> str:
    """servicePortChainName / servicePortEndpointChainName: prefix + base32(sha256(parts))[:16]."""
    digest = hashlib.sha256("".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[:16]


def tables(node: str, services: list[KubeService]) -> dict[str, Table]:
    """Every kube-proxy rule of one node: the same Services everywhere, local endpoints differ under Local."""
    nat, flt = Table("nat"), Table("filter")
    _jumps(nat, flt)
    nat.chain("KUBE-NODEPORTS")
    _masquerade(nat)
    _forward(flt)
    for service in services:
        if service.cluster_ip is not None and service.endpoints:
            _service(nat, flt, node, service)
    nat.add(
        'KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
        'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    return {"nat": nat, "filter": flt}


def _jumps(nat: Table, flt: Table) -> None:
    for name, table in (("nat", nat), ("filter", flt)):
        for builtin, comment, target, *state in JUMPS[name]:
            table.chain(target)
            ctstate = " -m conntrack --ctstate NEW" if state else ""
            table.add(f'{builtin}{ctstate} -m comment --comment "{comment}" -j {target}')


def _masquerade(nat: Table) -> None:
    nat.chain(MASQ)
    nat.add(f"{MASQ} -j MARK --set-xmark {MASQ_MARK}/{MASQ_MARK}")
    nat.add(f"KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN")
    nat.add(f"KUBE-POSTROUTING -j MARK --set-xmark {MASQ_MARK}/0x0")  # clear it: re-NAT of a NATed flow
    nat.add(
        'KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully'
    )


def _forward(flt: Table) -> None:
    flt.add(
        f'KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} '
        "-j ACCEPT"
    )
    flt.add(
        'KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )


def _service(nat: Table, flt: Table, node: str, service: KubeService) -> None:
    name, proto = service.port_name, "tcp"
    svc = nat.chain(chain_name("KUBE-SVC-", name, proto))
    seps = [_endpoint(nat, service, ep.ip, ep.port) for ep in service.endpoints]
    nat.add(
        f'KUBE-SERVICES -d {service.cluster_ip}/32 -p tcp -m comment --comment "{name} cluster IP" '
        f"-m tcp --dport {service.port} -j {svc}"
    )
    # No KUBE-MARK-MASQ here: masqueradeAll=false and the no-op local detector writes no "! -s clusterCIDR".
    nat.rules.extend(_spread(svc, name, seps))
    if service.node_port is None:
        return
    ext = nat.chain(chain_name("KUBE-EXT-", name, proto))
    nat.add(f'KUBE-NODEPORTS -p tcp -m comment --comment "{name}" -m tcp --dport {service.node_port} -j {ext}')
    if not service.local:
        nat.add(f'{ext} -m comment --comment "masquerade traffic for {name} external destinations" -j {MASQ}')
        nat.add(f"{ext} -j {svc}")
        return
    _local_policy(nat, flt, node, service, ext, svc)


def _endpoint(nat: Table, service: KubeService, ip: str, port: int) -> tuple[str, str]:
    endpoint = f"{ip}:{port}"
    sep = nat.chain(chain_name("KUBE-SEP-", service.port_name, "tcp", endpoint))
    nat.add(f'{sep} -s {ip}/32 -m comment --comment "{service.port_name}" -j {MASQ}')  # hairpin
    nat.add(f'{sep} -p tcp -m comment --comment "{service.port_name}" -m tcp -j DNAT --to-destination {endpoint}')
    return endpoint, sep


def _spread(chain: str, name: str, seps: list[tuple[str, str]]) -> list[str]:
    lines = []
    for index, (endpoint, sep) in enumerate(seps):
        left = len(seps) - index
        chance = f" -m statistic --mode random --probability {1 / left:.10f}" if left > 1 else ""
        lines.append(f'-A {chain} -m comment --comment "{name} -> {endpoint}"{chance} -j {sep}')
    return lines


def _local_policy(nat: Table, flt: Table, node: str, service: KubeService, ext: str, svc: str) -> None:
    name = service.port_name
    # Locally originated traffic (the node itself) still goes to any endpoint, masqueraded.
    nat.add(
        f'{ext} -m comment --comment "masquerade LOCAL traffic for {name} external destinations" '
        f"-m addrtype --src-type LOCAL -j {MASQ}"
    )
    nat.add(
        f'{ext} -m comment --comment "route LOCAL traffic for {name} external destinations" '
        f"-m addrtype --src-type LOCAL -j {svc}"
    )
    if service.health_check_node_port is not None:
        flt.add(
            f'KUBE-NODEPORTS -m comment --comment "{name} health check node port" '
            f"-m tcp -p tcp --dport {service.health_check_node_port} -j ACCEPT"
        )
    local = [ep for ep in service.endpoints if ep.node == node]
    if not local:
        flt.add(
            f'KUBE-EXTERNAL-SERVICES -m comment --comment "{name} has no local endpoints" '
            f"-m addrtype --dst-type LOCAL -p tcp -m tcp --dport {service.node_port} -j DROP"
        )
        return
    svl = nat.chain(chain_name("KUBE-SVL-", name, "tcp"))
    seps = [(f"{ep.ip}:{ep.port}", chain_name("KUBE-SEP-", name, "tcp", f"{ep.ip}:{ep.port}")) for ep in local]
    nat.rules.extend(_spread(svl, name, seps))
    nat.add(f"{ext} -j {svl}")


# --- loading it --------------------------------------------------------------------------------------------


def owned(line: str) -> bool:
    """kube-proxy's chains and rules: KUBE-* chains and every jump into them."""
    words = line.split()
    chain = words[1] if line.startswith("-A ") and len(words) > 1 else line
    return chain.startswith("KUBE-") or "-j KUBE-" in line


def apply_kube_proxy(lab: LabNet, services: list[KubeService]) -> None:
    """Write kube-proxy's rules on every VPC1 node in one atomic iptables-restore per node, keeping the
    rules other owners (aws-node) have in the same tables."""
    started = time.perf_counter()
    nodes = lab.nodes_of("vpc1")
    saved = _run.run_all(
        [_run.Job(f"iptables-save in {n.ns}", _run.in_netns(n.ns, ["iptables-save"]), ns=n.ns) for n in nodes]
    )
    _run.run_all([_restore(node, text, services) for node, text in zip(nodes, saved, strict=True)])
    log.info(
        "lab.kube_proxy.applied",
        nodes=len(nodes),
        services=len(services),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )


def _restore(node: NodeNet, saved: str, services: list[KubeService]) -> _run.Job:
    rules = merge_saved(saved, tables(node.name, services), owned=owned, names=TABLES, prepend=True)
    return _run.Job(f"kube-proxy rules in {node.ns}", _run.in_netns(node.ns, ["iptables-restore"]), rules, node.ns)
