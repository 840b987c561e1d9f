"""The client factory: one client per service, fake credentials and no proxy for loopback endpoints."""

from __future__ import annotations

import os

import pytest

from peerprobe.backends.aws.clients import ClientFactory, is_loopback, new_session
from peerprobe.errors import ConfigError


def test_clients_are_cached_per_service() -> None:
    factory = ClientFactory("cn-northwest-1")
    assert factory.client("ec2") is factory.client("ec2")
    assert factory.client("ec2") is not factory.client("eks")
    assert factory.client("ec2").meta.config.retries["mode"] == "standard"


def test_loopback_gets_fake_credentials_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALLOOKING")
    factory = ClientFactory("cn-northwest-1", endpoint_url="http://127.0.0.1:5000")
    client = factory.client("ec2")
    assert client.meta.endpoint_url == "http://127.0.0.1:5000"
    assert factory.session().get_credentials().access_key == "testing"
    assert client.meta.config.proxies == {}
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"


def test_loopback_refuses_a_profile() -> None:
    with pytest.raises(ConfigError, match=r"aws\.profile"):
        ClientFactory("cn-northwest-1", profile="prod", endpoint_url="http://localhost:5000").session()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:5000", True),
        ("http://localhost:5000", True),
        ("http://[::1]:5000", True),
        ("https://ec2.cn-northwest-1.amazonaws.com.cn", False),
        ("http://10.0.0.1:5000", False),
    ],
)
def test_is_loopback(url: str, expected: bool) -> None:
    assert is_loopback(url) is expected


def test_loopback_adapters_share_one_factory_per_endpoint() -> None:
    from peerprobe.backends.aws.cloud import aws_cloud
    from peerprobe.backends.ports import Stamp

    stamp = Stamp(experiment="t", environment="lab:t:cn-northwest-1", run_id="r")
    first = aws_cloud(stamp, region="cn-northwest-1", endpoint_url="http://127.0.0.1:5999")
    second = aws_cloud(stamp, region="cn-northwest-1", endpoint_url="http://127.0.0.1:5999")
    other_port = aws_cloud(stamp, region="cn-northwest-1", endpoint_url="http://127.0.0.1:5998")
    assert first.clients is second.clients and first.clients is not other_port.clients


def test_real_endpoints_get_a_factory_each() -> None:
    from peerprobe.backends.aws.cloud import aws_cloud
    from peerprobe.backends.ports import Stamp

    stamp = Stamp(experiment="t", environment="aws:t:cn-northwest-1", run_id="r")
    assert aws_cloud(stamp, region="cn-northwest-1").clients is not aws_cloud(stamp, region="cn-northwest-1").clients


def test_threads_asking_at_once_get_one_client() -> None:
    from concurrent.futures import ThreadPoolExecutor

    factory = ClientFactory("cn-northwest-1", endpoint_url="http://127.0.0.1:5997")
    with ThreadPoolExecutor(max_workers=4) as pool:
        clients = list(pool.map(lambda _: factory.client("ec2"), range(8)))
    assert all(client is clients[0] for client in clients)


def test_sessions_share_one_data_loader() -> None:
    first = new_session(region_name="cn-northwest-1")
    second = new_session(region_name="us-east-1")
    assert first._session.get_component("data_loader") is second._session.get_component("data_loader")


def test_new_sessions_do_not_grow_the_loaders_search_path() -> None:
    before = list(new_session()._session.get_component("data_loader").search_paths)
    after = new_session()._session.get_component("data_loader").search_paths
    assert after == before
    assert len(set(after)) == len(after)


def test_sessions_keep_their_own_credentials_and_region() -> None:
    china = new_session(region_name="cn-northwest-1", aws_access_key_id="a", aws_secret_access_key="b")
    other = new_session(region_name="us-east-1", aws_access_key_id="c", aws_secret_access_key="d")
    assert (china.region_name, china.get_credentials().access_key) == ("cn-northwest-1", "a")
    assert (other.region_name, other.get_credentials().access_key) == ("us-east-1", "c")
