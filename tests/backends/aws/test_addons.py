"""The VPC CNI pinned as the EKS managed add-on vpc-cni, against moto's clusters and the add-on fake
(_eks_addons.py): the highest eksbuild for the cluster's Kubernetes version, a clear error when there is
none, create (taking over aws-node) then ACTIVE, idempotence, an update that keeps aws-node's changed env."""

from __future__ import annotations

from pathlib import Path

import pytest
from moto import mock_aws

from peerprobe import config as config_module
from peerprobe.backends.aws import AwsCloud, _addons
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import EksCluster
from peerprobe.errors import ConfigError, ConflictError, WaitTimeoutError
from tests.backends.aws._eks_addons import Addon, FakeAddons
from tests.backends.aws._fakes import Recorder

ROLE = "arn:aws-cn:iam::123456789012:role/peerprobe/peerprobe-eks"
NAME = "gcr-eksworkshop-private"
REGION = "cn-northwest-1"


def cluster(cloud: AwsCloud, version: str = "1.31") -> EksCluster:
    vpc = cloud.ensure_vpc("vpc1", cidr="172.16.0.0/16")
    subnet = cloud.ensure_subnet(
        "private-a", vpc_id=vpc.id, cidr="172.16.0.0/24", availability_zone=f"{REGION}a", public=False
    )
    return cloud.ensure_cluster(
        NAME, role_arn=ROLE, subnet_ids=[subnet.id], service_cidr="10.100.0.0/16", version=version
    )


MIRROR = "123456789012.dkr.ecr.cn-northwest-1.amazonaws.com.cn/mirror"  # aws-cn nodes pull from ECR mirrors
IMAGES = {"echo": f"{MIRROR}/echoserver:1.10", "busybox": f"{MIRROR}/busybox", "nginx": f"{MIRROR}/nginx"}


def pinned(cni_version: str) -> config_module.ExperimentConfig:
    return config_module.from_mapping({"clusters": {"vpc1": {"cni_version": cni_version}}, "images": IMAGES})


def test_resolve_picks_the_highest_build_offered_for_the_clusters_kubernetes_version(cloud: AwsCloud) -> None:
    # Offered for 1.31: 1.20.4 builds 1, 2 and 10 (11 is 1.33 only), and 1.20.40's build 9.
    assert _addons.resolve_version(cloud, "1.20.4", "1.31", key="clusters.vpc1.cni_version") == "v1.20.4-eksbuild.10"


def test_no_build_of_the_version_is_a_config_error_naming_the_key_and_what_is_available(
    cloud: AwsCloud, eks_addons: FakeAddons
) -> None:
    with pytest.raises(ConfigError) as caught:
        _addons.ensure_vpc_cni(cloud, cluster(cloud), pinned("1.20.9"), "vpc1")
    assert str(caught.value).startswith(
        "clusters.vpc1.cni_version: 1.20.9 has no vpc-cni add-on build for Kubernetes 1.31"
    )
    assert str(caught.value).endswith("available: 1.21.0, 1.20.40, 1.20.4, 1.20.3, 1.19.6")
    assert "CreateAddon" not in eks_addons.operations()


def test_create_takes_over_aws_node_and_waits_until_active(cloud: AwsCloud, eks_addons: FakeAddons) -> None:
    eks_addons.settle_after = 2
    version = _addons.ensure_vpc_cni(cloud, cluster(cloud), pinned("1.20.4"), "vpc1")
    addon = eks_addons.addons[(REGION, NAME)]
    assert (version, addon.version, addon.status) == ("v1.20.4-eksbuild.10", "v1.20.4-eksbuild.10", "ACTIVE")
    create = next(params for operation, params in eks_addons.calls if operation == "CreateAddon")
    assert create["resolveConflicts"] == "OVERWRITE"
    assert eks_addons.operations()[-3:] == ["DescribeAddon"] * 3  # CREATING, CREATING, ACTIVE


def test_a_second_call_changes_nothing(cloud: AwsCloud, eks_addons: FakeAddons) -> None:
    eks = cluster(cloud)
    _addons.ensure_vpc_cni(cloud, eks, pinned("1.20.4"), "vpc1")
    before = len(eks_addons.calls)
    _addons.ensure_vpc_cni(cloud, eks, pinned("1.20.4"), "vpc1")
    assert [op for op, _ in eks_addons.calls[before:]] == ["DescribeAddonVersions", "DescribeAddon", "DescribeAddon"]


