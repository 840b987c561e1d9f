"""`set_peering`: the VPC peering link between the two VPC routers, present only while the peering is active.

Only the two VPC CIDRs are routed over it (VPC peering basics: no transit, no edge-to-edge routing).
"""

from __future__ import annotations

import structlog

from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net import _run
from peerprobe.backends.lab.net._fabric import peering_lines
from peerprobe.backends.lab.net.model import LabNet

log = structlog.get_logger()


def set_peering(lab: LabNet, active: bool) -> LabNet:
    """Create or remove the peering link and its routes (idempotent); returns the LabNet to persist."""
    one, two = lab.vpcs["vpc1"], lab.vpcs["vpc2"]
    if _run.succeeds(["ip", "-n", one.router_ns, "link", "show", "dev", names.PEERING_IF]):
        # Deleting one end of a veth removes its peer, and with the devices their routes.
        _run.run(_run.Job("remove the peering link", ["ip", "-n", one.router_ns, "link", "del", names.PEERING_IF]))
    if active:
        create = f"link add {names.PEERING_IF} type veth peer name {names.PEERING_IF} netns {two.router_ns}"
        _run.run(_run.ip_batch("peering (vpc1 side)", [create, *peering_lines("vpc1", two)], ns=one.router_ns))
        _run.run(_run.ip_batch("peering (vpc2 side)", peering_lines("vpc2", one), ns=two.router_ns))
    log.info("lab.peering.set", active=active, vpc1=one.cidr, vpc2=two.cidr)
    return lab.model_copy(update={"peering": active})
