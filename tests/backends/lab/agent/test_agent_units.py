"""The agent's pieces without namespaces: HTTP framing, the echo handler, resolvers, the spec file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from peerprobe.backends.lab.agent import _http, client, spec
from peerprobe.backends.lab.agent._handlers import handler_for
from peerprobe.backends.lab.agent.resolver import NameNotResolved, StaticResolver, as_resolver
from peerprobe.errors import ConfigError
from peerprobe.probes import echo


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def _response(data: bytes) -> _http.Response:
    async def read() -> _http.Response:
        return await _http.read_response(_reader(data))

    return asyncio.run(read())


def test_response_with_length() -> None:
    response = _response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello and more")
    assert (response.status, response.body) == (200, b"hello")


def test_chunked_response_like_nginx_lua() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    assert _response(raw).body == b"hello world"


def test_response_to_end_of_connection() -> None:
    assert _response(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\ngone").body == b"gone"


@pytest.mark.parametrize(
    "raw", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad\r\n\r\n"]
)
def test_unreadable_responses(raw: bytes) -> None:
    with pytest.raises(_http.HttpError):
        _response(raw)


def test_empty_reply_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        _response(b"")


def test_request_like_busybox_wget() -> None:
    assert client.request_bytes(client.host_header("10.100.0.10", 80)) == (
        b"GET / HTTP/1.1\r\nHost: 10.100.0.10\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n"
    )
    assert client.host_header("172.16.1.10", 8080) == "172.16.1.10:8080"
    assert client.host_header("fd00::1", 8080) == "[fd00::1]:8080"


def _answer(listener: spec.Listener, raw: bytes, *, client_address: str = "192.168.3.7") -> _http.Response:
    async def run() -> _http.Response:
        request = await _http.read_request(_reader(raw))
        return await _http.read_response(_reader(handler_for(listener).answer(request, client_address=client_address)))

    return asyncio.run(run())


def test_echo_handler_answers_with_the_listening_port() -> None:
    listener = spec.Listener(netns="pod", ip="172.16.1.10", port=8080, kind="echo")
    response = _answer(listener, b"GET / HTTP/1.1\r\nHost: 172.16.0.5:30080\r\nUser-Agent: Wget\r\n\r\n")
    assert response.status == 200
    assert response.header("connection") == "close"
    fields = echo.parse(response.body.decode())
    assert fields == echo.EchoFields("192.168.3.7", "http://172.16.0.5:8080/", "172.16.0.5:30080")


def test_echo_handler_echoes_a_body() -> None:
    listener = spec.Listener(netns="pod", port=8080)
    response = _answer(listener, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
    assert response.body.decode().endswith("BODY:\nabc")


def test_nginx_handler_serves_the_welcome_page() -> None:
    listener = spec.Listener(netns="ec2", port=80, kind="nginx")
    response = _answer(listener, b"GET / HTTP/1.1\r\nHost: 192.168.1.4\r\n\r\n")
    assert response.status == 200
    assert b"Welcome to nginx!" in response.body
    assert not echo.parse(response.body.decode()).is_echo


def test_static_resolver() -> None:
    resolve = as_resolver({"Echo.Local": ["10.0.0.1"], "empty.local": []})
    assert isinstance(resolve, StaticResolver)
    assert asyncio.run(_resolve(resolve, "echo.local.")) == ["10.0.0.1"]
    for name in ("missing.local", "empty.local"):
        with pytest.raises(NameNotResolved, match=name):
            asyncio.run(_resolve(resolve, name))


async def _resolve(resolve: StaticResolver, name: str) -> list[str]:
    return list(await resolve(name))


def test_spec_round_trip(tmp_path: Path) -> None:
    listeners = [
        spec.Listener(netns="pp-x-pod", ip="172.16.1.10", port=8080, kind="echo", name="echo-pod"),
        spec.Listener(netns="pp-x-ec2", port=80, kind="nginx"),
    ]
    path = tmp_path / "agent.json"
    spec.write(path, listeners)
    assert spec.load(path).listeners == tuple(listeners)
    assert listeners[1].label == "pp-x-ec2/0.0.0.0:80"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema": "peerprobe.agent/v1", "listeners": [{"netns": "a", "port": 0}]}', "listeners.0.port"),
        ('{"schema": "peerprobe.agent/v1", "listeners": [{"netns": "a", "port": 1, "kind": "x"}]}', "listeners.0.kind"),
        ('{"schema": "peerprobe.agent/v1", "listeners": [{"netns": "a", "port": 1, "ip": "1.2"}]}', "listeners.0.ip"),
        ('{"schema": "other", "listeners": []}', "schema: expected"),
        ("{", "agent spec"),
    ],
)
def test_bad_spec_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        spec.load(path)
