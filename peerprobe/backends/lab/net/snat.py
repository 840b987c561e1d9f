"""`apply_snat`: change a cluster's aws-node SNAT environment on every node, like a rolled aws-node DaemonSet.

Rules other components own (kube-proxy's) are kept: each node's nat and mangle tables are read back, aws-node's
lines replaced and both tables restored in one atomic iptables-restore. Conntrack is not flushed: aws-node does
not flush it either, so existing connections keep their old NAT until they end (behaviour.md 1.4).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import structlog

from peerprobe.backends.lab.net import _cni, _run
from peerprobe.backends.lab.net._script import Table
from peerprobe.backends.lab.net.model import LabNet, NodeNet, VpcKey
from peerprobe.config import Snat

log = structlog.get_logger()
OWNED_TABLES = ("nat", "mangle")


def apply_snat(lab: LabNet, cluster: VpcKey, snat: Snat) -> LabNet:
    """Rewrite aws-node's rules (and, before CNI 1.8, the pods' from-pod rules) on that cluster's nodes;
    returns the updated LabNet for the caller to persist."""
    started = time.perf_counter()
    vpc = lab.vpcs[cluster].model_copy(update={"snat": snat})
    updated = lab.model_copy(update={"vpcs": {**lab.vpcs, cluster: vpc}})
    nodes = updated.nodes_of(cluster)
    saved = _run.run_all([_save_job(node) for node in nodes] + [_rules_job(node) for node in nodes])
    tables, rule_lists = saved[: len(nodes)], saved[len(nodes) :]
    jobs = [
        _restore_job(node, merge_saved(text, _cni.aws_node_tables(node, vpc)))
        for node, text in zip(nodes, tables, strict=True)
    ]
    for node, listed in zip(nodes, rule_lists, strict=True):
        job = _pod_rules_job(node, updated, listed)
        jobs += [job] if job else []
    _run.run_all(jobs)
    log.info(
        "lab.snat.applied",
        cluster=cluster,
        nodes=len(nodes),
        external_snat=snat.external_snat,
        exclude_snat_cidrs=snat.exclude_snat_cidrs,
        cni_version=vpc.cni_version,
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return updated


def _save_job(node: NodeNet) -> _run.Job:
    return _run.Job(f"iptables-save in {node.ns}", _run.in_netns(node.ns, ["iptables-save"]), ns=node.ns)


def _rules_job(node: NodeNet) -> _run.Job:
    argv = ["ip", "-j", "-n", node.ns, "rule", "list", "priority", str(_cni.FROM_POD_PRIORITY)]
    return _run.Job(f"ip rule list in {node.ns}", argv, ns=node.ns)


def _restore_job(node: NodeNet, rules: str) -> _run.Job:
    return _run.Job(f"iptables-restore in {node.ns}", _run.in_netns(node.ns, ["iptables-restore"]), rules, node.ns)


def _pod_rules_job(node: NodeNet, lab: LabNet, listed: str) -> _run.Job | None:
    """Before 1.8 the from-pod rules depend on the SNAT settings: ipamd rewrites them for existing pods when
    aws-node restarts (v1.7.10 ipamd.go nodeInit -> configureIPRulesForPods)."""
    secondary = [pod for pod in node.pods if pod.eni_device != "eth0"]  # branch ENIs' standard rules too
    if not secondary:
        return None
    vpc = lab.vpcs[node.cluster]
    stale = len(json.loads(listed or "[]"))
    lines = [f"rule del priority {_cni.FROM_POD_PRIORITY}"] * stale
    lines += [line for pod in secondary for line in _cni.from_pod_rules(pod, vpc)]
    return _run.ip_batch(f"pod rules in {node.ns}", lines, ns=node.ns)


def merge_saved(
    saved: str,
    ours: dict[str, Table],
    *,
    owned: Callable[[str], bool] | None = None,
    names: tuple[str, ...] = OWNED_TABLES,
    prepend: bool = False,
) -> str:
    """iptables-restore input for one owner's tables: everything saved that the owner (aws-node by default)
    does not own, plus ours, after it (aws-node appends) or before it (kube-proxy prepends its jumps)."""
    is_owned = owned or _owned
    parsed = _parse(saved)
    out = []
    for name in names:
        chains, rules, policies = parsed.get(name, ([], [], {}))
        mine = ours.get(name, Table(name))
        table = Table(name, chains=[c for c in chains if not is_owned(c)], policies=policies)
        table.chains += [c for c in mine.chains if c not in table.chains]
        kept = [r for r in rules if not is_owned(r)]
        table.rules = mine.rules + kept if prepend else kept + mine.rules
        out.append(table.render())
    return "".join(out)


def _owned(line: str) -> bool:
    """aws-node's chains and rules: AWS-* chains, jumps to them, and rules with its "AWS..." comments."""
    words = line.split()
    chain = words[1] if line.startswith("-A ") and len(words) > 1 else line
    return chain.startswith("AWS-") or "-j AWS-" in line or '--comment "AWS' in line or "--comment AWS" in line


def _parse(saved: str) -> dict[str, tuple[list[str], list[str], dict[str, str]]]:
    tables: dict[str, tuple[list[str], list[str], dict[str, str]]] = {}
    current: tuple[list[str], list[str], dict[str, str]] | None = None
    for line in saved.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:].strip(), ([], [], {}))
        elif current is not None and line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if policy == "-":
                current[0].append(name)
            else:
                current[2][name] = policy
        elif current is not None and line.startswith("-A "):
            current[1].append(line)
    return tables
