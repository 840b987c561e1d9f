"""The world a whole aws-backend run meets on this machine: moto for AWS, a fake Kubernetes API server per
cluster, the stand-ins for what AWS and Kubernetes do beside their APIs, the data plane, the behaviours switched
on; and what a run is judged by: every cell matching, each resource created once, nothing left behind."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import ExponentialBackoff
from moto import mock_aws

from peerprobe import config as config_module
from peerprobe import topology
from peerprobe.backends import attach
from peerprobe.backends.aws import _ssm
from peerprobe.backends.aws import experiment as aws_experiment
from peerprobe.backends.aws._token import TokenSource
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.aws.kube import NAMESPACE, KubeCluster, api_client, configuration
from peerprobe.backends.ports import EksCluster
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef, VpcKey
from peerprobe.run import predicted_report
from peerprobe.vocabulary import Cell
from peerprobe.wait import AWS, Waits
from tests.backends.aws._fakes import _API_PARAMS, AwsBehaviour, on_every_session
from tests.backends.aws.cluster.fake_api import FakeApiServer, aws_node
from tests.backends.aws.world.controller import Controller
from tests.backends.aws.world.countdown import Countdown
from tests.backends.aws.world.dataplane import DataPlane
from tests.backends.aws.world.standins import FAKE_CA, Eks, Ssm

if TYPE_CHECKING:
    from tests.backends.aws.world.behaviours import Behaviour

REGION = "cn-northwest-1"
PACE_SECONDS = 120  # real seconds a step beside create-cluster waits for CreateCluster (then it goes on regardless)
AMI = "/peerprobe-tests/ami"  # moto serves no /aws/service/ public parameters
# aws-cn nodes reach no public registry: the images come from ECR mirrors in the account (docs/aws.md).
MIRROR = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/mirror"
CNI_IMAGE = "602401143452.dkr.ecr.cn-northwest-1.amazonaws.com.cn/amazon-k8s-cni:v{version}-eksbuild.1"


def mirrored(image: str) -> str:
    return f"{MIRROR}/{image.rsplit('/', 1)[-1]}"


def world_config(name: str, **images: str) -> config_module.ExperimentConfig:
    """The workshop in aws-cn under its own name, its images (the defaults, or `images`) from ECR mirrors."""
    defaults = config_module.Images()
    chosen = {key: mirrored(images.get(key, getattr(defaults, key))) for key in ("echo", "busybox", "nginx")}
    clusters = {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}}
    return config_module.from_mapping({"name": name, "clusters": clusters, "images": chosen})


class _Quiet(ClientFactory):
    """The adapter's factory without the harness's hooks: AWS's own view, for the data plane and the judge."""

    def _new_session(self) -> Any:
        return boto3.session.Session(region_name=self.region)


