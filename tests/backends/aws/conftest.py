"""In-process moto for the AWS adapter tests: fake credentials, no instance metadata, no waiting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from peerprobe.backends.aws import AwsCloud, Waits, _ssm, aws_cloud
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.ports import Stamp
from tests.backends.aws._eks_addons import FakeAddons
from tests.backends.aws._fakes import AwsBehaviour, Recorder

# China (Ningxia): the workshop's region; moto serves it under the aws-cn partition.
REGION = "cn-northwest-1"
ENVIRONMENT = "aws:workshop:cn-northwest-1"
STAMP = Stamp(experiment="workshop", environment=ENVIRONMENT, run_id="run-1")
AMI = "/peerprobe-tests/ami"  # moto serves no /aws/service/ public parameters, and refuses to have them put


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
def behaviour(monkeypatch: pytest.MonkeyPatch) -> AwsBehaviour:
    """AWS's own behaviour where moto's differs (refusals, states on their way), scripted per test; installed
    before any client of `cloud` or `aws` exists, so every one of them goes through it."""
    found = AwsBehaviour()
    found.install(monkeypatch)
    return found


@pytest.fixture
def cloud(behaviour: AwsBehaviour) -> Iterator[AwsCloud]:
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


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """Every operation the factories made from now on call, in order."""
    found = Recorder()
    found.install(monkeypatch)
    return found


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def aws(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, recorder: Recorder, behaviour: AwsBehaviour
) -> Iterator[ClientFactory]:
    """A whole account in moto for the AwsExperiment tests: its own state directory, the region's managed
    policies (arn:aws-cn:...), and the AMI parameter the EC2 host is launched from."""
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(state_dir))
    monkeypatch.setattr(_ssm, "AMI_PARAMETER", AMI)
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    with mock_aws():
        clients = ClientFactory(REGION)
        clients.client("ssm").put_parameter(Name=AMI, Value="ami-0123456789abcdef0", Type="String")
        yield clients
