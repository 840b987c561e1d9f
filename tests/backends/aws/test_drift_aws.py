"""The drift check's library path on the aws backend, end to end against moto and a fake Kubernetes API server
per cluster (the real kubernetes client): the live configuration read back, changes made behind peerprobe's
back (aws-node's env like `kubectl set env`, a peer rule revoked in EC2) in the diff against the baseline and
in the model's view, and whether the environment a drift check needs exists. The drift flow itself needs a
Prefect server; tests/flows/test_drift.py runs it on the lab."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config as config_module
from peerprobe import drift, snapshot
from peerprobe.backends.aws import _state
from peerprobe.backends.aws._state import NetworkIds
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.errors import NotFoundError
from peerprobe.run import predicted_report
from tests.backends.aws.cluster.fake_api import FakeApiServer, aws_node
from tests.backends.aws.cluster.test_kube import connect
from tests.backends.aws.test_experiment import built, make

PEER_CIDR = "192.168.0.0/16"
EXTERNAL_SNAT = "AWS_VPC_K8S_CNI_EXTERNALSNAT"


def api_server(prefix: str, count: int) -> FakeApiServer:
    server = FakeApiServer()
    server.state.objects[("kube-system", "daemonsets", "aws-node")] = aws_node({"WARM_ENI_TARGET": "1"})
    server.state.nodes = [
        {
            "metadata": {"name": f"ip-{prefix.replace('.', '-')}-{96 + i}-20", "labels": {}},
            "status": {"addresses": [{"type": "InternalIP", "address": f"{prefix}.{96 + i}.20"}]},
        }
        for i in range(count)
    ]
    return server


@pytest.fixture
def servers() -> Iterator[dict[str, FakeApiServer]]:
    with api_server("172.16", 3) as vpc1, api_server("192.168", 2) as vpc2:
        yield {"vpc1": vpc1, "vpc2": vpc2}


@pytest.fixture
def kept(aws: ClientFactory, servers: dict[str, FakeApiServer]) -> AwsExperiment:
    """What `peerprobe run --backend aws --keep` leaves: every step done, nothing removed. No name is resolved
    (the load balancers' hostnames "resolve" to a stand-in address)."""
    kubes = {key: connect(server, resolver=lambda host: ["10.0.0.1"]) for key, server in servers.items()}
    experiment = make(aws, config_module.load(), kubes)  # type: ignore[arg-type]  # the real client, not FakeKube
    built(experiment, aws.client("ec2"))
    experiment.deploy_apps()
    experiment.expose_services()
    return experiment


def texts(before: snapshot.ConfigSnapshot, after: snapshot.ConfigSnapshot) -> list[str]:
    return [entry["text"] for entry in snapshot.diff(before, after)]


def revoke_peer_rule(experiment: AwsExperiment, port: int) -> None:
    group = _state.load(experiment.environment).clusters["vpc1"].security_group
    experiment.cloud.ec2.revoke_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": PEER_CIDR}]}],
    )


def test_the_snapshot_reads_the_live_configuration_back(kept: AwsExperiment) -> None:
    live = kept.snapshot()
    assert {key: (c.cni_version, c.aws_node) for key, c in live.clusters.items()} == {
        "vpc1": ("1.20.4", {"WARM_ENI_TARGET": snapshot.REDACTED}),  # the model reads no other value (below)
        "vpc2": ("1.20.4", {"WARM_ENI_TARGET": snapshot.REDACTED}),
    }
    assert set(live.services) == {"cluster-ip", "nodeport", "load-balancer", "internal-nlb", "headless", "nginx-nlb"}
    assert snapshot.peer_rule_ports(live, group="vpc1-nodes", peer_cidr=PEER_CIDR) == [32227, 8080]
    assert "peer-host" in live.security_groups and snapshot.peering_active(live)


def test_a_service_whose_manifest_names_no_type_is_a_cluster_ip(kept: AwsExperiment) -> None:
    assert kept.snapshot().services["headless"].type == "ClusterIP"


def test_aws_node_changed_behind_peerprobes_back_is_in_the_diff(
    kept: AwsExperiment, servers: dict[str, FakeApiServer]
) -> None:
    before = kept.snapshot()
    connect(servers["vpc2"]).patch_aws_node_env([f"{EXTERNAL_SNAT}=true"])  # kubectl set env daemonset aws-node
    after = kept.snapshot()
    assert texts(before, after) == [f"vpc2 aws-node now has {EXTERNAL_SNAT}=true"]
    assert after.snat().vpc2.external_snat is True


