"""What each kind of listener answers: the echo server's text or nginx's welcome page."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from peerprobe.backends.lab.agent import _http
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


def handler_for(listener: Listener) -> _Handler:
    return _Handler(listener)


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


def _bad_request() -> bytes:
    return _http.format_response(400, b"bad request\n", content_type="text/plain", server=ECHO_SERVER)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
