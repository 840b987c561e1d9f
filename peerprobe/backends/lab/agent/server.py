"""The agent daemon: binds every listener of the spec inside its namespace, then serves all from one loop.

Readiness is one line on an inherited pipe ("ready", or "error: ..."), written once every socket listens. On
SIGHUP it re-reads the spec, closes the listeners it no longer names, binds the new ones, and says so in the
spec's status file (spec.py), so that new Services cost a reload, not a new process.
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
from peerprobe.backends.lab.agent import spec as agent_spec
from peerprobe.backends.lab.agent._handlers import handler_for
from peerprobe.backends.lab.agent.spec import AgentSpec, Listener
from peerprobe.errors import InfrastructureError, PeerprobeError

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


async def serve(spec: AgentSpec, *, ready_fd: int | None = None, spec_path: Path | None = None) -> None:
    """Bind all listeners, report readiness, serve until SIGTERM or SIGINT (reloading `spec_path` on each
    SIGHUP), then close every socket."""
    try:
        servers = {listener: await _start(listener) for listener in spec.listeners}
    except InfrastructureError as error:
        notify(ready_fd, f"error: {error}")
        raise
    stop, hangups = asyncio.Event(), asyncio.Queue[None]()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, hangups.put_nowait, None)
    reloader = asyncio.create_task(_reload_on_hangup(servers, hangups, spec_path))
    log.info("agent.ready", listeners=len(servers), pid=os.getpid())
    notify(ready_fd, READY)
    await stop.wait()
    reloader.cancel()
    await _shutdown(list(servers.values()))


async def _reload_on_hangup(
    servers: dict[Listener, asyncio.Server], hangups: asyncio.Queue[None], spec_path: Path | None
) -> None:
    while True:
        await hangups.get()
        if spec_path is not None:
            with contextlib.suppress(OSError):  # no status file written: the reloader's wait says so in time
                await reload(servers, spec_path)


async def reload(servers: dict[Listener, asyncio.Server], spec_path: Path) -> None:
    """Serve what the spec names now; the answer goes to the spec's status file, tagged with its digest."""
    text = b""
    try:
        text = spec_path.read_bytes()
        closed = await _serve_only(servers, agent_spec.parse(text, spec_path).listeners)
    except (OSError, PeerprobeError) as error:
        log.error("agent.reload_failed", spec=str(spec_path), error=str(error))
        message = f"error: {error}"
    else:
        log.info("agent.reloaded", listeners=len(servers), closed=closed)
        message = READY
    agent_spec.write_status(spec_path, agent_spec.ReloadStatus(digest=agent_spec.digest(text), message=message))


async def _serve_only(servers: dict[Listener, asyncio.Server], wanted: tuple[Listener, ...]) -> int:
    """Unchanged listeners keep their sockets (and connections in flight); returns how many were closed."""
    gone = [listener for listener in servers if listener not in wanted]
    for listener in gone:  # first: a changed listener rebinds the port its old version held
        servers.pop(listener).close()
    for listener in wanted:
        if listener not in servers:
            servers[listener] = await _start(listener)
    return len(gone)


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
