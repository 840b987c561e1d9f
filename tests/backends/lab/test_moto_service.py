"""moto as a local service: start, reuse (same pid), stop."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe import statedir
from peerprobe.backends.aws import ClientFactory
from peerprobe.backends.lab import moto_service


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield tmp_path
    moto_service.stop()


def test_start_reuse_stop(state: Path) -> None:
    first = moto_service.ensure_running(timeout=30)
    assert first.endpoint_url.startswith("http://127.0.0.1:")
    assert statedir.read_json(moto_service.STATE_FILE) == {"pid": first.pid, "port": first.port}

    second = moto_service.ensure_running()
    assert second == first
    assert moto_service.endpoint_url() == first.endpoint_url

    assert moto_service.stop() is True
    assert moto_service.status() is None
    assert not (state / moto_service.STATE_FILE).exists()
    assert moto_service.stop() is False


def test_dead_record_is_replaced(state: Path) -> None:
    statedir.write_json(moto_service.STATE_FILE, {"pid": _dead_pid(), "port": 1})
    service = moto_service.ensure_running(timeout=30)
    assert service.port != 1
    assert moto_service.status() == service


def test_adapter_clients_reach_the_service_and_reset_wipes_it(state: Path) -> None:
    service = moto_service.ensure_running(timeout=30)
    ec2 = ClientFactory("cn-northwest-1", endpoint_url=service.endpoint_url).client("ec2")
    ec2.create_vpc(CidrBlock="172.16.0.0/16")
    assert len(ec2.describe_vpcs()["Vpcs"]) == 2  # moto's default VPC and ours
    moto_service.reset(service)
    assert len(ec2.describe_vpcs()["Vpcs"]) == 1


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
