"""What each kind of listener answers: the echo server's text or nginx's welcome page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import structlog

from peerprobe.backends.lab.agent import _http, _netns
from peerprobe.backends.lab.agent.spec import Listener
from peerprobe.probes import echo

READ_TIMEOUT = 10.0  # a client that opens a connection and says nothing is dropped after this
ECHO_SERVER = "echoserver"  # echoheaders' lua sets `ngx.header["Server"] = "echoserver"`

# The body nginx's stock image serves at / (html/index.html of the nginx distribution).
NGINX_WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
"""

log = structlog.get_logger()


def handler_for(listener: Listener) -> _Handler | _Proxy:
    return _Proxy(listener) if listener.kind == "proxy" else _Handler(listener)


class _Handler:
    """The asyncio.start_server callback of one listener: one request per connection, then close."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                request = await _http.read_request(reader)
            writer.write(self.answer(request, client_address=str(peer[0])))
            await writer.drain()
            log.debug("agent.request", listener=self.listener.label, client=peer[0], target=request.target)
        except (_http.HttpError, asyncio.IncompleteReadError, TimeoutError) as error:
            writer.write(_bad_request())
            log.info("agent.bad_request", listener=self.listener.label, client=peer[0], error=str(error)[:120])
        except ConnectionError as error:
            log.info("agent.connection_lost", listener=self.listener.label, client=peer[0], error=str(error))
        finally:
            await _close(writer)

    def answer(self, request: _http.Request, *, client_address: str) -> bytes:
        head_only = request.method == "HEAD"
        if self.listener.kind == "healthz":
            return _healthz(self.listener, head_only=head_only)
        if self.listener.kind == "nginx":
            return _http.format_response(
                200, NGINX_WELCOME.encode(), content_type="text/html", server="nginx", head_only=head_only
            )
        text = echo.render(
            client_address,
            request.header("host"),
            self.listener.port,  # $server_port: the port this socket listens on, whatever the client dialled
            request.target,
            request.method,
            request.headers,
            request_version=request.version,
            body=request.body.decode("utf-8", "replace") or None,
        )
        return _http.format_response(
            200, text.encode(), content_type="text/plain", server=ECHO_SERVER, head_only=head_only
        )


def _healthz(listener: Listener, *, head_only: bool) -> bytes:
    """kube-proxy's service health server (pkg/proxy/healthcheck/service_health.go): 200 while the node has
    a local endpoint of the Service, 503 otherwise; load balancers' health checks read only the status."""
    namespace, _, name = listener.service.partition("/")
    count = listener.local_endpoints
    body = {"service": {"namespace": namespace, "name": name}, "localEndpoints": count, "serviceProxyHealthy": True}
    status = 200 if count > 0 else 503
    return _http.format_response(
        status, json.dumps(body).encode(), content_type="application/json", server="kube-proxy", head_only=head_only
    )


class _Proxy:
    """A Classic ELB's TCP listener: a new connection from this namespace to `upstream` for each client,
    bytes relayed both ways until each side closes (the backend sees the proxy's address, never the client's)."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        host, _, port = (listener.upstream or "").rpartition(":")
        self.upstream = (host, int(port or 0))

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                sock = _netns.new_socket(self.listener.netns)
                _same_port(sock, int(peer[1]))
                try:
                    await asyncio.get_running_loop().sock_connect(sock, self.upstream)
                except BaseException:
                    sock.close()
                    raise
            up_reader, up_writer = await asyncio.open_connection(sock=sock)
        except (OSError, TimeoutError) as error:
            log.info("agent.proxy.no_backend", listener=self.listener.label, client=peer[0], error=str(error)[:120])
            await _close(writer)  # the client sees the connection close with no reply
            return
        try:
            await asyncio.gather(_relay(reader, up_writer), _relay(up_reader, writer))
        finally:
            await _close(up_writer)
            await _close(writer)


def _same_port(sock: socket.socket, port: int) -> None:
    """Dial from the client's source port where it is free, so that the lab can tell which of the proxy's
    connections carried which client's (lab/observe.py reads both in conntrack); no backend sees ports, and
    where the port is taken the kernel picks one as usual."""
    with contextlib.suppress(OSError):
        sock.bind(("", port))


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One direction: copy until EOF, then half-close, so the other direction can still finish."""
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
    except (ConnectionError, TimeoutError, OSError):
        writer.close()


def _bad_request() -> bytes:
    return _http.format_response(400, b"bad request\n", content_type="text/plain", server=ECHO_SERVER)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
