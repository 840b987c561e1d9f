"""Nodes and pods as the Amazon VPC CNI wires them, and aws-node's SNAT/connmark rules (behaviour.md section 1).

Sources (aws/amazon-vpc-cni-k8s): pkg/networkutils/network.go (SetupHostNetwork, buildIptablesSNATRules,
rp_filter=2 on the primary ENI), iptables_connmark.go (v1.8.0+, PR #1475), cni driver.go (pod veth, 169.254.1.1,
policy rules 512/1536), v1.7.10 driver.go (per-CIDR from-pod rules before 1.8.0), names.go (eni<hash>).
The VPC CIDR list every rule uses is IMDS network/interfaces/macs/<primary ENI MAC>/vpc-ipv4-cidr-blocks: the
primary block and every associated one (pkg/awsutils/imds.go GetVPCIPv4CIDRBlocks, awsutils.go GetVPCIPv4CIDRs,
re-read by ipamd; behaviour.md 1), so a secondary CIDR's pods talk to their own VPC without SNAT.
Branch ENIs (security groups for pods): driver.go SetupBranchENIPodNetwork (VLAN vlan.eth.<id> on the trunk ENI
with the branch ENI's MAC, table <id> + 100 with the subnet gateway; strict: setupIIFBasedContainerRouteRules, iif
rules at priority 10; standard: setupIPBasedContainerRouteRules, the usual to/from rules), network.go
(VlanRulePriority 10, the local rule moved to 20 "after the pod ENI rules"), sgpp/utils.go (vlan*/eni* veths).
"""

from __future__ import annotations

import ipaddress

from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net._script import NsScript, Script, Table
from peerprobe.backends.lab.net.model import LabNet, NodeNet, PodNet, VpcNet
from peerprobe.config import Snat, version_tuple

CONNMARK = "0x80"  # AWS_VPC_K8S_CNI_CONNMARK default (network.go defaultConnmark)
TO_POD_PRIORITY = 512  # "to <pod> lookup main"
FWMARK_PRIORITY = 1024  # "fwmark 0x80/0x80 lookup main"
FROM_POD_PRIORITY = 1536  # "from <pod> lookup <ENI table>"
VLAN_PRIORITY = 10  # networkutils VlanRulePriority: strict mode's iif rules
LOCAL_PRIORITY = 20  # networkutils localRulePriority: the local table's rule, after the VLAN rules
VLAN_TABLE_BASE = 100  # driver.go: rtTable := vlanID + 100
EXCLUDE_SINCE = (1, 6, 0)  # AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS (CHANGELOG v1.6.0, PR #520)
PRNG_SINCE = (1, 7, 0)  # RANDOMIZESNAT default became prng (--random-fully); hashrandom (--random) before
SYMMETRIC_RETURN_SINCE = (1, 8, 0)  # connmark chain and unconditional from-pod rules (PR #1475)


def eni_table(device: str) -> int:
    """The CNI's route table for ENI device number N is N + 1 (eth1 -> table 2)."""
    return int(device.removeprefix("eth")) + 1


def add_nodes(script: Script, lab: LabNet) -> None:
    for node in lab.nodes:
        vpc = lab.vpcs[node.cluster]
        # Order matters: eth0 is created (and addressed) first, so it is the first device with a global
        # address, which MASQUERADE out an unaddressed eni veth falls back to (behaviour.md section 11).
        for eni in node.enis:
            script.veth(eni.device, node.ns, eni.router_if, vpc.router_ns)
        for pod in node.pods:
            script.veth(pod.host_veth, node.ns, "eth0", pod.ns, address=pod.host_mac)
            script.ns(pod.ns).ip.extend(pod_lines(pod))
        _branches(script, node, vpc)
        _node(script.ns(node.ns), node, vpc)


def _branches(script: Script, node: NodeNet, vpc: VpcNet) -> None:
    """Each branch ENI as a veth pair: the node's end named as the CNI names its VLAN device (vlan.eth.<id>) with
    the branch ENI's MAC (driver.go setupVlan), the VPC's end in the router. On EC2 it is an 802.1Q VLAN of the
    trunk ENI; a veth per branch carries the same frames without tags (and needs no 8021q module)."""
    for pod in node.pods:
        if pod.branch is not None:
            branch = pod.branch
            script.veth(branch.device, node.ns, branch.router_if, vpc.router_ns, address=branch.mac)


