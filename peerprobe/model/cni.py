"""The Amazon VPC CNI's SNAT and return-path rules (behaviour.md section 1), with every CIDR block of the VPC and
the branch ENIs of security groups for pods (docs/model.md, "Beyond the workshop").

Sources: aws/amazon-vpc-cni-k8s pkg/networkutils/network.go (buildIptablesSNATRules, AWS-SNAT-CHAIN-0: one RETURN per
VPC CIDR block, then `! -o vlan+ ... -j SNAT`), pkg/awsutils/imds.go (the blocks come from IMDS
vpc-ipv4-cidr-blocks: primary and secondary), iptables_connmark.go (v1.8.0+, PR #1475, `-i eni+` only),
pkg/sgpp/utils.go (strict-mode host veths are named vlan*, standard-mode eni*), driver.go (strict: iif rules to the
vlan table; standard: the eni rules), v1.7.10 driver.go (per-CIDR from-pod rules), EKS external-snat.html and
security-groups-for-pods ("Considerations").
"""

from __future__ import annotations

import ipaddress

from peerprobe.model import places
from peerprobe.model._walk import Actor, Blocked, Packet, Step, block
from peerprobe.model.clients import Client
from peerprobe.model.facts import Facts, VpcKey

EXCLUDE_SINCE = (1, 6, 0)  # AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS: CHANGELOG v1.6.0, PR #520
SYMMETRIC_RETURN_SINCE = (1, 8, 0)  # "Use symmetric return path for non-VPC traffic", PR #1475


def egress(client: Client, facts: Facts) -> Step:
    """aws-node's nat POSTROUTING on the client pod's node, seen with the post-DNAT destination."""

    def step(packet: Packet) -> Packet:
        if client.kind != "pod" or client.vpc is None or client.node is None:
            return packet
        at = places.node(client.node.name)
        keep = _branch_exemption(client.vpc, facts) or _snat_exemption(client.vpc, packet.dst, facts)
        if keep:
            rule, reason = keep
            return packet.note(f"{client.vpc} CNI keeps the pod IP: {reason}", headline=True, at=at, by=rule)
        return packet.becomes(
            Actor.CLIENT_NODE,
            client.node.ip,
            f"{client.vpc} CNI SNATs to the node's primary IP {client.node.ip}: {packet.dst} is outside "
            f"{client.vpc}'s {facts.cidrs_text(client.vpc)} and not excluded (AWS-SNAT-CHAIN-0 last rule)",
            at=at,
            by="AWS-SNAT-CHAIN-0 SNAT",
        )

    return step


BRANCH_STRICT = "branch ENI (strict: out vlan+, no SNAT)"


def _branch_exemption(key: VpcKey, facts: Facts) -> tuple[str, str] | None:
    """Strict mode: the busybox's host veth is vlan*, its iif rules send everything out its vlan interface to the
    branch ENI, and AWS-SNAT-CHAIN-0's SNAT rule matches only `! -o vlan+` (network.go, driver.go, sgpp/utils.go):
    no SNAT, whatever EXTERNALSNAT or the exclusions say (S). Standard mode: an eni* veth like any pod, so the
    usual rules apply (S; EKS: "translated to the IP address of the instance's primary network interface")."""
    if not (facts.branch_eni(key, "busybox") and facts.strict(key)):
        return None
    reason = (
        "strict mode sends the branch-ENI pod's traffic out its vlan interface, which AWS-SNAT-CHAIN-0's SNAT rule "
        "skips (! -o vlan+), whatever the SNAT settings"
    )
    return BRANCH_STRICT, reason


def _snat_exemption(key: VpcKey, dst: str, facts: Facts) -> tuple[str, str] | None:
    """Why the pod address is kept, as (the rule that keeps it, the reason), or None: it is SNATed."""
    settings, address = facts.snat_of(key), ipaddress.IPv4Address(dst)
    if address in facts.cidr(key):
        return "AWS-SNAT-CHAIN-0 RETURN", f"{dst} is inside {key}'s CIDR {facts.cidr(key)} (AWS-SNAT-CHAIN-0 RETURN)"
    secondary = next((net for net in facts.cidrs(key)[1:] if address in net), None)
    if secondary is not None:
        # One RETURN per CIDR block the VPC has (IMDS vpc-ipv4-cidr-blocks), secondary blocks included (S).
        reason = f"{dst} is inside {key}'s secondary CIDR {secondary} (AWS-SNAT-CHAIN-0 RETURN: every VPC CIDR block)"
        return "AWS-SNAT-CHAIN-0 RETURN (secondary CIDR)", reason
    if settings.external_snat:
        return "AWS_VPC_K8S_CNI_EXTERNALSNAT=true", "AWS_VPC_K8S_CNI_EXTERNALSNAT=true removes the SNAT rules"
    excluded = [c for c in settings.exclude_snat_cidrs if address in ipaddress.IPv4Network(c)]
    if excluded and facts.cluster(key).cni >= EXCLUDE_SINCE:
        reason = f"{dst} is in AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS {excluded[0]} (RETURN before SNAT)"
        return "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS RETURN", reason
    return None


def exclusion_ignored(key: VpcKey, facts: Facts) -> bool:
    return bool(facts.snat_of(key).exclude_snat_cidrs) and facts.cluster(key).cni < EXCLUDE_SINCE


def echo_reply(facts: Facts) -> Step:
    """The echo pod answers a source outside VPC1 directly (no NodePort connmark): can the reply leave?"""

    def step(packet: Packet) -> Packet | Blocked:
        at = places.node(facts.echo_node.name)
        if facts.vpc_of(packet.ip) == "vpc1":
            return packet
        if facts.branch_eni("vpc1", "echo"):
            # Strict: iif rules to the vlan table; standard: 'from <pod> lookup <vlan table>' (driver.go) (S).
            return packet.note("the echo pod answers through its branch ENI (its vlan route table)", at=at)
        if not facts.config.clusters.vpc1.pods_on_secondary_eni:
            return packet
        if facts.cluster("vpc1").cni >= SYMMETRIC_RETURN_SINCE:
            return packet.note(
                "vpc1 CNI >= 1.8 answers from the pod's secondary ENI (rule 'from <pod> lookup <ENI table>')", at=at
            )
        if _old_cni_routes_reply_via_eni(packet.ip, facts):
            reason = "vpc1 CNI < 1.8 routes the reply out the pod's ENI (its from-pod rule covers the peer)"
            return packet.note(reason, at=at)
        return block(
            packet,
            "timeout",
            f"vpc1 CNI {facts.cluster('vpc1').cni_version} < 1.8: the reply to {packet.ip} leaves the primary ENI "
            "with the secondary-ENI pod address and EC2's source/destination check drops it (external-snat.html)",
            at=at,
            by="EC2 source/destination check",
        )

    return step


def _old_cni_routes_reply_via_eni(source: str, facts: Facts) -> bool:
    # Before v1.8 the from-pod rules were 'from <pod> to <VPC CIDR>' plus the exclusions, or 'from <pod>'
    # for every destination when EXTERNALSNAT=true (v1.7.10 driver.go, rpc_handler.go).
    settings = facts.snat_of("vpc1")
    if settings.external_snat:
        return True
    address = ipaddress.IPv4Address(source)
    excluded = any(address in ipaddress.IPv4Network(c) for c in settings.exclude_snat_cidrs)
    return excluded and facts.cluster("vpc1").cni >= EXCLUDE_SINCE
