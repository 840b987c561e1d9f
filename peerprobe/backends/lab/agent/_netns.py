"""Sockets made inside a named network namespace: setns(2) around socket(), then straight back.

A socket keeps the namespace it was created in, so one asyncio loop can serve and dial every namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

from peerprobe.errors import InfrastructureError, LabUnavailableError

NETNS_DIR = Path("/run/netns")  # where `ip netns add` bind-mounts named namespaces
CLONE_NEWNET = 0x40000000  # <linux/sched.h>
# setns(2) changes only the calling thread; thread-self names that thread's namespace, not the main thread's.
_HOME = "/proc/thread-self/ns/net"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(name: str) -> Path:
    """The bind mount of a named namespace; names are checked so none can climb out of /run/netns."""
    if not _NAME.match(name) or ".." in name:
        raise InfrastructureError(f"network namespace name {name!r} is not valid", resource="netns")
    return NETNS_DIR / name


def exists(name: str) -> bool:
    return netns_path(name).exists()


def require(name: str) -> None:
    """Raise the InfrastructureError that names the namespace when it does not exist."""
    os.close(_open(name))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body in namespace `name`; the body must not await, or other tasks would run in there too."""
    target = _open(name)
    home = os.open(_HOME, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, name)
        try:
            yield
        finally:
            _setns(home, "home")
    finally:
        os.close(target)
        os.close(home)


def new_socket(name: str, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    """A non-blocking TCP socket that belongs to namespace `name`."""
    with entered(name):
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    return sock


def _open(name: str) -> int:
    path = netns_path(name)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as error:
        raise InfrastructureError(
            f"network namespace {name} does not exist ({path} is missing)",
            resource="netns",
            resource_id=name,
            state="absent",
        ) from error


def _setns(fd: int, name: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        if code == 1:  # EPERM: setns into a network namespace needs CAP_SYS_ADMIN
            raise LabUnavailableError(f"setns into {name}: not permitted (the lab needs root)", resource="netns")
        raise InfrastructureError(f"setns into {name}: {os.strerror(code)}", resource="netns", resource_id=name)
