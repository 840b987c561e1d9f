"""The lab's data plane: the two VPCs, their clusters' nodes and pods, NAT and internet gateways and the
peering, built from Linux network namespaces so the kernel's own NAT produces the source addresses.
"""

from peerprobe.backends.lab.net._layout import PEER_HOST_GROUP, node_group, pod_group
from peerprobe.backends.lab.net._lb import ELB_GROUP, elb_group, lb_tables, program_load_balancers
from peerprobe.backends.lab.net._names import LB_BACKEND_POOL, guest_tag
from peerprobe.backends.lab.net._run import check_available, exec_in, spawn_in
from peerprobe.backends.lab.net.kube_proxy import apply_kube_proxy
from peerprobe.backends.lab.net.lab import attach_load_balancers, build, list_namespaces, teardown
from peerprobe.backends.lab.net.model import (
    Endpoint,
    Eni,
    KubeService,
    LabNet,
    LbNode,
    NodeNet,
    PodNet,
    SecurityGroupRule,
    Visitor,
    VpcKey,
    VpcNet,
)
from peerprobe.backends.lab.net.peering import set_peering
from peerprobe.backends.lab.net.security_groups import apply_security_groups, echo_port_rule, workshop_rules
from peerprobe.backends.lab.net.snat import apply_snat

__all__ = [
    "ELB_GROUP",
    "LB_BACKEND_POOL",
    "PEER_HOST_GROUP",
    "Endpoint",
    "Eni",
    "KubeService",
    "LabNet",
    "LbNode",
    "NodeNet",
    "PodNet",
    "SecurityGroupRule",
    "Visitor",
    "VpcKey",
    "VpcNet",
    "apply_kube_proxy",
    "apply_security_groups",
    "apply_snat",
    "attach_load_balancers",
    "build",
    "check_available",
    "echo_port_rule",
    "elb_group",
    "exec_in",
    "guest_tag",
    "lb_tables",
    "list_namespaces",
    "node_group",
    "pod_group",
    "program_load_balancers",
    "set_peering",
    "spawn_in",
    "teardown",
    "workshop_rules",
]
