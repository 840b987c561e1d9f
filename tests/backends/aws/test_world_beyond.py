"""Issue 15's topology on the aws backend against AWS as it behaves (world/): custom networking on a secondary
CIDR, a transit gateway in place of the peering and security groups for the echo pod, in one run. Every cell
matches the model (the world's data plane walks it, so this tests the AWS calls and their order, not the data
plane), nothing is left behind. moto's gaps are stood in for in the adapter (tests/backends/aws/
test_transit_gateway.py); the fake Kubernetes API stores the ENIConfigs and the SecurityGroupPolicy as applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config as config_module
from peerprobe.backends.aws import _state
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.steps import VPC_KEYS, EnvironmentRef
from tests.backends.aws._fakes import on_every_session
from tests.backends.aws.world.behaviours import BEHAVIOURS
from tests.backends.aws.world.drive import drive
from tests.backends.aws.world.world import REGION, World, mirrored

POD_CIDR = "100.64.0.0/16"


def beyond_config() -> config_module.ExperimentConfig:
    defaults = config_module.Images()
    images = {key: mirrored(getattr(defaults, key)) for key in ("echo", "busybox", "nginx")}
    vpc1_cluster = {
        "name": "beyond-one",
        "custom_networking": {"enabled": True, "cidr": POD_CIDR},
        "pod_security_groups": {"mode": "strict", "pods": ["echo"]},
    }
    return config_module.from_mapping(
        {
            "name": "beyond",
            "vpcs": {"vpc1": {"cidr": "172.16.0.0/16", "secondary_cidrs": [POD_CIDR]}},
            "clusters": {"vpc1": vpc1_cluster, "vpc2": {"name": "beyond-two"}},
            "peering": {"via": "transit-gateway"},
            "images": images,
        }
    )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    found = World(beyond_config(), BEHAVIOURS).install(monkeypatch)
    called: list[str] = []

    def record(model: Any, http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300:
            called.append(f"{model.service_model.service_name}:{model.name}")

    on_every_session(monkeypatch, lambda session: session.events.register("after-call", record))
    found.called = called  # type: ignore[attr-defined]
    with found:
        yield found


def _operations(world: World) -> list[str]:
    """Every AWS call the run made that succeeded, in order."""
    return list(world.called)  # type: ignore[attr-defined]


def test_custom_networking_a_transit_gateway_and_pod_groups_run_and_clean_up(world: World) -> None:
    assert drive(world) == []
    ec2 = world.plain("ec2")
    live = [g for g in ec2.describe_transit_gateways()["TransitGateways"] if g["State"] not in ("deleted", "deleting")]
    assert live == [], "the transit gateway is left behind"
    assert ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"] == []
    # moto makes a `default_elb_…` group for a classic ELB and keeps it (AWS's lives in the account's default VPC).
    groups = [
        g["GroupName"]
        for g in ec2.describe_security_groups()["SecurityGroups"]
        if g["GroupName"] != "default" and not g["GroupName"].startswith("default_elb_")
    ]
    assert groups == [], f"security groups left behind: {groups}"


def test_the_cni_is_set_and_the_eniconfigs_applied_before_the_node_group(world: World) -> None:
    assert drive(world) == []
    state = world.servers["vpc1"].state
    eni_configs = {name: obj for (_, kind, name), obj in state.objects.items() if kind == "eniconfigs"}
    assert len(eni_configs) == 3 and all(o["spec"]["subnet"].startswith("subnet-") for o in eni_configs.values())
    env = _env(state.objects[("kube-system", "daemonsets", "aws-node")])
    assert env["AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"] == "true"
    assert env["ENI_CONFIG_LABEL_DEF"] == "topology.kubernetes.io/zone"
    assert (env["ENABLE_POD_ENI"], env["POD_SECURITY_GROUP_ENFORCING_MODE"]) == ("true", "strict")
    policy = state.objects[("default", "securitygrouppolicies", "peerprobe-pods")]
    assert policy["spec"]["podSelector"]["matchExpressions"][0]["values"] == ["source-ip-app"]
    operations = _operations(world)
    assert operations.index("ec2:AssociateVpcCidrBlock") < operations.index("eks:CreateCluster")
    first_nodegroup = operations.index("eks:CreateNodegroup")
    assert operations.index("ec2:CreateSecurityGroup") < first_nodegroup


def test_the_transit_gateway_is_deleted_after_its_attachments(world: World) -> None:
    assert drive(world) == []
    operations = _operations(world)
    last_attachment = max(i for i, op in enumerate(operations) if op == "ec2:DeleteTransitGatewayVpcAttachment")
    assert last_attachment < operations.index("ec2:DeleteTransitGateway")
    assert operations.index("ec2:DeleteTransitGateway") < operations.index("ec2:DeleteSubnet")


def _env(daemonset: dict[str, Any]) -> dict[str, str]:
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_cleanup_from_tags_alone_finds_the_gateway_and_the_pods_group(world: World) -> None:
    ref = EnvironmentRef(backend="aws", config=world.config, run_id="drive")
    experiment = AwsExperiment(ref, clients=ClientFactory(REGION))
    for vpc in VPC_KEYS:
        experiment.create_network(vpc)
    for vpc in VPC_KEYS:
        experiment.create_cluster(vpc)
    experiment.peer_vpcs()
    _state.forget(experiment.environment)  # the state directory lost the ids

    AwsExperiment(ref, clients=ClientFactory(REGION)).cleanup()
    ec2 = world.plain("ec2")
    live = [g for g in ec2.describe_transit_gateways()["TransitGateways"] if g["State"] not in ("deleted", "deleting")]
    assert live == [] and ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"] == []
    assert [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"].endswith("-pods")] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["vpc1", "vpc2"]}])["Vpcs"] == []
