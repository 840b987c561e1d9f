"""The AWS adapter of the Cloud port: one object over one region's clients, stamped with its environment."""

from __future__ import annotations

from peerprobe.backends.aws._base import Waits
from peerprobe.backends.aws._ec2 import InstanceOps
from peerprobe.backends.aws._eks import EksOps
from peerprobe.backends.aws._elb import ElbOps
from peerprobe.backends.aws._iam import IamOps
from peerprobe.backends.aws._leftovers import LeftoverOps
from peerprobe.backends.aws._peering import PeeringOps
from peerprobe.backends.aws._security_groups import SecurityGroupOps
from peerprobe.backends.aws._ssm import SsmOps
from peerprobe.backends.aws._sweep import SweepOps
from peerprobe.backends.aws._transit_gateway import TransitGatewayOps
from peerprobe.backends.aws.clients import ClientFactory, is_loopback
from peerprobe.backends.ports import Stamp


class AwsCloud(
    PeeringOps, TransitGatewayOps, SecurityGroupOps, InstanceOps, EksOps, LeftoverOps, ElbOps, SweepOps, IamOps, SsmOps
):
    """Idempotent ensure/delete operations against AWS, or moto when the factory points at loopback. (EksOps
    builds on LeftoverOps, which builds on ElbOps: a cluster's deletion revisits its controllers' groups.)"""


def aws_cloud(
    stamp: Stamp,
    *,
    region: str,
    profile: str | None = None,
    endpoint_url: str | None = None,
    waits: Waits | None = None,
) -> AwsCloud:
    """Build the adapter over a client factory (the lab passes moto's loopback `endpoint_url`, whose factory
    is shared by the process)."""
    if endpoint_url is not None and profile is None and is_loopback(endpoint_url):
        clients = ClientFactory.for_loopback(region, endpoint_url)
    else:
        clients = ClientFactory(region, profile=profile, endpoint_url=endpoint_url)
    return AwsCloud(clients, stamp=stamp, waits=waits)