def test_the_snapshot_carries_only_the_aws_node_values_the_model_reads(
    kept: AwsExperiment, servers: dict[str, FakeApiServer]
) -> None:
    planted = ["FOO_API_KEY=s3cret", "HTTP_PROXY=http://user:pw@host", f"{EXTERNAL_SNAT}=true"]
    connect(servers["vpc2"]).patch_aws_node_env(planted)
    live = kept.snapshot()
    assert live.clusters["vpc2"].aws_node == {
        EXTERNAL_SNAT: "true",
        "FOO_API_KEY": snapshot.REDACTED,
        "HTTP_PROXY": snapshot.REDACTED,
        "WARM_ENI_TARGET": snapshot.REDACTED,
    }
    assert "s3cret" not in live.model_dump_json() and ":pw@" not in live.model_dump_json()


def test_a_revoked_peer_rule_is_in_the_diff(kept: AwsExperiment) -> None:
    before = kept.snapshot()
    revoke_peer_rule(kept, 8080)
    rule = f"tcp/8080 from {PEER_CIDR} ({snapshot.PEER_RULE_DESCRIPTION})"
    assert texts(before, kept.snapshot()) == [f"security group vpc1-nodes lost {rule}"]


def test_the_model_predicts_without_the_revoked_peer_rule(kept: AwsExperiment) -> None:
    before = snapshot.live_config(kept.config, kept.snapshot()).security_groups.open_from_peer
    revoke_peer_rule(kept, 8080)
    after = snapshot.live_config(kept.config, kept.snapshot()).security_groups.open_from_peer
    assert 8080 in before and 8080 not in after and len(after) == len(before) - 1


def test_the_drift_report_carries_the_changes_since_the_baseline(kept: AwsExperiment) -> None:
    report = predicted_report(kept.config, backend="aws")
    baseline = drift.Baseline(report=report.model_copy(update={"phases": report.phases[:1]}), snapshot=kept.snapshot())
    revoke_peer_rule(kept, 8080)
    judged = drift.against_baseline(report, baseline, kept.snapshot())
    assert [entry["path"] for entry in judged.config_diff or []] == [
        f"security_groups.vpc1-nodes[tcp/8080 from {PEER_CIDR} ({snapshot.PEER_RULE_DESCRIPTION})]"
    ]


def test_nothing_recorded_is_no_environment(aws: ClientFactory) -> None:
    experiment = make(aws)
    assert (experiment.recorded(), experiment.exists()) == (False, False)


def test_a_recorded_vpc_deleted_behind_peerprobes_back_is_named(aws: ClientFactory) -> None:
    experiment = make(aws)
    experiment.create_network("vpc2")
    gone = NetworkIds(key="vpc1", vpc="vpc-0123456789abcdef0", cidr="172.16.0.0/16")
    _state.update(experiment.environment, lambda s: s.model_copy(update={"networks": {**s.networks, "vpc1": gone}}))
    assert experiment.missing_networks() == ["vpc1 vpc-0123456789abcdef0"]
    assert experiment.exists() is False


def test_a_recorded_environment_whose_vpcs_exist_exists(aws: ClientFactory) -> None:
    experiment = make(aws)
    for key in ("vpc1", "vpc2"):
        experiment.create_network(key)
    assert (experiment.recorded(), experiment.missing_networks(), experiment.exists()) == (True, [], True)


def test_a_machine_without_the_state_finds_the_environment_by_its_tags(
    kept: AwsExperiment, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A work pool's pod runs the drift check with an empty state directory."""
    recorded = kept.snapshot()
    stand_in_cluster_group(kept, monkeypatch)
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(state_dir.parent / "a-pod"))
    assert not _state.is_recorded(kept.environment)
    assert kept.snapshot() == recorded
    assert _state.load(kept.environment).networks.keys() == {"vpc1", "vpc2"}


def stand_in_cluster_group(experiment: AwsExperiment, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's EKS assigns no cluster security group; answer as EKS would with the one the test stood in.
    group = _state.load(experiment.environment).clusters["vpc1"].security_group
    vpc1 = experiment.config.clusters.vpc1.name
    described = type(experiment.cloud).cluster

    def cluster(cloud: Any, name: str) -> Any:
        found = described(cloud, name)
        return dataclasses.replace(found, cluster_security_group_id=group) if found and name == vpc1 else found

    monkeypatch.setattr(type(experiment.cloud), "cluster", cluster)


def test_a_snapshot_of_an_environment_that_is_nowhere_names_it(aws: ClientFactory) -> None:
    with pytest.raises(NotFoundError, match=r"no aws environment aws:workshop:cn-northwest-1: no networks recorded"):
        make(aws).snapshot()