def test_an_addon_at_another_version_is_updated_keeping_aws_nodes_changed_env(
    cloud: AwsCloud, eks_addons: FakeAddons
) -> None:
    eks = cluster(cloud)
    # An earlier run pinned 1.20.3 and patched aws-node's SNAT env since.
    eks_addons.addons[(REGION, NAME)] = Addon(NAME, "v1.20.3-eksbuild.12", "ACTIVE", customized=True)
    _addons.ensure_vpc_cni(cloud, eks, pinned("1.20.4"), "vpc1")
    addon = eks_addons.addons[(REGION, NAME)]
    assert (addon.version, addon.status, addon.customized) == ("v1.20.4-eksbuild.10", "ACTIVE", True)
    update = next(params for operation, params in eks_addons.calls if operation == "UpdateAddon")
    assert update["resolveConflicts"] == "PRESERVE"
    assert "CreateAddon" not in eks_addons.operations()


def test_an_update_that_does_not_show_at_once_is_waited_for(cloud: AwsCloud, eks_addons: FakeAddons) -> None:
    eks = cluster(cloud)
    eks_addons.addons[(REGION, NAME)] = Addon(NAME, "v1.20.3-eksbuild.12", "ACTIVE")
    eks_addons.update_lag, eks_addons.settle_after = 1, 0  # first answer after UpdateAddon: ACTIVE at 1.20.3
    _addons.ensure_vpc_cni(cloud, eks, pinned("1.20.4"), "vpc1")
    addon = eks_addons.addons[(REGION, NAME)]
    assert (addon.pending, addon.version, addon.status) == (None, "v1.20.4-eksbuild.10", "ACTIVE")


def test_an_addon_that_never_becomes_active_times_out(cloud: AwsCloud, eks_addons: FakeAddons) -> None:
    eks_addons.settle_after = 10**6
    with pytest.raises(WaitTimeoutError, match=f"eks addon {NAME}/vpc-cni: still CREATING at v1.20.4-eksbuild.10"):
        _addons.ensure_vpc_cni(cloud, cluster(cloud), pinned("1.20.4"), "vpc1")


def test_a_failed_addon_left_by_an_earlier_run_is_a_conflict_naming_its_state(
    cloud: AwsCloud, eks_addons: FakeAddons
) -> None:
    eks = cluster(cloud)
    issue = {"code": "ConfigurationConflict", "message": "Conflicts found"}
    eks_addons.addons[(REGION, NAME)] = Addon(NAME, "v1.20.4-eksbuild.10", "CREATE_FAILED", issues=[issue])
    with pytest.raises(ConflictError, match=r"vpc-cni: is CREATE_FAILED \(ConfigurationConflict: Conflicts found\)"):
        _addons.ensure_vpc_cni(cloud, eks, pinned("1.20.4"), "vpc1")


def test_create_cluster_pins_the_cni_before_the_node_group(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, eks_addons: FakeAddons
) -> None:
    from tests.backends.aws.test_experiment import make

    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # the EKS policies, in the aws-cn partition
    recorder = Recorder()
    recorder.install(monkeypatch)
    with mock_aws():
        experiment = make(ClientFactory(REGION))
        experiment.create_network("vpc1")
        experiment.create_cluster("vpc1")
    calls = [c.split(":", 1)[1] for c in recorder.calls]
    assert calls.index("CreateAddon") < calls.index("CreateNodegroup")
    assert eks_addons.addons[(REGION, NAME)].status == "ACTIVE"


def test_a_run_is_refused_before_anything_exists_when_no_build_of_the_version_is_offered(
    monkeypatch: pytest.MonkeyPatch, eks_addons: FakeAddons
) -> None:
    from peerprobe.backends.aws.experiment import preflight

    recorder = Recorder()
    recorder.install(monkeypatch)
    refused = pytest.raises(ConfigError, match=r"^clusters\.vpc1\.cni_version: 1\.20\.9 has no vpc-cni add-on build")
    with mock_aws(), refused:
        preflight(pinned("1.20.9"), clients=ClientFactory(REGION), creating=True)
    assert "eks:DescribeAddonVersions" in recorder.calls
    assert not [call for call in recorder.calls if call.split(":")[1].startswith(("Create", "Run", "Put"))]


def test_a_drift_check_does_not_ask_for_add_on_versions(eks_addons: FakeAddons) -> None:
    from peerprobe.backends.aws.experiment import preflight

    with mock_aws():
        preflight(pinned("1.20.9"), clients=ClientFactory(REGION))
    assert "DescribeAddonVersions" not in eks_addons.operations()


def test_pod_security_groups_disable_tcp_early_demux_in_the_init_container() -> None:
    config = config_module.from_mapping({"clusters": {"vpc1": {"pod_security_groups": {"pods": ["echo"]}}}})
    assert _addons.configuration_values(config, "vpc1") == '{"init":{"env":{"DISABLE_TCP_EARLY_DEMUX":"true"}}}'
    assert _addons.configuration_values(config, "vpc2") == ""
