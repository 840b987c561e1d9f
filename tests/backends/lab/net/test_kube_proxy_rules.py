"""kube-proxy's rule generator (no root): proxier.go's chains, Cluster vs Local, hairpin, EKS's no-op local
detector, and the merge that keeps aws-node's rules."""

from __future__ import annotations

from peerprobe.backends.lab.net import Endpoint, KubeService
from peerprobe.backends.lab.net import kube_proxy as kp
from peerprobe.backends.lab.net.snat import merge_saved

ECHO = Endpoint(pod="echo", ip="172.16.96.18", port=8080, node="node0")


def service(**extra: object) -> KubeService:
    base: dict[str, object] = {
        "name": "nodeport",
        "kind": "nodeport",
        "type": "NodePort",
        "port": 80,
        "cluster_ip": "10.100.128.34",
        "target_port": 8080,
        "node_port": 32227,
        "endpoints": [ECHO],
    }
    return KubeService.model_validate(base | extra)


def rules(node: str, *services: KubeService) -> list[str]:
    tables = kp.tables(node, list(services))
    return tables["nat"].rules + tables["filter"].rules


def test_chain_names_are_kube_proxys_hashes() -> None:
    name = kp.chain_name("KUBE-SVC-", "default/nodeport", "tcp")
    assert name.startswith("KUBE-SVC-") and len(name) == len("KUBE-SVC-") + 16 and name.isupper()
    assert name == kp.chain_name("KUBE-SVC-", "default/nodeport", "tcp")


def test_cluster_policy_masquerades_every_external_connection() -> None:
    lines = rules("node1", service())
    ext = kp.chain_name("KUBE-EXT-", "default/nodeport", "tcp")
    assert any(line.startswith(f"-A {ext}") and line.endswith("-j KUBE-MARK-MASQ") for line in lines)
    assert any("--dport 32227" in line and "KUBE-NODEPORTS" in line for line in lines)
    assert any("MASQUERADE --random-fully" in line for line in lines)


def test_no_local_traffic_detector_on_eks() -> None:
    # An empty clusterCIDR: no '! -s <clusterCIDR> -j KUBE-MARK-MASQ' on the ClusterIP, no pod short-circuit.
    lines = rules("node1", service(local=True, type="LoadBalancer", health_check_node_port=31081))
    svc = kp.chain_name("KUBE-SVC-", "default/nodeport", "tcp")
    assert not any(line.startswith(f"-A {svc}") and "KUBE-MARK-MASQ" in line for line in lines)
    assert not any("pod traffic for" in line for line in lines)


def test_local_policy_drops_without_a_local_endpoint_and_keeps_the_source_with_one() -> None:
    local = service(local=True, type="LoadBalancer", health_check_node_port=31081)
    elsewhere, home = rules("node1", local), rules("node0", local)
    assert any("has no local endpoints" in line and line.endswith("-j DROP") for line in elsewhere)
    assert not any(line.startswith("-A KUBE-SVL-") for line in elsewhere)
    svl = kp.chain_name("KUBE-SVL-", "default/nodeport", "tcp")
    assert any(line.startswith(f"-A {svl}") for line in home)
    assert any("--src-type LOCAL -j KUBE-MARK-MASQ" in line for line in home)
    assert any("--dport 31081 -j ACCEPT" in line for line in home)


def test_hairpin_and_headless() -> None:
    lines = rules("node0", service(), service(name="headless", kind="headless", cluster_ip=None, node_port=None))
    assert any(f"-s {ECHO.ip}/32" in line and line.endswith("-j KUBE-MARK-MASQ") for line in lines)
    assert not any("default/headless" in line for line in lines)  # kube-proxy ignores headless Services


def test_merge_keeps_aws_node_rules_and_puts_kube_proxy_jumps_first() -> None:
    saved = (
        "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:AWS-SNAT-CHAIN-0 - [0:0]\n"
        '-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0\n'
        "-A AWS-SNAT-CHAIN-0 -d 172.16.0.0/16 -j RETURN\nCOMMIT\n"
    )
    merged = merge_saved(saved, kp.tables("node0", [service()]), owned=kp.owned, names=kp.TABLES, prepend=True)
    assert "AWS-SNAT-CHAIN-0" in merged
    postrouting = [line for line in merged.splitlines() if line.startswith("-A POSTROUTING")]
    assert "KUBE-POSTROUTING" in postrouting[0] and "AWS-SNAT-CHAIN-0" in postrouting[-1]
    # ...and aws-node's own re-application (here: EXTERNALSNAT, no rules of its own) keeps kube-proxy's.
    again = merge_saved(merged, {})
    assert "KUBE-SERVICES" in again and "AWS-SNAT-CHAIN-0" not in again
