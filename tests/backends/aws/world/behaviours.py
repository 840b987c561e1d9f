"""What AWS (and a cluster on current EKS nodes) does that moto does not, one switchable entry each: its source,
how the world replays it, and the adapter without the fix that absorbs it (`defect`), so a test can show that
switching the fix off fails the run. BEHAVIOURS is the registry; the whole-flow tests switch them all on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from peerprobe.backends.aws import _base, _eks, _iam, _in_use, _peering, _security_groups, _vpc, clients
from peerprobe.backends.aws._base import AwsBase
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._iam import IamOps
from peerprobe.backends.aws._partition import service_principal
from peerprobe.backends.aws._peering import PeeringOps
from peerprobe.backends.aws._ssm import SsmOps
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.aws.kube import KubeCluster
from tests.backends.aws.world.figures import checks
from tests.backends.aws.world.world import World, world_config


@dataclass(frozen=True)
class Behaviour:
    name: str
    source: str  # where AWS documents it, or where it was reported
    install: Callable[[World], None]  # switch it on in the world
    defect: Callable[[pytest.MonkeyPatch, World], None]  # the adapter (or config) without the fix for it

    def __str__(self) -> str:
        return self.name


def _eks_provisioning(world: World) -> None:
    world.eks.cluster_checks = checks("eks cluster active")
    world.eks.nodegroup_checks = checks("eks nodegroup active")


def _no_active_waits(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    wait = AwsBase.wait

    def skipping(self: AwsBase, client: Any, waiter: str, **kwargs: Any) -> None:
        if waiter not in ("cluster_active", "nodegroup_active"):
            wait(self, client, waiter, **kwargs)

    monkeypatch.setattr(AwsBase, "wait", skipping)


ROLE_NOT_YET = (
    "Role with arn: {arn}, could not be assumed because it does not exist or the trusted entity is not correct"
)


def _iam_propagation(world: World) -> None:
    message = ROLE_NOT_YET.format(arn="arn:aws-cn:iam::123456789012:role/peerprobe")
    for operation in ("eks:CreateCluster", "eks:CreateNodegroup"):
        world.behaviour.fail(operation, "InvalidParameterException", message=message, times=checks("iam propagation"))


def _role_race(world: World) -> None:
    world.role_race = True


def _create_role_once(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    def create(ops: IamOps, name: str, *, service: str) -> dict[str, Any]:
        with aws_errors("iam role", name):
            return dict(
                ops.iam.create_role(
                    RoleName=name,
                    Path=_iam.ROLE_PATH,
                    AssumeRolePolicyDocument=_iam.trust_policy(service_principal(ops.clients.region, service)),
                    Tags=ops.tag_list(name),
                )["Role"]
            )

    monkeypatch.setattr(IamOps, "_create_role", create)


def _initiating(world: World) -> None:
    def initiating(answer: dict[str, Any]) -> bool:
        for raw in answer["VpcPeeringConnections"]:
            raw["Status"] = {"Code": "initiating-request", "Message": "Initiating Request to 123456789012"}
        return bool(answer["VpcPeeringConnections"])

    world.behaviour.rewrite("ec2:DescribeVpcPeeringConnections", initiating, times=checks("peering initiating"))


def _accept_what_the_first_look_shows(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    def accept(ops: PeeringOps, peering_id: str, *, name: str) -> None:
        if ops.peering(peering_id).status == "pending-acceptance":
            ops._accept(peering_id, name=name)

    monkeypatch.setattr(PeeringOps, "_accept_if_pending", accept)


def _refuse_once(operation: str, code: str) -> Callable[[World], None]:
    def install(world: World) -> None:
        world.behaviour.fail(operation, code)

    return install


def _unset(module: Any, name: str) -> Callable[[pytest.MonkeyPatch, World], None]:
    return lambda monkeypatch, world: monkeypatch.setattr(module, name, frozenset())


def _pending_then_unknown(world: World) -> None:
    world.nat_checks = checks("nat gateway available")
    unknown = "The instance ID does not exist"
    world.behaviour.fail(
        "ec2:DescribeInstances", "InvalidInstanceID.NotFound", message=unknown, when=lambda p: "InstanceIds" in p
    )


def _waiter_gives_up(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    def once(waiter: Any, kind: str, resource_id: str, params: dict[str, Any]) -> bool:
        with aws_errors(kind, resource_id):
            waiter.wait(WaiterConfig={"Delay": 0, "MaxAttempts": 1}, **params)
        return True

    monkeypatch.setattr(_base, "_waiter_once", once)


def _throttling(world: World) -> None:
    # Bursts of three in a row: botocore's standard mode (max_attempts 5, clients.py) retries up to four times.
    world.behaviour.throttle("ec2:DescribeSubnets", "RequestLimitExceeded", times=3)
    world.behaviour.throttle("ec2:DescribeSecurityGroups", "RequestLimitExceeded", times=3)
    world.behaviour.throttle("elb:DescribeLoadBalancers", "Throttling", times=3)
    world.behaviour.throttle("eks:DescribeCluster", "ThrottlingException", times=3)


def _no_sdk_retries(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    config = clients._botocore_config
    monkeypatch.setattr(clients, "_botocore_config", lambda **kwargs: config(**(kwargs | {"max_attempts": 1})))


def _names_late(world: World) -> None:
    world.controller.hostname_checks = checks("load balancer hostname")
    world.controller.dns_checks = checks("load balancer dns")


def _ready_as_they_are(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    def answer(kube: KubeCluster) -> bool:
        shown = [s.hostname for s in kube.services() if s.type == "LoadBalancer" and s.hostname]
        return all(kube._load_balancer_ready(hostname) for hostname in shown)

    monkeypatch.setattr(KubeCluster, "_load_balancers_answer", answer)


def _targets_settling(world: World) -> None:
    world.controller.nlb_checks = checks("nlb targets healthy")
    world.controller.clb_checks = checks("clb instances in service")


def _ssm_late(world: World) -> None:
    world.ssm.registration_checks = checks("ssm registration")


def _interfaces_linger(world: World) -> None:
    world.eks.interfaces_checks = checks("interfaces released")


def _schema_1_refused(world: World) -> None:
    """Always so in the fake API (current EKS AMIs run containerd 2.x); nothing to switch on."""


def _old_echo_image(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    world.config = world_config(world.config.name, echo="registry.k8s.io/echoserver:1.4")


def _path_keeps_nodes_out(world: World) -> None:
    world.eks.path_keeps_nodes_out = True


def _roles_under_a_path(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    monkeypatch.setattr(_iam, "ROLE_PATH", "/peerprobe/")
    monkeypatch.setattr(_iam, "_refuse_node_role_path", lambda *args: None)


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        "eks-provisioning",
        "CreateCluster (EKS API reference): several minutes to ACTIVE; node groups minutes more (figures.py)",
        _eks_provisioning,
        _no_active_waits,
    ),
    Behaviour(
        "iam-propagation",
        "aws/aws-k8s-tester#232; terraform-provider-aws retries CreateCluster on it (internal/service/eks/cluster.go)",
        _iam_propagation,
        lambda monkeypatch, world: monkeypatch.setattr(_eks, "role_not_visible", lambda error: False),
    ),
    Behaviour(
        "iam-role-race",
        "both create-cluster steps create the shared roles at once: the loser's CreateRole is EntityAlreadyExists",
        _role_race,
        _create_role_once,
    ),
    Behaviour(
        "peering-initiating-request",
        "VPC Peering Guide, peering lifecycle: initiating-request before pending-acceptance",
        _initiating,
        _accept_what_the_first_look_shows,
    ),
    Behaviour(
        "peering-accept-not-found",
        "hashicorp/terraform-provider-aws#30423: AcceptVpcPeeringConnection InvalidVpcPeeringConnectionID.NotFound",
        _refuse_once("ec2:AcceptVpcPeeringConnection", "InvalidVpcPeeringConnectionID.NotFound"),
        _unset(_peering, "ACCEPT_NOT_YET_KNOWN"),
    ),
    Behaviour(
        "new-group-not-found",
        "EC2 API, Eventual consistency: InvalidGroup.NotFound right after CreateSecurityGroup; boto/boto3#620",
        _refuse_once("ec2:AuthorizeSecurityGroupIngress", "InvalidGroup.NotFound"),
        _unset(_security_groups, "GROUP_NOT_YET_KNOWN"),
    ),
    Behaviour(
        "nat-subnet-not-found",
        "openshift/hypershift#711 (fixed by waiting, #1034); gardener/gardener-extension-provider-aws#1947",
        _refuse_once("ec2:CreateNatGateway", "InvalidSubnetID.NotFound"),
        _unset(_vpc, "NAT_PARTS_NOT_YET_KNOWN"),
    ),
    Behaviour(
        "waiter-times-out-once",
        "a NAT gateway pending for minutes; RunInstances' id unknown to the first DescribeInstances (EC2 API, "
        "Eventual consistency): a botocore waiter's attempt ends 'Max attempts exceeded' (WaiterError)",
        _pending_then_unknown,
        _waiter_gives_up,
    ),
    Behaviour(
        "throttling-bursts",
        "EC2 API, Request throttling (RequestLimitExceeded); ELB and EKS Throttling(Exception); boto3 guide, Retries",
        _throttling,
        _no_sdk_retries,
    ),
    Behaviour(
        "load-balancer-names-late",
        "cloud-provider-aws sets the Service's status.loadBalancer once CreateLoadBalancer answered; DNS after",
        _names_late,
        _ready_as_they_are,
    ),
    Behaviour(
        "targets-not-yet-healthy",
        "NLB User Guide, target group health checks (initial); Classic ELB: OutOfService, reason ELB, registering",
        _targets_settling,
        lambda monkeypatch, world: monkeypatch.setattr(AwsExperiment, "_targets_healthy", lambda self, name: True),
    ),
    Behaviour(
        "ssm-registration-late",
        "Systems Manager API reference, SendCommand: InvalidInstanceId while the agent has not registered",
        _ssm_late,
        lambda monkeypatch, world: monkeypatch.setattr(SsmOps, "wait_ssm_online", lambda self, instance_id: None),
    ),
    Behaviour(
        "interfaces-linger",
        "terraform-provider-aws#9495, eksctl-io/eksctl#7589: DependencyViolation until EKS's interfaces go",
        _interfaces_linger,
        lambda monkeypatch, world: monkeypatch.setattr(_in_use, "in_use", lambda error: False),
    ),
    Behaviour(
        "schema-1-images-refused",
        "containerd 2.0 RELEASES.md: schema 1 images deprecated, removed in 2.1; echoserver:1.4 is one",
        _schema_1_refused,
        _old_echo_image,
    ),
    Behaviour(
        "node-role-path",
        "aws/containers-roadmap#926: nodes of a role under a path never join with aws-auth (CONFIG_MAP)",
        _path_keeps_nodes_out,
        _roles_under_a_path,
    ),
)
