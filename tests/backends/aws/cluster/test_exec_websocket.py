"""KubeCluster's exec, and the probe path of a pod vantage, through the real kubernetes client (kubernetes.stream
over websocket-client) against the fake API server's websocket exec (fake_exec.py): the v4 channel protocol,
stdout gathered, a non-zero exit raised, a bounded timeout (also for an upgrade never answered), a refused
upgrade, a probe batch end to end.
Everything listens on 127.0.0.1 and the fake runs only commands naming loopback addresses."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config as config_module
from peerprobe.backends.aws import kube as kube_module
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.experiment import AwsExperiment
from peerprobe.backends.aws.kube import KubeCluster
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import InfrastructureError, WaitTimeoutError
from peerprobe.probes import echo
from peerprobe.probes.plan import ProbeSpec
from tests.backends.aws.cluster import fake_exec
from tests.backends.aws.cluster.fake_api import FakeApiServer
from tests.backends.aws.cluster.test_kube import connect

POD = "busybox-abc"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeApiServer]:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    with FakeApiServer() as server:
        server.state.objects[("default", "pods", POD)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": POD, "namespace": "default", "labels": {"app": "busybox"}},
            "spec": {"nodeName": "ip-172-16-160-20", "containers": [{"name": "busybox", "image": "busybox"}]},
            "status": {"phase": "Running", "podIP": "172.16.160.30"},
        }
        yield server


@pytest.fixture
def kube(api: FakeApiServer) -> KubeCluster:
    return connect(api)


def test_the_fakes_accept_key_is_rfc_6455s_worked_example() -> None:
    # RFC 6455 section 1.3: this key must be answered with this accept value.
    assert fake_exec.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_exec_upgrades_with_the_v4_channel_protocol_and_the_eks_token(api: FakeApiServer, kube: KubeCluster) -> None:
    assert kube.exec_in("busybox", "echo hi", timeout_seconds=10) == "hi\n"
    (record,) = api.state.exec.records
    assert (record.pod, record.container, record.command) == (POD, "busybox", ["sh", "-c", "echo hi"])
    assert record.protocols == ["v4.channel.k8s.io"]
    assert record.authorization.startswith("Bearer k8s-aws-v1.")


def test_stdout_is_gathered_across_many_frames_and_stderr_kept_apart(kube: KubeCluster) -> None:
    script = 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; echo noise >&2'
    output = kube.exec_in("busybox", script, timeout_seconds=30)
    assert output == "".join(f"line {i}\n" for i in range(20000))  # ~200 KB: several 32 KiB frames


def test_a_non_zero_exit_is_an_error_with_its_code_and_stderr(kube: KubeCluster) -> None:
    with pytest.raises(InfrastructureError, match=f"exec in default/{POD}: exit status 3; stderr: boom") as caught:
        kube.exec_in("busybox", "echo partial; echo boom >&2; exit 3", timeout_seconds=10)
    assert caught.value.state == "exit 3"


def test_a_command_that_outlives_its_timeout_is_bounded_and_ended(api: FakeApiServer, kube: KubeCluster) -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=f"exec in default/{POD}: still running"):
        kube.exec_in("busybox", "sleep 30", timeout_seconds=0.5)
    assert time.monotonic() - started < 5  # the deadline, plus the websocket close handshake
    (record,) = api.state.exec.records
    assert _eventually(lambda: record.killed and not api.state.exec.processes)


def test_an_upgrade_that_is_never_answered_is_bounded_by_the_timeout(api: FakeApiServer, kube: KubeCluster) -> None:
    api.state.exec.stall_upgrade = True
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=rf"exec in default/{POD}: the websocket was not open \(connect and"):
        kube.exec_in("busybox", "echo hi", timeout_seconds=0.5)
    assert time.monotonic() - started < 10  # the deadline; websocket-client alone waits until the fake lets go (30 s)
    assert api.state.exec.records == []


def test_a_connection_that_arrives_after_the_deadline_is_closed_on_arrival() -> None:
    release, closed = threading.Event(), threading.Event()

    class Late:
        def close(self) -> None:
            closed.set()

    opening = kube_module._Opening(lambda: release.wait(10) and Late())
    with pytest.raises(WaitTimeoutError):
        opening.result(time.monotonic() + 0.1, subject="exec in default/late", pod="late")
    release.set()
    assert closed.wait(5), "nobody would ever close it otherwise"


def test_a_refused_upgrade_keeps_its_http_status(api: FakeApiServer, kube: KubeCluster) -> None:
    api.state.exec.forbidden = True
    with pytest.raises(InfrastructureError, match=r"HTTP 403 .*pods/exec") as caught:
        kube.exec_in("busybox", "echo hi", timeout_seconds=10)
    assert caught.value.state == "forbidden"


def test_the_fake_runs_nothing_that_names_a_non_loopback_address(api: FakeApiServer, kube: KubeCluster) -> None:
    with pytest.raises(InfrastructureError, match=r"refusing a command that names 10\.1\.2\.3"):
        kube.exec_in("busybox", "wget -q -O- http://10.1.2.3:8080/", timeout_seconds=10)
    assert api.state.exec.records[0].exit_code is None


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An echoserver 1.4 stand-in on 127.0.0.1 (the body peerprobe/probes/echo.py renders and parses)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = [(k, v) for k, v in self.headers.items() if k.lower() != "host"]
            body = echo.render(
                self.client_address[0], self.headers.get("Host"), port, self.path, "GET", headers
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(not (shutil.which("wget") and shutil.which("timeout")), reason="needs wget and timeout")
def test_a_probe_batch_from_the_pod_runs_as_one_exec_end_to_end(
    api: FakeApiServer, kube: KubeCluster, echo_port: int
) -> None:
    ref = EnvironmentRef(backend="aws", config=config_module.load(), run_id="run-1")
    experiment = AwsExperiment(ref, clients=ClientFactory("cn-northwest-1"), kube=lambda vpc: kube)
    spec = ProbeSpec("vpc1-pod", "pod-ip", "127.0.0.1", echo_port)
    (result,) = experiment.probe("vpc1-pod", [spec], timeout_seconds=2)
    assert (result.outcome, result.client_address, result.host) == ("ok", "127.0.0.1", f"127.0.0.1:{echo_port}")
    (record,) = api.state.exec.records
    assert record.command[:2] == ["sh", "-c"] and f"p 0 '127.0.0.1' {echo_port} 0" in record.command[2]


def _eventually(check: Any, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
