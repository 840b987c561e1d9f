"""What EKS and SSM do beside their APIs, which moto does not: a control plane that takes its time and answers on a
fake API server, nodes that join (or do not), the interfaces EKS leaves behind for a while, and the EC2 host's SSM
agent that registers late and runs the probe batches through the data plane."""

from __future__ import annotations

import base64
import threading
import uuid
from typing import TYPE_CHECKING, Any

import boto3
from botocore.awsrequest import AWSResponse

from tests.backends.aws._fakes import _API_PARAMS
from tests.backends.aws.world.countdown import Countdown

if TYPE_CHECKING:
    from tests.backends.aws.world.world import World

FAKE_CA = base64.b64encode(b"a fake cluster CA").decode()


def role_path(arn: str) -> str:
    """The path of an IAM role's ARN: arn:...:role/peerprobe/name -> /peerprobe/; arn:...:role/name -> /."""
    resource = arn.split(":role", 1)[-1]
    return resource.rsplit("/", 1)[0] + "/"


class Eks:
    """EKS beside its API (moto's clusters and node groups are ACTIVE at once, with no cluster security group and
    no control plane): a cluster CREATING for `cluster_checks` looks, then with its endpoint (the cluster's fake API
    server), CA and cluster security group; a node group CREATING for `nodegroup_checks` looks, then ACTIVE with
    its nodes joined, unless (`path_keeps_nodes_out`) its role's ARN has a path: aws-auth then maps an ARN the
    nodes' assumed-role identity never matches (aws/containers-roadmap#926). After DeleteCluster, its interfaces
    keep subnets, groups and the VPC in use for `interfaces_checks` deletions of each."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.cluster_checks = 0
        self.nodegroup_checks = 0
        self.interfaces_checks = 0
        self.path_keeps_nodes_out = False
        self._creating: dict[str, Countdown] = {}
        self._groups: dict[str, str] = {}
        self._vpcs: dict[str, str] = {}
        self._nodegroups: dict[str, tuple[Countdown, str]] = {}
        self._asked: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def register(self, events: Any) -> None:
        events.register("after-call.eks.CreateCluster", self._created)
        events.register("after-call.eks.DescribeCluster", self._described)
        events.register("after-call.eks.DeleteCluster", self._deleted)
        events.register("after-call.eks.CreateNodegroup", self._nodegroup_created)
        events.register("after-call.eks.DescribeNodegroup", self._nodegroup_described)

    def until_asked(self, name: str, timeout_seconds: float) -> None:
        """Block (real time, bounded) until EKS has accepted CreateCluster for `name`. The harness
        counts checks and never sleeps, so a wait beside create-cluster (peer-vpcs waits for the cluster security
        group) could spend all its checks before the other thread even asks; in AWS those checks are 15-60 s apart
        and CreateCluster lands within the step's first seconds."""
        with self._lock:
            if name in self._groups:
                return
        self._asked_event(name).wait(timeout_seconds)

    def _asked_event(self, name: str) -> threading.Event:
        with self._lock:
            return self._asked.setdefault(name, threading.Event())

    def _created(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        cluster = parsed["cluster"]
        ec2 = self.world.plain("ec2")
        subnet = cluster["resourcesVpcConfig"]["subnetIds"][0]
        vpc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
        name = f"eks-cluster-sg-{cluster['name']}-{uuid.uuid4().hex[:10]}"  # EKS's naming (sec-group-reqs.html)
        group = ec2.create_security_group(GroupName=name, Description="EKS created security group", VpcId=vpc)
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group["GroupId"]}]}],
        )
        with self._lock:
            self._groups[cluster["name"]] = group["GroupId"]
            self._vpcs[cluster["name"]] = vpc
            self._creating[cluster["name"]] = Countdown(self.cluster_checks)
        self._asked_event(cluster["name"]).set()

    def _described(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        cluster = parsed.get("cluster") if http_response.status_code < 300 else None
        if not cluster or cluster["name"] not in self._groups:
            return
        cluster["resourcesVpcConfig"]["clusterSecurityGroupId"] = self._groups[cluster["name"]]
        # EKS's VpcConfigResponse names the cluster's VPC (vpcId); moto's answer leaves it out.
        cluster["resourcesVpcConfig"]["vpcId"] = self._vpcs[cluster["name"]]
        if not self._creating[cluster["name"]].look():
            cluster["status"] = "CREATING"
            cluster.pop("endpoint", None)
            cluster.pop("certificateAuthority", None)
            return
        cluster["endpoint"] = self.world.server_of(cluster["name"]).url
        cluster["certificateAuthority"] = {"data": FAKE_CA}

    def _deleted(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        with self._lock:
            group = self._groups.pop(parsed["cluster"]["name"], None)
        if group:
            self.world.plain("ec2").delete_security_group(GroupId=group)
        for operation in ("ec2:DeleteSubnet", "ec2:DeleteSecurityGroup", "ec2:DeleteVpc"):
            if self.interfaces_checks:
                self.world.behaviour.fail(operation, "DependencyViolation", times=self.interfaces_checks)

    def _nodegroup_created(self, http_response: Any, parsed: dict[str, Any], context: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        group = parsed["nodegroup"]
        role = str(context.get(_API_PARAMS, {}).get("nodeRole", group.get("nodeRole", "")))
        with self._lock:
            self._nodegroups[group["clusterName"]] = (Countdown(self.nodegroup_checks), role)

    def _nodegroup_described(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        group = parsed.get("nodegroup") if http_response.status_code < 300 else None
        if not group or group["clusterName"] not in self._nodegroups:
            return
        countdown, role = self._nodegroups[group["clusterName"]]
        if not countdown.look():
            group["status"] = "CREATING"
            return
        if not (self.path_keeps_nodes_out and role_path(role) != "/"):
            self.world.join_nodes(group["clusterName"])


class Ssm:
    """SSM beside its API (moto serves no DescribeInstanceInformation and runs no command): the host's agent
    registers after `registration_checks` looks; SendCommand to it before that is refused InvalidInstanceId
    (SendCommand, Systems Manager API reference); a command is InProgress once, then Success with the output the
    data plane gives for the batch it carries."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.registration_checks = 0
        self._agents: dict[str, Countdown] = {}
        self._commands: dict[str, tuple[str, Countdown]] = {}
        self._lock = threading.Lock()

    def register(self, events: Any) -> None:
        events.register("before-call.ssm.DescribeInstanceInformation", self._information)
        events.register("before-call.ssm.SendCommand", self._send)
        events.register("before-call.ssm.GetCommandInvocation", self._invocation)

    def _agent(self, instance: str) -> Countdown:
        with self._lock:
            return self._agents.setdefault(instance, Countdown(self.registration_checks))

    def _information(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        instance = context[_API_PARAMS]["Filters"][0]["Values"][0]
        online = self._agent(instance).look()
        found = [{"InstanceId": instance, "PingStatus": "Online"}] if online else []
        return _ok({"InstanceInformationList": found})

    def _send(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context[_API_PARAMS]
        instance = params["InstanceIds"][0]
        if not self._agent(instance).arrived():
            return _error("InvalidInstanceId", f"Instances [[{instance}]] not in a valid state for account")
        command_id = str(uuid.uuid4())
        with self._lock:
            self._commands[command_id] = (batch_in(params["Parameters"]["commands"][0]), Countdown(1))
        return _ok({"Command": {"CommandId": command_id, "Status": "Pending", "InstanceIds": [instance]}})

    def _invocation(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        params = context[_API_PARAMS]
        script, countdown = self._commands[params["CommandId"]]
        answer = {"CommandId": params["CommandId"], "InstanceId": params["InstanceId"], "Status": "InProgress"}
        if countdown.look():
            output = self.world.data_plane.answer("vpc2-ec2", script)
            answer |= {"Status": "Success", "StandardOutputContent": output, "StandardErrorContent": ""}
        return _ok(answer)


def batch_in(command: str) -> str:
    """The python batch inside AWS-RunShellScript's heredoc (vantages.heredoc)."""
    return command.split("<<'PEERPROBE_BATCH'\n", 1)[1].rsplit("\nPEERPROBE_BATCH", 1)[0]


def _ok(parsed: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://aws.invalid/", 200, {}, None), parsed | {"ResponseMetadata": {"HTTPStatusCode": 200}}


def _error(code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    return AWSResponse("https://aws.invalid/", 400, {}, None), parsed


def plain_client(service: str, region: str) -> Any:
    """A client outside the adapter's factories (no hooks, not recorded): what AWS does on its own side."""
    return boto3.client(service, region_name=region)