def _node(ns: NsScript, node: NodeNet, vpc: VpcNet) -> None:
    ns.ip.extend(node_lines(node))
    ns.ip.extend(line for pod in node.pods for line in pod_rules(pod, vpc))
    ns.sysctls["net/ipv4/ip_forward"] = "1"
    devices = ["all", "default", *(e.device for e in node.enis[1:]), *(p.host_veth for p in node.pods)]
    devices += [p.branch.device for p in node.pods if p.branch]
    ns.sysctls.update({f"net/ipv4/conf/{dev}/rp_filter": "0" for dev in devices})
    # SetupHostNetwork: loose reverse-path filtering on the primary ENI (NodePort replies, DNATed traffic).
    ns.sysctls[f"net/ipv4/conf/{node.primary.device}/rp_filter"] = "2"
    ns.tables.update(aws_node_tables(node, vpc))


def node_lines(node: NodeNet) -> list[str]:
    lines = ["link set lo up"]
    for eni in node.enis:
        table = "" if eni.device == "eth0" else f" table {eni_table(eni.device)}"
        lines += [
            f"address add {eni.ip}/{eni.prefixlen} dev {eni.device} noprefixroute",
            f"link set {eni.device} up",
            f"route add {eni.gateway} dev {eni.device} scope link{table}",
            f"route add default via {eni.gateway} dev {eni.device}{table}",
        ]
    # Installed when NODE_PORT_SUPPORT (default true) or !EXTERNALSNAT: so always, with the defaults.
    lines.append(f"rule add fwmark {CONNMARK}/{CONNMARK} lookup main priority {FWMARK_PRIORITY}")
    for pod in node.pods:
        lines.append(f"link set {pod.host_veth} up")
        lines += branch_lines(pod) if pod.branch else [f"route add {pod.ip}/32 dev {pod.host_veth} scope link"]
    if any(pod.strict for pod in node.pods):
        # The local table's rule moves after the VLAN rules, so a strict pod's traffic to the node's own
        # addresses also leaves through its branch ENI (and its security groups apply).
        lines += [f"rule add lookup local priority {LOCAL_PRIORITY}", "rule del priority 0"]
    return lines


def branch_lines(pod: PodNet) -> list[str]:
    """The node's side of a branch-ENI pod: the VLAN up, its table (the subnet gateway on the VLAN), and the
    pod reached from the VLAN by iif rules (strict) or the main table (standard)."""
    assert pod.branch is not None and pod.vlan_id is not None
    vlan, table = pod.branch.device, VLAN_TABLE_BASE + pod.vlan_id
    lines = [
        f"link set {vlan} up",
        f"route add {pod.branch.gateway} dev {vlan} scope link table {table}",
        f"route add default via {pod.branch.gateway} dev {vlan} table {table}",
    ]
    if pod.strict:
        return [
            *lines,
            f"route add {pod.ip}/32 dev {pod.host_veth} scope link table {table}",
            f"rule add iif {vlan} lookup {table} priority {VLAN_PRIORITY}",
            f"rule add iif {pod.host_veth} lookup {table} priority {VLAN_PRIORITY}",
        ]
    return [*lines, f"route add {pod.ip}/32 dev {pod.host_veth} scope link"]


def pod_lines(pod: PodNet) -> list[str]:
    """Inside the pod: its IP as a /32, a default route via a dummy next hop whose MAC is pinned to the
    host veth's (driver.go setupNS), so the node needs no address on the veth."""
    gateway = names.POD_GATEWAY
    return [
        "link set lo up",
        f"address add {pod.ip}/32 dev eth0",
        "link set eth0 up",
        f"route add {gateway} dev eth0 scope link",
        f"route add default via {gateway} dev eth0",
        f"neigh add {gateway} lladdr {pod.host_mac} dev eth0 nud permanent",
    ]


def pod_rules(pod: PodNet, vpc: VpcNet) -> list[str]:
    if pod.strict:
        return []  # strict mode: the iif rules of branch_lines only
    return [f"rule add to {pod.ip}/32 lookup main priority {TO_POD_PRIORITY}", *from_pod_rules(pod, vpc)]


def from_pod_rules(pod: PodNet, vpc: VpcNet) -> list[str]:
    """Only pods on a secondary ENI get them; pods on the primary ENI use the main table both ways. A standard-
    mode branch-ENI pod's rule names its VLAN table, for every destination (setupIPBasedContainerRouteRules)."""
    if pod.branch is not None:
        if pod.strict or pod.vlan_id is None:
            return []
        return [f"rule add from {pod.ip}/32 lookup {VLAN_TABLE_BASE + pod.vlan_id} priority {FROM_POD_PRIORITY}"]
    if pod.eni_device == "eth0":
        return []
    table = eni_table(pod.eni_device)
    return [
        f"rule add from {pod.ip}/32{to} lookup {table} priority {FROM_POD_PRIORITY}"
        for to in _from_pod_destinations(vpc, vpc.snat)
    ]


