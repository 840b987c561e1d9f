"""moto as a local service: start, reuse (same pid), stop; a busy moto is waited for, never replaced."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from peerprobe import statedir
from peerprobe.backends.aws import ClientFactory
from peerprobe.backends.lab import moto_service
from peerprobe.errors import WaitTimeoutError


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


def test_served_eks_still_checks_a_role_arns_partition(state: Path) -> None:
    """The launcher computes moto's list of partitions once; the check it feeds still refuses what AWS would."""
    service = moto_service.ensure_running(timeout=30)
    eks = ClientFactory("cn-northwest-1", endpoint_url=service.endpoint_url).client("eks")
    vpc_config = {"subnetIds": []}
    eks.create_cluster(name="a", roleArn="arn:aws-cn:iam::123456789012:role/r", resourcesVpcConfig=vpc_config)
    with pytest.raises(eks.exceptions.InvalidParameterException, match="Invalid Role Arn"):
        eks.create_cluster(name="b", roleArn="arn:nowhere:iam::123456789012:role/r", resourcesVpcConfig=vpc_config)


@pytest.fixture
def slow_moto(state: Path) -> Iterator[ThreadingHTTPServer]:
    """A stand-in for a loaded moto, recorded as the state directory's (this process's pid, so alive): it
    answers the health check only after `server.delay` seconds."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(server.delay)  # type: ignore[attr-defined]
            body = json.dumps({"batch_size": 1}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    statedir.write_json(moto_service.STATE_FILE, {"pid": os.getpid(), "port": server.server_address[1]})
    yield server
    statedir.remove(moto_service.STATE_FILE)  # the fixture's teardown must not signal this process
    server.shutdown()
    server.server_close()


def test_a_busy_moto_is_waited_for_not_replaced(slow_moto: ThreadingHTTPServer) -> None:
    slow_moto.delay = 1.5  # type: ignore[attr-defined]
    service = moto_service.ensure_running(timeout=10)
    assert (service.pid, service.port) == (os.getpid(), slow_moto.server_address[1])


def test_a_moto_that_never_answers_is_an_error_naming_it(slow_moto: ThreadingHTTPServer) -> None:
    slow_moto.delay = 5  # type: ignore[attr-defined]
    with pytest.raises(WaitTimeoutError, match=f"pid {os.getpid()} on port {slow_moto.server_address[1]} is running"):
        moto_service.ensure_running(timeout=1.5)
    assert statedir.read_json(moto_service.STATE_FILE) == {"pid": os.getpid(), "port": slow_moto.server_address[1]}


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
