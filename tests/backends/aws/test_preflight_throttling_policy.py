"""Preflight without credentials creates nothing and calls nothing; a throttled call is retried by botocore's
standard mode and succeeds; and docs/iam-policy.json allows exactly what the aws backend calls."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from peerprobe import config as config_module
from peerprobe.backends.aws import _ssm
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import preflight, role_name
from peerprobe.errors import CredentialsError
from tests.backends.aws._fakes import AwsBehaviour, Recorder, service
from tests.backends.aws.conftest import AMI, REGION
from tests.backends.aws.test_experiment import built, kube_for, make

ROOT = Path(__file__).resolve().parents[3]
POLICY = ROOT / "docs" / "iam-policy.json"
ADAPTER = ROOT / "peerprobe" / "backends" / "aws"
# Permissions AWS checks without an API call of that name: passing roles, tag-on-create, service-linked roles.
IMPLIED = {
    "iam:PassRole": "CreateCluster, CreateNodegroup and RunInstances pass our roles",
    "iam:TagRole": "CreateRole with Tags",
    "iam:TagInstanceProfile": "CreateInstanceProfile with Tags",
    "eks:TagResource": "CreateCluster, CreateNodegroup and CreateAddon with tags",
    "iam:CreateServiceLinkedRole": "the first EKS cluster, node group or load balancer in an account",
}
SIGNING_TO_IAM = {"elasticloadbalancing": "elasticloadbalancing"}


def test_preflight_without_credentials_is_a_credentials_error_and_calls_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    recorder = Recorder()
    recorder.install(monkeypatch)
    with pytest.raises(CredentialsError, match="nothing was created") as caught:
        preflight(config_module.load())
    assert caught.value.exit_code == 2
    assert recorder.calls == []


def test_cli_preflight_exits_2_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from peerprobe import cli

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(typer.Exit) as caught:
        cli._preflight("aws", config_module.load())
    assert caught.value.exit_code == 2


def test_unknown_region_is_refused_before_any_call() -> None:
    config = config_module.from_mapping({"region": "xx-nowhere-1"})
    with pytest.raises(CredentialsError, match="region"):
        preflight(config, clients=ClientFactory("xx-nowhere-1"))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


def test_a_throttled_call_is_retried_and_succeeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    throttled: list[str] = []

    def throttle_once(request: Any, **kwargs: Any) -> AWSResponse | None:
        if throttled:
            return None
        throttled.append(request.url)
        body = (
            b"<Response><Errors><Error><Code>ThrottlingException</Code><Message>Rate exceeded</Message>"
            b"</Error></Errors><RequestID>r1</RequestID></Response>"
        )
        return AWSResponse(request.url, 400, {}, _Raw(body))

    with mock_aws():
        clients = ClientFactory(REGION)
        ec2 = clients.client("ec2")
        ec2.meta.events.register_first("before-send.ec2.DescribeVpcs", throttle_once)
        result = make(clients).create_network("vpc1")
        assert throttled and result.resources["vpc"].startswith("vpc-")
        assert len(ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["vpc1"]}])["Vpcs"]) == 1


# --- the IAM policy ----------------------------------------------------------------------------------------


def policy_actions() -> set[str]:
    document = json.loads(POLICY.read_text())
    return {a for statement in document["Statement"] for a in statement["Action"]}


@pytest.fixture
def lifecycle_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[str]:
    """Every AWS operation of a whole aws-backend lifecycle against moto: preflight, networks, clusters, the
    EC2 host, peering, a probe through SSM, a snapshot, sweep's find_tagged, and cleanup of a cluster whose
    API server is unreachable (so its load balancers are deleted directly)."""
    from peerprobe.errors import TransientError
    from peerprobe.probes.plan import ProbeSpec

    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    monkeypatch.setattr(_ssm, "AMI_PARAMETER", AMI)
    recorder = Recorder()
    recorder.install(monkeypatch)
    behaviour = AwsBehaviour()  # after the recorder, which must see the calls the behaviour answers
    behaviour.install(monkeypatch)
    # moto serves no DescribeInstanceInformation: the host's agent answers Online, as SSM does once registered.
    behaviour.answer(
        "ssm:DescribeInstanceInformation",
        lambda params: {
            "InstanceInformationList": [{"InstanceId": params["Filters"][0]["Values"][0], "PingStatus": "Online"}]
        },
    )
    with mock_aws():
        clients = ClientFactory(REGION)
        config = config_module.load()
        kubes = kube_for(config)
        experiment = make(clients, config, kubes)
        clients.client("ssm").put_parameter(Name=AMI, Value="ami-0123456789abcdef0", Type="String")
        recorder.calls.clear()  # the test's own setup is not the adapter's
        preflight(config, clients=clients)
        built(experiment, clients.client("ec2"))
        spec = ProbeSpec("vpc2-ec2", "pod-ip", "172.16.96.30", 8080)
        with pytest.raises(Exception, match="no result"):  # moto's SSM runs nothing; the call path is what counts
            experiment.probe("vpc2-ec2", [spec], timeout_seconds=1)
        kubes["vpc1"].services_ = [service("loadbalancer", type_="LoadBalancer", node_port=32497, hostname="lb.elb")]
        experiment.topology()
        experiment.snapshot()
        experiment.cloud.find_tagged(experiment.environment)
        public = experiment._network("vpc1").public_subnets
        clients.client("elb").create_load_balancer(
            LoadBalancerName="left",
            Subnets=public,
            Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
            Tags=[{"Key": "kubernetes.io/cluster/gcr-eksworkshop-private", "Value": "owned"}],
        )

        def unreachable() -> None:
            raise TransientError("gone", resource="cluster", resource_id="c", state="unreachable")

        kubes["vpc1"].on_delete_services = unreachable
        setup = {c for c in recorder.calls if c.split(":")[1] == "CreateLoadBalancer"}
        experiment.cleanup()
    return set(recorder.calls) - setup  # the test's own stand-in for the controller is not ours


def _iam_action(call: str) -> str:
    signing, operation = call.split(":", 1)
    return f"{SIGNING_TO_IAM.get(signing, signing)}:{operation}"


def test_the_policy_allows_every_call_of_the_lifecycle(lifecycle_calls: set[str]) -> None:
    called = {_iam_action(c) for c in lifecycle_calls}
    assert called - policy_actions() == set()


def test_every_action_in_the_policy_is_used(lifecycle_calls: set[str]) -> None:
    """Called in the lifecycle, implied by one that is, or called by the adapter's code (grepped: a waiter, a
    paginator or a method of the right snake_case name), and nothing else."""
    called = {_iam_action(c) for c in lifecycle_calls}
    source = "\n".join(p.read_text() for p in ADAPTER.glob("*.py"))
    unused = set()
    for action in policy_actions() - called - set(IMPLIED):
        snake = botocore.xform_name(action.split(":", 1)[1])
        if f".{snake}(" not in source and f'"{snake}"' not in source:
            unused.add(action)
    assert unused == set()


def _allows(resources: list[str], arn: str) -> bool:
    # IAM's resource wildcards: * matches any run of characters (slashes included), ? one character.
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources)


def test_the_policy_scopes_roles_and_the_instance_profile_to_the_names_peerprobe_gives_them() -> None:
    """Roles and the profile live at the path /, so their ARNs are role/<name> and instance-profile/<name>; and
    GetInstanceProfile of a profile that does not exist yet is authorized against instance-profile/<name> with no
    path at all: a scope of instance-profile/peerprobe/* answers it AccessDenied instead of NoSuchEntity."""
    document = json.loads(POLICY.read_text())
    [own] = [statement for statement in document["Statement"] if statement["Sid"] == "OwnRoles"]
    long_name = config_module.from_mapping({"name": "a-rather-long-experiment-name-ab"})
    for config in (config_module.load(), long_name):
        for kind in ("cluster", "node", "host"):
            assert _allows(own["Resource"], f"arn:aws-cn:iam::123456789012:role/{role_name(config, kind)}")
        assert _allows(own["Resource"], f"arn:aws:iam::123456789012:instance-profile/{role_name(config, 'host')}")
    assert not _allows(own["Resource"], "arn:aws-cn:iam::123456789012:role/someone-elses-role")
    assert not _allows(own["Resource"], "arn:aws-cn:iam::123456789012:instance-profile/someone-elses")
