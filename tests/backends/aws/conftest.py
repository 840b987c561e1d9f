"""In-process moto for the AWS adapter tests: fake credentials, no instance metadata, no waiting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from peerprobe.backends.aws import AwsCloud, Waits, aws_cloud
from peerprobe.backends.ports import Stamp
from tests.backends.aws._eks_addons import FakeAddons

# China (Ningxia): the workshop's region; moto serves it under the aws-cn partition.
REGION = "cn-northwest-1"
ENVIRONMENT = "aws:workshop:cn-northwest-1"
STAMP = Stamp(experiment="workshop", environment=ENVIRONMENT, run_id="run-1")


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto builds ~2,700 default AMIs per region otherwise: a quarter second per test, and no test needs them.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture(autouse=True)
def eks_addons(monkeypatch: pytest.MonkeyPatch) -> FakeAddons:
    """moto serves no EKS add-on API; every test's EKS clients get the stateful fake of it (create_cluster
    pins the VPC CNI as the vpc-cni add-on)."""
    fake = FakeAddons()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def cloud() -> Iterator[AwsCloud]:
    with mock_aws():
        yield aws_cloud(STAMP, region=REGION, waits=Waits(delay=0, max_attempts=3))


@pytest.fixture
def ec2(cloud: AwsCloud) -> Any:
    """A client for reading state back, independent of what the adapter returned."""
    return cloud.clients.client("ec2")


@pytest.fixture
def named(ec2: Any) -> Callable[[str, str, str], list[dict[str, Any]]]:
    """named("describe_vpcs", "Vpcs", "vpc1"): what one EC2 describe call returns for a Name tag."""

    def read(method: str, key: str, name: str) -> list[dict[str, Any]]:
        return list(getattr(ec2, method)(Filters=[{"Name": "tag:Name", "Values": [name]}])[key])

    return read
