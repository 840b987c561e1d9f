"""Names of one lab environment's namespaces and interfaces, derived from its environment key and state directory.

Deterministic, so teardown after a crash finds everything from the key: every namespace starts with the prefix.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from peerprobe import statedir

NETNS_DIR = "/run/netns"  # where `ip netns add` bind-mounts named namespaces (ip-netns(8))
IFNAMSIZ = 15  # Linux interface names: IFNAMSIZ 16 including the terminating NUL

# Route tables of the VPC router namespace (one per AWS route table, plus the VPC's "local" route).
TABLE_VPC_LOCAL = 10  # every ENI address of the VPC; the rest of the CIDR is a blackhole
TABLE_PUBLIC = 100  # public subnets: default to the internet gateway
TABLE_PRIVATE = 101  # private subnets: default to the NAT gateway, or nowhere
TABLE_EDGE = 102  # what arrives from the peering or the internet: local delivery only, never transit

# A transit gateway: in each VPC router, table 110 + zone sends the routed peer blocks to that zone's attachment
# (looked up before the subnet tables; a miss falls through to them); in the transit gateway's namespace, table
# 10 + zone is its route table as seen from an attachment in that zone (it keeps traffic in the zone).
TABLE_TGW_ZONE_BASE = 110
TABLE_TGW_ROUTES_BASE = 10

# Point-to-point links between fabric namespaces; link-local, so they can never clash with a VPC or pool.
ROUTER_IGW = ("169.254.250.1", "169.254.250.2")  # router side, internet gateway side (/30)
PEERING = {"vpc1": "169.254.252.1", "vpc2": "169.254.252.2"}  # /30
IGW_INET = {"vpc1": ("169.254.251.2", "169.254.251.1"), "vpc2": ("169.254.251.6", "169.254.251.5")}
OUTSIDE_GATEWAY = "192.0.2.1"  # the internet's side of the outside client's link (RFC 5737 TEST-NET-1)
POD_GATEWAY = "169.254.1.1"  # the VPC CNI's dummy next hop inside every pod (driver.go)
# A Classic ELB node's proxy dials this address; the node's nat OUTPUT sends it to a healthy instance.
LB_BACKEND_POOL = "169.254.255.1"
LB_LETTER = {"load-balancer": "c", "internal-nlb": "n", "nginx-nlb": "g"}
TABLE_LB_BASE = 200  # VPC router: table 200 + i sends an NLB node's flows back through it

# Interface names in the fabric namespaces.
ROUTER_IGW_IF = "igw"
PEERING_IF = "pcx"
IGW_VPC_IF = "vpc"
IGW_INET_IF = "inet"


def prefix(env_key: str) -> str:
    """`pp-<6 hex>-`: short enough for readable names, distinct per environment key and state directory
    (two state directories may each hold a lab of the same name; their namespaces must not collide)."""
    return prefix_in(owner_dir(), env_key)


def owner_dir() -> Path:
    """This state directory as the lab's names and owner records spell it (symlinks resolved)."""
    return statedir.state_dir().resolve()


def prefix_in(state_dir: Path, env_key: str) -> str:
    """The prefix the environment `env_key` of the state directory `state_dir` gives its namespaces."""
    scope = f"{state_dir}|{env_key}"
    return f"pp-{hashlib.sha256(scope.encode()).hexdigest()[:6]}-"


PREFIX_LENGTH = len("pp-000000-")


def router_ns(pre: str, vpc: str) -> str:
    return f"{pre}{vpc}-router"


def igw_ns(pre: str, vpc: str) -> str:
    return f"{pre}{vpc}-igw"


def nat_ns(pre: str, vpc: str) -> str:
    return f"{pre}{vpc}-natgw"


def node_ns(pre: str, vpc: str, index: int) -> str:
    return f"{pre}{vpc}-node{index}"


def pod_ns(pre: str, vpc: str, pod: str) -> str:
    return f"{pre}{vpc}-pod-{pod}"


def lb_ns(pre: str, kind: str, zone_index: int, guest: str = "") -> str:
    return f"{pre}vpc1-lb-{kind}{guest}-{zone_index}"


def lb_router_if(kind: str, zone_index: int, guest: str = "") -> str:
    """The VPC side of a load balancer node's ENI: lb + the kind's initial + the zone index (+ a visitor's tag)."""
    return _checked(f"lb{LB_LETTER[kind]}{zone_index}{guest}")


def guest_tag(name: str) -> str:
    """A visiting experiment's short tag (attach mode): `g` + 5 hex digits of its name."""
    return "g" + hashlib.sha256(name.encode()).hexdigest()[:5]


def tgw_ns(pre: str) -> str:
    return f"{pre}tgw"


def tgw_router_if(zone: int) -> str:
    """The VPC side of the transit gateway attachment in zone N (in the VPC router)."""
    return _checked(f"tgwa{zone}")


def tgw_attachment_if(vpc: str, zone: int) -> str:
    """The transit gateway's side of VPC `vpc`'s attachment in zone N."""
    return _checked(f"{vpc}a{zone}")


def tgw_link(vpc: str, zone: int) -> tuple[str, str]:
    """The /30 of VPC `vpc`'s attachment in zone N: (VPC router side, transit gateway side); link-local."""
    base = 16 * (0 if vpc == "vpc1" else 1) + 4 * zone
    return f"169.254.253.{base + 1}", f"169.254.253.{base + 2}"


def inet_ns(pre: str) -> str:
    return f"{pre}internet"


def outside_ns(pre: str) -> str:
    return f"{pre}outside"


def ec2_ns(pre: str) -> str:
    return f"{pre}vpc2-ec2"


def eni_router_if(node_index: int, device: int) -> str:
    """The VPC side of node N's ENI D, in the router namespace."""
    return _checked(f"n{node_index}e{device}")


def inet_igw_if(vpc: str) -> str:
    return _checked(f"igw-{vpc}")


def host_veth(cluster: str, pod: str, prefix: str = "eni") -> str:
    """The VPC CNI's host-side name: the prefix + the first 11 hex digits of sha1(namespace.name) (names.go);
    "vlan" for a branch-ENI pod in strict mode, "eni" otherwise (sgpp/utils.go BuildHostVethNamePrefix)."""
    digest = hashlib.sha1(f"{cluster}/default.{pod}".encode(), usedforsecurity=False).hexdigest()
    return _checked(f"{prefix}{digest[:11]}")


def vlan_device(vlan_id: int) -> str:
    """The node's VLAN device of a branch ENI (driver.go buildVlanLinkName)."""
    return _checked(f"vlan.eth.{vlan_id}")


def branch_router_if(node_index: int, vlan_id: int) -> str:
    """The VPC side of node N's branch ENI with that VLAN ID."""
    return _checked(f"n{node_index}b{vlan_id}")


def mac(*parts: str) -> str:
    """A stable locally administered unicast MAC, so the pod's permanent neighbour entry can be written up front."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))


def _checked(name: str) -> str:
    if len(name) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} characters")
    return name
