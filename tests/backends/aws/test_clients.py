"""The client factory: one client per service, fake credentials and no proxy for loopback endpoints."""

from __future__ import annotations

import os

import pytest

from peerprobe.backends.aws.clients import ClientFactory, is_loopback
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
