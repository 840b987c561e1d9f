"""One experiment, two worlds: the AWS operations of a lab run and of an aws-backend run (moto, a fake Kubernetes
API) are the same sequence, apart from what the lab itself does on AWS's side, which it names as it does it."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from peerprobe import config, topology
from peerprobe.backends.aws import Waits
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.experiment import Experiment, one_by_one
from peerprobe.backends.lab import cloud as lab_cloud
from peerprobe.backends.lab import standins
from peerprobe.backends.lab.backend import LabExperiment
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from tests.backends.aws._fakes import FakeKube, on_every_session
from tests.backends.lab.conftest import own_config

# What the lab does in moto itself, because on AWS, AWS does it (lab/cloud.py names each as it calls):
LAB_SUPPLIES = {
    "eks cluster security group",  # EKS creates it with the cluster and deletes it with the cluster
    "node group instances",  # the managed node group's Auto Scaling group launches and terminates them
    "load balancer controllers' security-group rules",  # cloud-provider-aws and the Load Balancer Controller
    "the data plane reads the security groups",  # the lab's kernel follows moto's rules...
    "the data plane reads the peering and its routes",  # ...and its peering, as AWS's network does
}


class Calls:
    """`service:Operation` of every call, with what the lab was supplying when it made it (None: a step's)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str | None]] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.made.append((f"{model.service_model.signing_name}:{model.name}", lab_cloud.SUPPLYING.get()))

    def steps(self) -> list[str]:
        return [call for call, supplying in self.made if supplying is None]

    def supplied(self) -> set[str]:
        return {supplying for _, supplying in self.made if supplying is not None}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    recorded = Calls()
    monkeypatch.setattr(ClientFactory, "_shared", {})  # a new factory, so its session is recorded
    on_every_session(monkeypatch, lambda session: session.events.register("before-call", recorded))
    return recorded


def run(experiment: Experiment) -> None:
    """Every step the flow runs, one after the other (so both runs call in one order), then the cleanup."""
    experiment.parts = one_by_one
    for vpc in VPC_KEYS:
        experiment.create_network(vpc)
    for vpc in VPC_KEYS:
        experiment.create_cluster(vpc)
    experiment.create_peer_host()
    experiment.peer_vpcs()
    experiment.deploy_apps()
    experiment.expose_services()
    for phase in experiment.config.phases:
        for vpc in VPC_KEYS:
            snat = experiment.set_snat(vpc, getattr(phase.snat, vpc))
            experiment.wait_snat(vpc, snat, timeout_seconds=30)
    experiment.cleanup()


class Eks:
    """What EKS does beside its API on the aws run: a cluster security group made with the cluster, shown by
    DescribeCluster and deleted with it (through a client the record does not see, as AWS's own work)."""

    def __init__(self, region: str) -> None:
        self.ec2 = boto3.client("ec2", region_name=region)
        self.groups: dict[str, str] = {}

    def install(self, events: Any, *, region: str) -> None:
        standins.install(events, region=region)
        events.register("after-call.eks.CreateCluster", self.created)
        events.register("after-call.eks.DescribeCluster", self.described)
        events.register("after-call.eks.DeleteCluster", self.deleted)

    def created(self, parsed: dict[str, Any], **_: Any) -> None:
        cluster = parsed["cluster"]
        subnet = cluster["resourcesVpcConfig"]["subnetIds"][0]
        vpc = self.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
        name = f"eks-cluster-sg-{cluster['name']}"
        self.groups[cluster["name"]] = self.ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)[
            "GroupId"
        ]

    def described(self, parsed: dict[str, Any], **_: Any) -> None:
        cluster = parsed.get("cluster", {})
        if cluster.get("name") in self.groups:
            cluster["resourcesVpcConfig"]["clusterSecurityGroupId"] = self.groups[cluster["name"]]

    def deleted(self, parsed: dict[str, Any], **_: Any) -> None:
        group = self.groups.pop(parsed["cluster"]["name"], None)
        if group:
            self.ec2.delete_security_group(GroupId=group)


def aws_run(cfg: config.ExperimentConfig, calls: Calls) -> list[str]:
    plan = topology.plan(cfg, backend="aws")
    kubes = {k: FakeKube(name=getattr(cfg.clusters, k).name, nodes_=getattr(plan, k).nodes) for k in VPC_KEYS}
    standins.offer_cni(cfg.clusters.vpc1.cni_version, cfg.clusters.vpc2.cni_version)
    clients = ClientFactory(cfg.region, hooks=Eks(cfg.region).install)
    ref = EnvironmentRef(backend="aws", config=cfg, run_id="ops")
    experiment = AwsExperiment(
        ref, clients=clients, waits=Waits(delay=0, max_attempts=3), kube=kubes.__getitem__, poll_seconds=0
    )
    run(experiment)
    return calls.steps()


@pytest.mark.lab
def test_a_lab_run_calls_aws_as_an_aws_run_does(
    lab_state_dir: Path, calls: Calls, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = own_config("ops")
    with monkeypatch.context() as aws_side:
        aws_side.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "aws-state"))
        aws_side.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        aws_side.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
        with mock_aws():
            aws = aws_run(cfg, calls)
    calls.made.clear()
    run(LabExperiment(EnvironmentRef(backend="lab", config=cfg, run_id="ops")))
    lab = calls.steps()
    assert calls.supplied() == LAB_SUPPLIES
    assert len(aws) > 100 and "eks:CreateNodegroup" in aws and "iam:CreateRole" in aws
    differences = [
        (tag, aws[i1:i2], lab[j1:j2])
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=aws, b=lab, autojunk=False).get_opcodes()
        if tag != "equal"
    ]
    assert differences == [], "\n".join(f"{tag}: aws {a} lab {b}" for tag, a, b in differences)
