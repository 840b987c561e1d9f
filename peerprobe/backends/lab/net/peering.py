"""`set_peering`: the link between the two VPC routers, present only while the peering is active: a peering
connection (one veth), or a transit gateway's attachments (one veth per zone and VPC to its own namespace).

Only the VPCs' blocks are routed over it (VPC peering basics: no transit, no edge-to-edge routing).
"""

from __future__ import annotations

import structlog

from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net import _run
from peerprobe.backends.lab.net._fabric import peering_lines, tgw_lines, tgw_vpc_lines
from peerprobe.backends.lab.net.model import LabNet

log = structlog.get_logger()
TGW_RULE_PRIORITY = 100  # tgw_lines' per-attachment rules


def set_peering(lab: LabNet, active: bool) -> LabNet:
    """Create or remove the link and its routes (idempotent); returns the LabNet to persist."""
    if lab.link == "transit-gateway":
        _set_transit_gateway(lab, active)
    else:
        _set_peering_link(lab, active)
    log.info("lab.peering.set", active=active, via=lab.link, vpc1=lab.vpcs["vpc1"].cidr, vpc2=lab.vpcs["vpc2"].cidr)
    return lab.model_copy(update={"peering": active})


def _set_peering_link(lab: LabNet, active: bool) -> None:
    one, two = lab.vpcs["vpc1"], lab.vpcs["vpc2"]
    if _run.succeeds(["ip", "-n", one.router_ns, "link", "show", "dev", names.PEERING_IF]):
        # Deleting one end of a veth removes its peer, and with the devices their routes.
        _run.run(_run.Job("remove the peering link", ["ip", "-n", one.router_ns, "link", "del", names.PEERING_IF]))
    if active:
        create = f"link add {names.PEERING_IF} type veth peer name {names.PEERING_IF} netns {two.router_ns}"
        _run.run(_run.ip_batch("peering (vpc1 side)", [create, *peering_lines("vpc1", one)], ns=one.router_ns))
        _run.run(_run.ip_batch("peering (vpc2 side)", peering_lines("vpc2", two), ns=two.router_ns))


def _set_transit_gateway(lab: LabNet, active: bool) -> None:
    tgw = lab.tgw_ns
    assert tgw is not None  # layout sets it with link transit-gateway
    attachments = [(key, zone) for key in lab.vpcs for zone in range(lab.zones)]
    present = [
        names.tgw_attachment_if(key, zone)
        for key, zone in attachments
        if _run.succeeds(["ip", "-n", tgw, "link", "show", "dev", names.tgw_attachment_if(key, zone)])
    ]
    if present:
        # Deleting the attachments' devices removes their VPC ends and routes; the per-attachment rules stay.
        lines = [f"link del {device}" for device in present]
        lines += [f"rule del priority {TGW_RULE_PRIORITY}"] * len(present)
        _run.run(_run.ip_batch("remove the transit gateway attachments", lines, ns=tgw))
    if not active:
        return
    for key, vpc in lab.vpcs.items():
        create = [
            f"link add {names.tgw_router_if(zone)} type veth peer name {names.tgw_attachment_if(key, zone)} netns {tgw}"
            for zone in range(lab.zones)
        ]
        _run.run(
            _run.ip_batch(f"attachments of {key}", [*create, *tgw_vpc_lines(key, vpc, lab.zones)], ns=vpc.router_ns)
        )
    _run.run(_run.ip_batch("transit gateway route table", tgw_lines(lab), ns=tgw))
