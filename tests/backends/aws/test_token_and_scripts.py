"""The EKS token (format, no padding, the signed x-k8s-aws-id header, refresh) and the probe scripts: the
python prober run here against the EC2 host's own echo server script, the busybox script's framing parsed."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from peerprobe.backends.aws import _scripts
from peerprobe.backends.aws._token import REFRESH_AFTER_SECONDS, TokenSource, eks_token, presigned_url, token_from_url
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.errors import ConfigError, InfrastructureError
from peerprobe.probes.plan import ProbeSpec


def test_token_is_k8s_aws_v1_base64url_without_padding_of_the_presigned_url() -> None:
    sts = ClientFactory("cn-northwest-1").client("sts")
    token = eks_token(sts, "gcr-eksworkshop-private")
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    parts = urlsplit(url)
    assert parts.hostname == "sts.cn-northwest-1.amazonaws.com.cn"  # the region's partition, from botocore
    query = parse_qs(parts.query)
    assert query["Action"] == ["GetCallerIdentity"] and query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]


def test_known_presign_encodes_as_aws_eks_get_token_does() -> None:
    url = "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60"
    expected = "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    assert token_from_url(url) == expected
    assert token_from_url(url) == (  # 112 base64 characters: no padding to strip here, but none is ever added
        "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtZWFzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9u"
        "PTIwMTEtMDYtMTUmWC1BbXotRXhwaXJlcz02MA"
    )
    assert token_from_url(url + "0").endswith("MDA") and "=" not in token_from_url(url + "0")


def test_the_header_is_signed_in_and_other_calls_are_untouched() -> None:
    sts = ClientFactory("us-west-2").client("sts")
    first = presigned_url(sts, "a")
    second = presigned_url(sts, "b")
    assert parse_qs(urlsplit(first).query)["X-Amz-Signature"] != parse_qs(urlsplit(second).query)["X-Amz-Signature"]
    plain = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60)
    assert "x-k8s-aws-id" not in parse_qs(urlsplit(plain).query).get("X-Amz-SignedHeaders", [""])[0]


def test_token_source_refreshes_before_the_15_minutes_run_out() -> None:
    now = [0.0]
    source = TokenSource(ClientFactory("cn-northwest-1").client("sts"), "c1", clock=lambda: now[0])
    first = source.token()
    now[0] = REFRESH_AFTER_SECONDS - 1
    assert source.token() == first
    time.sleep(1.1)  # a new signing second, so the URL differs
    now[0] = REFRESH_AFTER_SECONDS + 1
    assert source.token() != first
    assert "k8s-aws" not in repr(source)


@pytest.fixture
def echo_server(tmp_path: Path) -> Iterator[int]:
    """The EC2 host's server script and echo.py, as user data writes them, serving on a loopback port."""
    (tmp_path / "echo.py").write_text(_scripts.echo_module_source())
    (tmp_path / "server.py").write_text(_scripts.echo_server_source())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(tmp_path / "server.py"), str(port), "127.0.0.1"])
    try:
        deadline = time.monotonic() + 30
        while not _listening(port):
            assert process.poll() is None and time.monotonic() < deadline, "the echo server never listened"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)


def _listening(port: int) -> bool:
    with socket.socket() as client:
        return client.connect_ex(("127.0.0.1", port)) == 0


def test_python_prober_against_the_hosts_echo_server(echo_server: int) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
    specs = [
        ProbeSpec("vpc2-ec2", "pod-ip", "127.0.0.1", echo_server),
        ProbeSpec("vpc2-ec2", "cluster-ip", "127.0.0.1", refused_port),
        ProbeSpec("vpc2-ec2", "headless", "no-such-name.invalid", 8080),
    ]
    nonce = _scripts.new_nonce()
    script = _scripts.python_script(specs, timeout_seconds=2, nonce=nonce)
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30).stdout
    ok, refused, dns = _scripts.parse_output(output, specs, nonce=nonce)
    assert (ok.outcome, ok.client_address, ok.host) == ("ok", "127.0.0.1", f"127.0.0.1:{echo_server}")
    assert ok.request_uri == f"http://127.0.0.1:{echo_server}/" and ok.resolved is None
    assert refused.outcome == "refused"
    assert dns.outcome == "dns-error" and dns.resolved == ()


def test_busybox_script_and_its_output() -> None:
    specs = [
        ProbeSpec("vpc1-pod", "headless", "source-ip-app-headless.default.svc.cluster.local", 8080),
        ProbeSpec("vpc1-pod", "cluster-ip", "10.100.128.161", 80),
    ]
    script = _scripts.busybox_script(specs, timeout_seconds=3, nonce="n1")
    assert script.count("\np ") == 2 and "wget -q -T" in script and "nslookup" in script
    output = (
        "==n1 begin 0\nresolved 172.16.96.30\nrc 0\nelapsed 0\n==n1 err 0\n==n1 body 0\n"
        "CLIENT VALUES:\nclient_address=172.16.160.20\ncommand=GET\nreal path=/\nquery=nil\nrequest_version=1.1\n"
        "request_uri=http://source-ip-app-headless.default.svc.cluster.local:8080/\n\nSERVER VALUES:\n"
        "server_version=nginx: 1.10.0 - lua: 10001\n\nHEADERS RECEIVED:\n"
        "host=source-ip-app-headless.default.svc.cluster.local:8080\nBODY:\n-no body in request-\n==n1 end 0\n"
        "==n1 begin 1\nrc 1\nelapsed 3\n==n1 err 1\nwget: download timed out\n==n1 body 1\n\n==n1 end 1\n"
    )
    headless, cluster_ip = _scripts.parse_output(output, specs, nonce="n1")
    assert headless.outcome == "ok" and headless.client_address == "172.16.160.20"
    assert headless.resolved == ("172.16.96.30",)
    assert (cluster_ip.outcome, cluster_ip.detail) == ("timeout", "wget: download timed out")
    with pytest.raises(InfrastructureError, match="cluster-ip"):
        _scripts.parse_output(output.split("==n1 begin 1")[0], specs, nonce="n1")


@pytest.mark.parametrize(
    ("rc", "err", "outcome"),
    [
        (0, "", "ok"),
        (1, "wget: bad address 'x'", "dns-error"),
        (1, "wget: can't connect to remote host: Connection refused", "refused"),
        (8, "wget: server returned error: HTTP/1.1 502 Bad Gateway", "http-error"),
        (143, "", "timeout"),
    ],
)
def test_classify(rc: int, err: str, outcome: str) -> None:
    assert _scripts.classify(rc, err) == outcome


def test_hosts_that_could_break_the_script_are_refused() -> None:
    with pytest.raises(ConfigError):
        _scripts.busybox_script([ProbeSpec("vpc1-pod", "headless", "x';reboot;'", 80)], timeout_seconds=1, nonce="n")


def test_user_data_fits_and_carries_echo_py() -> None:
    data = _scripts.peer_host_user_data()
    assert len(data.encode()) < 16 * 1024  # EC2's limit on user data
    assert data.startswith("#!/bin/bash") and "def render(" in data
