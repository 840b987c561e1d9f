"""The agent daemon: binds every listener of the spec inside its namespace, then serves all from one loop.

Readiness is one line on an inherited pipe ("ready", or "error: ..."), written once every socket listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from pathlib import Path

import structlog

from peerprobe.backends.lab.agent import _netns
from peerprobe.backends.lab.agent._handlers import handler_for
from peerprobe.backends.lab.agent.spec import AgentSpec, Listener
from peerprobe.errors import InfrastructureError

BACKLOG = 128
READY = "ready"

log = structlog.get_logger()


def bind(listener: Listener) -> socket.socket:
    """A listening socket for `listener`, created and bound inside its namespace."""
    family = socket.AF_INET6 if ":" in listener.ip else socket.AF_INET
    sock = _netns.new_socket(listener.netns, family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted agent rebinds at once
        sock.bind((listener.ip, listener.port))
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise InfrastructureError(
            f"listener {listener.label}: cannot listen on {listener.ip}:{listener.port} in {listener.netns}: "
            f"{error.strerror}",
            resource="agent-listener",
            resource_id=listener.label,
            state="unbound",
        ) from error
    return sock


async def serve(spec: AgentSpec, *, ready_fd: int | None = None) -> None:
    """Bind all listeners, report readiness, serve until SIGTERM or SIGINT, then close every socket."""
    try:
        servers = [await _start(listener) for listener in spec.listeners]
    except InfrastructureError as error:
        notify(ready_fd, f"error: {error}")
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("agent.ready", listeners=len(servers), pid=os.getpid())
    notify(ready_fd, READY)
    await stop.wait()
    await _shutdown(servers)


async def _start(listener: Listener) -> asyncio.Server:
    server = await asyncio.start_server(handler_for(listener), sock=bind(listener))
    log.info(
        "agent.listening",
        listener=listener.label,
        netns=listener.netns,
        ip=listener.ip,
        port=listener.port,
        kind=listener.kind,
    )
    return server


async def _shutdown(servers: list[asyncio.Server]) -> None:
    for server in servers:
        server.close()
    # Connections in flight get a moment to finish; none of them may hold the exit hostage.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(2):
            await asyncio.gather(*(server.wait_closed() for server in servers))
    log.info("agent.stopped", pid=os.getpid())


def notify(ready_fd: int | None, message: str) -> None:
    if ready_fd is None:
        return
    with contextlib.suppress(OSError):  # the starter may have given up waiting; serving goes on regardless
        os.write(ready_fd, (message.replace("\n", " ") + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(ready_fd)


def write_pid(path: Path) -> None:
    path.write_text(f"{os.getpid()}\n", encoding="utf-8")
