"""How long AWS takes for what a first run waits on, in one place, each figure with its source. No test waits:
the harness turns a figure into the number of checks the adapter makes in that time at its production pace."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """`seconds` AWS takes; the adapter's production pace for that wait: a first pause of `first` seconds,
    doubled after each check up to `max_delay` (peerprobe/wait.py's Waits)."""

    seconds: float
    first: float
    max_delay: float = 60.0

    def checks(self) -> int:
        """The checks the adapter makes before `seconds` have passed, each one seeing "not yet" (the pauses
        taken at their mean: jitter draws each between half its ceiling and the ceiling)."""
        elapsed, count = 0.0, 0
        while elapsed < self.seconds:
            count += 1
            elapsed += 0.75 * min(self.max_delay, self.first * 2 ** (count - 1))
        return count


# The adapter's paces (first pause, ceiling): Waits() for EKS, EC2 and NAT waits (15 s, 60 s); the peering's and
# IAM's own (2 s, 5 s); SSM registration (10 s); the kube readiness waits (KubeCluster: 2 s, 15 s); deletions (10 s).
# What AWS documents is quoted with its page; a figure AWS does not document is marked as an estimate.
FIGURES: dict[str, Figure] = {
    # CreateCluster -> ACTIVE. "In most cases, it takes several minutes to create a cluster" (EKS API reference,
    # CreateCluster); it averaged 15 minutes when aws/containers-roadmap#1227 was opened; 10 is an estimate of today's.
    "eks cluster active": Figure(600, first=15),
    # CreateNodegroup -> ACTIVE: instances launched, bootstrapped and Ready; 3-5 minutes, an estimate (EKS documents
    # no figure; the adapter allows 15, NODEGROUP_WAIT_SECONDS).
    "eks nodegroup active": Figure(240, first=15),
    # CreateNatGateway -> available: "pending: The NAT gateway is being created" (EC2 API reference, NatGateway);
    # a minute or two is an estimate (no documented figure).
    "nat gateway available": Figure(120, first=15),
    # RunInstances -> running: about half a minute (an estimate); before that the id can be unknown
    # (InvalidInstanceID.NotFound, EC2 API "Eventual consistency"), which the instance_running waiter retries.
    "instance running": Figure(30, first=15),
    # A new role is refused by EKS ("could not be assumed because it does not exist") for seconds: IAM is
    # eventually consistent ("Changes that I make are not always immediately visible", IAM troubleshooting);
    # aws/aws-k8s-tester#232: gone on the second try.
    "iam propagation": Figure(10, first=5),
    # A same-account peering request shows initiating-request for a few seconds before pending-acceptance
    # (VPC Peering Guide, "VPC peering connection lifecycle").
    "peering initiating": Figure(4, first=2),
    # The SSM agent registers once the instance has booted and its profile's credentials work: one to two
    # minutes, an estimate (SendCommand answers InvalidInstanceId before, Systems Manager API reference, SendCommand).
    "ssm registration": Figure(90, first=10),
    # cloud-provider-aws writes the load balancer's DNS name into the Service's status once CreateLoadBalancer
    # answered: seconds after the Service is applied (an estimate).
    "load balancer hostname": Figure(10, first=2, max_delay=15),
    # A new load balancer's name resolves once its DNS records are published: up to a minute or so after the name
    # shows in the Service, an estimate (ELB documents no figure). Names come before healthy targets.
    "load balancer dns": Figure(60, first=2, max_delay=15),
    # NLB targets stay `initial` while registration completes ("It can take a few minutes for the registration
    # process to complete and health checks to start", NLB User Guide, target group health checks) and until they
    # pass cloud-provider-aws's NLB health checks: interval 30 s, healthy threshold 3 (its defaults,
    # defaultNlbHealthCheckInterval / defaultNlbHealthCheckThreshold): about 3 minutes in all.
    "nlb targets healthy": Figure(180, first=2, max_delay=15),
    # Classic ELB instances are OutOfService (reason ELB, "Instance registration is still in progress") until they
    # pass cloud-provider-aws's ELB health checks: interval 10 s, healthy threshold 2 (defaultElbHCInterval,
    # defaultElbHCHealthyThreshold), after registration: about 30 s.
    "clb instances in service": Figure(30, first=2, max_delay=15),
    # After DeleteCluster, EKS's and the VPC CNI's interfaces are released minutes later (two, an estimate); subnet,
    # group and VPC deletion answer DependencyViolation until then (terraform-provider-aws#9495, eksctl-io/eksctl#7589).
    "interfaces released": Figure(120, first=10),
}


def checks(name: str) -> int:
    return FIGURES[name].checks()
