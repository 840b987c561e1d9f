"""The lab's data plane: the two VPCs, their clusters' nodes and pods, NAT and internet gateways and the
peering, built from Linux network namespaces so the kernel's own NAT produces the source addresses.
"""

from peerprobe.backends.lab.net._layout import PEER_HOST_GROUP, node_group
from peerprobe.backends.lab.net._run import check_available, exec_in, spawn_in
from peerprobe.backends.lab.net.lab import build, list_namespaces, teardown
from peerprobe.backends.lab.net.model import Eni, LabNet, NodeNet, PodNet, SecurityGroupRule, VpcKey, VpcNet
from peerprobe.backends.lab.net.peering import set_peering
from peerprobe.backends.lab.net.security_groups import apply_security_groups, echo_port_rule, workshop_rules
from peerprobe.backends.lab.net.snat import apply_snat

__all__ = [
    "PEER_HOST_GROUP",
    "Eni",
    "LabNet",
    "NodeNet",
    "PodNet",
    "SecurityGroupRule",
    "VpcKey",
    "VpcNet",
    "apply_security_groups",
    "apply_snat",
    "build",
    "check_available",
    "echo_port_rule",
    "exec_in",
    "list_namespaces",
    "node_group",
    "set_peering",
    "spawn_in",
    "teardown",
    "workshop_rules",
]