def _from_pod_destinations(vpc: VpcNet, snat: Snat) -> list[str]:
    cni = version_tuple(vpc.cni_version)
    if cni >= SYMMETRIC_RETURN_SINCE or snat.external_snat:
        return [""]  # every destination
    # Before 1.8.0: only VPC-bound (and excluded) traffic used the ENI's table (v1.7.10 driver.go,
    # exclusions appended by rpc_handler.go); everything else, replies included, left by the main table.
    return [f" to {cidr}" for cidr in [*vpc.cidrs, *_exclusions(vpc, snat)]]


def _exclusions(vpc: VpcNet, snat: Snat) -> list[str]:
    if version_tuple(vpc.cni_version) < EXCLUDE_SINCE or snat.external_snat:
        return []  # GetExcludeSNATCIDRs returns nil with EXTERNALSNAT; the variable did not exist before 1.6
    return [cidr for cidr in snat.exclude_snat_cidrs if _ipv4_cidr(cidr)]  # invalid/IPv6 entries are skipped


def _ipv4_cidr(value: str) -> bool:
    try:
        return ipaddress.ip_network(value, strict=False).version == 4
    except ValueError:
        return False


# --- aws-node's iptables rules ----------------------------------------------------------------------------


def aws_node_tables(node: NodeNet, vpc: VpcNet) -> dict[str, Table]:
    nat, mangle = Table("nat"), Table("mangle")
    cni, snat = version_tuple(vpc.cni_version), vpc.snat
    if not snat.external_snat:  # EXTERNALSNAT=true: every SNAT rule has shouldExist=false
        _snat_chain(nat, node.primary.ip, vpc.cidrs, _exclusions(vpc, snat), cni)
        if cni >= SYMMETRIC_RETURN_SINCE:  # connmark.Cleanup() when EXTERNALSNAT=true
            _connmark_chain(nat, [*vpc.cidrs, *_exclusions(vpc, snat)])
    _mangle(mangle, node.primary.device)
    return {"nat": nat, "mangle": mangle}


def _snat_chain(nat: Table, primary_ip: str, vpc_cidrs: list[str], excluded: list[str], cni: tuple[int, ...]) -> None:
    # v1.16.2+ single-chain layout; earlier releases chained one `! -d <cidr>` per CIDR, with the same effect.
    chain = nat.chain("AWS-SNAT-CHAIN-0")
    nat.add(f'POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j {chain}')
    nat.rules.extend(f'-A {chain} -d {c} -m comment --comment "AWS SNAT CHAIN" -j RETURN' for c in vpc_cidrs)
    nat.rules.extend(f'-A {chain} -d {c} -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN' for c in excluded)
    randomize = " --random-fully" if cni >= PRNG_SINCE else " --random"
    nat.add(
        f'{chain} ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL '
        f"-j SNAT --to-source {primary_ip}{randomize}"
    )


def _connmark_chain(nat: Table, exempt: list[str]) -> None:
    chain = nat.chain("AWS-CONNMARK-CHAIN-0")
    nat.add(f'PREROUTING -i eni+ -m comment --comment "AWS, outbound connections" -j {chain}')
    nat.add(f'PREROUTING -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --mask {CONNMARK}')
    nat.rules.extend(f'-A {chain} -d {c} -m comment --comment "AWS CONNMARK CHAIN" -j RETURN' for c in exempt)
    nat.add(f'{chain} -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark {CONNMARK}/{CONNMARK}')


def _mangle(mangle: Table, primary: str) -> None:
    comment = '-m comment --comment "AWS, primary ENI"'
    # NodePort traffic arriving on the primary ENI is marked so its replies leave by the primary ENI.
    mangle.add(
        f"PREROUTING {comment} -i {primary} -m addrtype --dst-type LOCAL --limit-iface-in "
        f"-j CONNMARK --set-mark {CONNMARK}/{CONNMARK}"
    )
    for prefix in ("eni+", "vlan+"):  # vlan+ (security groups for pods) is inert here: no vlan devices
        mangle.add(f"PREROUTING {comment} -i {prefix} -j CONNMARK --restore-mark --mask {CONNMARK}")