class World:
    """Use: World(config, behaviours).install(monkeypatch), then `with world:` around the run."""

    def __init__(self, config: config_module.ExperimentConfig, behaviours: Iterable[Behaviour] = ()) -> None:
        self.config = config
        self.environment = EnvironmentRef(backend="aws", config=config, run_id="world").key
        self.plan = topology.plan(config, backend="aws")
        self.behaviour = AwsBehaviour()
        self.creates = Creates()
        self.eks, self.ssm, self.controller = Eks(self), Ssm(self), Controller(self)
        self.data_plane = DataPlane(self)
        self.nat_checks = 0
        self.role_race = False
        self.behaviours = list(behaviours)
        self.servers = {vpc: self._server(vpc) for vpc in VPC_KEYS}
        self.waits = Waits(delay=0, max_attempts=AWS.max_attempts)
        self._mock = mock_aws()
        self._plain: dict[str, Any] = {}
        self._nats: dict[str, Countdown] = {}
        self._raced: set[str] = set()
        self._lock = threading.Lock()
        self._reader: AwsExperiment | None = None
        self._visitor: AwsExperiment | None = None

    # --- setting it up ----------------------------------------------------------------------------------------

    def install(self, monkeypatch: pytest.MonkeyPatch) -> World:
        """Fake credentials, moto's settings, the harness's hooks on every client the adapter builds, and the
        adapter's waits at no pace (every figure is counted in checks, never slept)."""
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(_ssm, "AMI_PARAMETER", AMI)
        self.behaviour.install(monkeypatch)
        on_every_session(monkeypatch, self._hooks)
        monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda backoff, context: 0.0)  # botocore's retries
        resolve = self.controller.resolve
        monkeypatch.setattr(
            aws_experiment, "KubeCluster", functools.partial(KubeCluster, poll_seconds=0, resolver=resolve)
        )
        monkeypatch.setattr(AwsExperiment, "__init__", self._seams(AwsExperiment.__init__))
        monkeypatch.setattr(AwsExperiment, "_node_security_group", self._paced(AwsExperiment._node_security_group))
        for behaviour in self.behaviours:
            behaviour.install(self)
        return self

    def _seams(self, init: Any) -> Any:
        def seamed(experiment: AwsExperiment, ref: EnvironmentRef, **kwargs: Any) -> None:
            kwargs.setdefault("waits", self.waits)
            kwargs.setdefault("poll_seconds", 0)
            kwargs.setdefault("outside", lambda script, budget: self.data_plane.answer("outside", script))
            init(experiment, ref, **kwargs)

        return seamed

    def _paced(self, node_security_group: Any) -> Any:
        """peer-vpcs waits for VPC1's cluster security group beside create-cluster: its first check only once
        create-cluster has asked for the cluster (Eks.until_asked says why)."""

        def paced(experiment: AwsExperiment, vpc: VpcKey) -> str:
            self.eks.until_asked(getattr(experiment.config.clusters, vpc).name, PACE_SECONDS)
            return str(node_security_group(experiment, vpc))

        return paced

    def _hooks(self, session: Any) -> None:
        events = session.events
        for standin in (self.eks, self.ssm, self.controller, self.creates):
            standin.register(events)
        events.register("after-call.ec2.DescribeNatGateways", self._nat_described)
        events.register("before-call.iam.CreateRole", self._role_race)

    def _server(self, vpc: VpcKey) -> FakeApiServer:
        server = FakeApiServer()
        cni = getattr(self.config.clusters, vpc).cni_version
        server.state.objects[("kube-system", "daemonsets", "aws-node")] = aws_node(
            {}, image=CNI_IMAGE.format(version=cni)
        )
        server.state.require_nodes = True
        side = getattr(self.plan, vpc)
        pods = {"source-ip-app": side.echo_pod, "busybox": side.busybox_pod, "nginx": side.nginx_pod}
        server.state.pod_ips = {app: pod.ip for app, pod in pods.items() if pod is not None}
        server.state.controller = self.controller if vpc == "vpc1" else None
        server.state.exec.answer = lambda record: self.data_plane.answer(f"{vpc}-pod", record.command[-1])  # type: ignore[arg-type]
        return server

    def __enter__(self) -> World:
        self._mock.start()
        for server in self.servers.values():
            server.__enter__()
        self.plain("ssm").put_parameter(Name=AMI, Value="ami-0123456789abcdef0", Type="String")
        return self

    def __exit__(self, *args: Any) -> None:
        for server in self.servers.values():
            server.__exit__(*args)
        self._mock.stop()

    # --- what the stand-ins share -------------------------------------------------------------------------------

    def plain(self, service: str) -> Any:
        """A client outside the adapter's factories (no hooks, not recorded): AWS doing its own side."""
        with self._lock:
            if service not in self._plain:
                self._plain[service] = boto3.client(service, region_name=REGION)
            return self._plain[service]

    def server_of(self, cluster: str) -> FakeApiServer:
        return self.servers[self._vpc_of(cluster)]

    def _vpc_of(self, cluster: str) -> VpcKey:
        return next(vpc for vpc in VPC_KEYS if getattr(self.config.clusters, vpc).name == cluster)

    def join_nodes(self, cluster: str) -> None:
        """The node group's nodes register with the cluster (the plan's names and addresses)."""
        vpc = self._vpc_of(cluster)
        self.servers[vpc].state.nodes = [_node_object(node) for node in getattr(self.plan, vpc).nodes]

    def node_instances(self) -> list[str]:
        """VPC1's nodes as a load balancer's targets (instance ids)."""
        return [f"i-0{index:016x}" for index, _ in enumerate(self.plan.vpc1.nodes)]

    def _nat_described(self, http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        for raw in parsed.get("NatGateways", []) if http_response.status_code < 300 else []:
            with self._lock:
                countdown = self._nats.setdefault(raw["NatGatewayId"], Countdown(self.nat_checks))
            if raw.get("State") == "available" and not countdown.look():
                raw["State"] = "pending"

    def _role_race(self, context: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        """The other create-cluster step creates the role first: it exists when this CreateRole arrives."""
        params = context.get(_API_PARAMS, {})
        with self._lock:
            if not self.role_race or params["RoleName"] in self._raced:
                return None
            self._raced.add(params["RoleName"])
        self.plain("iam").create_role(**params)
        self.creates.add("iam:CreateRole", params)
        message = f"Role with name {params['RoleName']} already exists."
        parsed = {
            "Error": {"Code": "EntityAlreadyExists", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 409},
        }
        return AWSResponse("https://aws.invalid/", 409, {}, None), parsed

    # --- reading the world as AWS sees it -----------------------------------------------------------------------

    def reader(self) -> AwsExperiment:
        """The environment read as it is, through quiet clients and straight to the fake API servers."""
        with self._lock:
            if self._reader is None:
                ref = EnvironmentRef(backend="aws", config=self.config, run_id="reader")
                self._reader = AwsExperiment(ref, clients=_Quiet(REGION), kube=self._kube)
            return self._reader

    def visit(self, config: config_module.ExperimentConfig) -> None:
        """From now on the network answers probes as the environment of `config` (attached to this world's
        clusters, its workloads in its own namespace) has it."""
        ref = EnvironmentRef(backend="aws", config=config, run_id="reader")
        kube = functools.partial(self._kube, namespace=attach.namespace(config))
        # Hooked clients: the EKS stand-in describes an attached cluster's VPC only to them (reads only).
        with self._lock:
            self._visitor = AwsExperiment(ref, clients=ClientFactory(REGION), kube=kube)

    def prober(self) -> AwsExperiment:
        """Whose environment the probes meet: a visitor's (World.visit), else this world's own."""
        with self._lock:
            visitor = self._visitor
        if visitor is None:
            return self.reader()
        visitor._found = None  # the clusters as they are now, not as first read
        return visitor

    def _kube(self, vpc: VpcKey, namespace: str = NAMESPACE) -> KubeCluster:
        name = getattr(self.config.clusters, vpc).name
        cluster = EksCluster(
            name=name,
            arn=f"arn:aws-cn:eks:{REGION}:123456789012:cluster/{name}",
            status="ACTIVE",
            endpoint=self.servers[vpc].url,
            version="1.31",
            service_cidr="",
            subnet_ids=(),
            cluster_security_group_id="",
            certificate_authority=FAKE_CA,
        )
        tokens = TokenSource(self.reader().clients.client("sts"), name)
        return KubeCluster(
            api_client(configuration(cluster, tokens)),
            name=name,
            poll_seconds=0,
            resolver=lambda h: [],
            namespace=namespace,
        )

    def judge(self, phases: Mapping[str, Sequence[Cell]]) -> list[str]:
        """Everything wrong with a run: a cell of the model not probed or not matching, a resource created more
        than once, anything left behind. Empty when the run is as it should be."""
        problems = []
        for phase in predicted_report(self.config, backend="aws").phases:
            probed = {_key(cell): cell for cell in phases.get(phase.name, [])}
            problems += [f"{phase.name}: {_key(c)} not probed" for c in phase.cells if _key(c) not in probed]
            problems += [
                f"{phase.name}: {key} {cell.verdict}: {cell.explanation[0] if cell.explanation else ''}"
                for key, cell in probed.items()
                if cell.verdict != "match"
            ]
        problems += [f"created {count} times: {what}" for what, count in self.creates.twice().items()]
        problems += [f"left behind: {kind} {ids}" for kind, ids in self.leftovers().items()]
        return problems

    def leftovers(self) -> dict[str, list[str]]:
        from tests.backends.aws.test_experiment import alive

        clients = self.reader().clients
        found = alive(clients, self.environment)
        elbv2, ec2 = clients.client("elbv2"), clients.client("ec2")
        found["nlbs"] = [lb["LoadBalancerName"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
        found["target groups"] = [g["TargetGroupName"] for g in elbv2.describe_target_groups()["TargetGroups"]]
        found["elastic ips"] = [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]]
        found["interfaces"] = _interfaces_aws_would_keep(ec2)
        return {kind: ids for kind, ids in found.items() if ids}


def _interfaces_aws_would_keep(ec2: Any) -> list[str]:
    """Load balancers' interfaces, and any in a subnet that still exists. moto keeps a terminated instance's
    primary interface and a deleted NAT gateway's, and deletes a VPC that still has them; AWS does neither."""
    subnets = {s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    return [
        f"{e['NetworkInterfaceId']} ({e.get('Description') or 'no description'})"
        for e in ec2.describe_network_interfaces()["NetworkInterfaces"]
        if str(e.get("Description", "")).startswith("ELB ") or e["SubnetId"] in subnets
    ]


def _key(cell: Cell) -> str:
    return "/".join(part for part in (cell.vantage, cell.target, cell.target_node) if part)


def _node_object(node: Any) -> dict[str, Any]:
    addresses = [{"type": "InternalIP", "address": node.ip}]
    if node.public_ip:
        addresses.append({"type": "ExternalIP", "address": node.public_ip})
    labels = {"topology.kubernetes.io/zone": node.az} if node.az else {}
    return {"metadata": {"name": node.name, "labels": labels}, "status": {"addresses": addresses}}


class Creates:
    """Every create that succeeded on the adapter's clients, by what it made (operation and name)."""

    _OPERATIONS = ("RunInstances", "AllocateAddress")
    _NAMES = ("RoleName", "InstanceProfileName", "GroupName", "name")

    def __init__(self) -> None:
        self.made: Counter[str] = Counter()
        self._lock = threading.Lock()

    def register(self, events: Any) -> None:
        events.register("after-call", self._after)

    def _after(self, http_response: Any, model: Any, context: Any, **_: Any) -> None:
        creates = model.name.startswith("Create") and model.name != "CreateTags"
        if http_response.status_code < 300 and (creates or model.name in self._OPERATIONS):
            self.add(f"{model.service_model.service_name}:{model.name}", context.get(_API_PARAMS, {}))

    def add(self, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            self.made[f"{operation} {identity(params)}"] += 1

    def twice(self) -> dict[str, int]:
        return {what: count for what, count in self.made.items() if count > 1}


def identity(params: dict[str, Any]) -> str:
    """What a create call names: its Name tag, its name, its cluster and node group or add-on, or its route."""
    for spec in params.get("TagSpecifications", []):
        for tag in spec.get("Tags", []):
            if tag["Key"] == "Name":
                return str(tag["Value"])
    if "clusterName" in params:
        return f"{params['clusterName']}/{params.get('nodegroupName') or params.get('addonName')}"
    if "RouteTableId" in params:
        return f"{params['RouteTableId']} {params.get('DestinationCidrBlock')}"
    return next((str(params[key]) for key in Creates._NAMES if key in params), repr(sorted(params)))
