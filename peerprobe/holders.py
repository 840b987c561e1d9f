"""Whether a live process holds an environment, in any state directory: a lock file of the environment that a
process has flock-ed, or a holder record (JSON with a `pid`) of a live process. Reads only; never locks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

# Lock and holder files carry the environment's file name (its key with anything but [A-Za-z0-9_.-] as "_",
# as environments/ and aws/ spell it) and say what they are: statedir.locked's `.environments_<slug>.json.lock`
# today; the environment lock's holder record (design.md "Ownership of an environment") is found the same way.
_MARKERS = ("lock", "holder")
_DEPTH = 2  # the state directory and two levels below it (environments/<slug>/, locks/)
_RECORD_BYTES = 64 * 1024


def slug(env_key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", env_key)


def held(state_dir: Path, env_key: str) -> bool:
    """Whether some live process on this machine holds `env_key` of `state_dir` (its lock or holder record)."""
    files = list(_candidates(state_dir, slug(env_key), depth=_DEPTH))
    if not files:
        return False
    locked = _flocked()
    return any(_identity(path) in locked or _live_holder(path) for path in files)


def _candidates(directory: Path, name: str, *, depth: int) -> Iterator[Path]:
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and depth > 0:
                yield from _candidates(Path(entry.path), name, depth=depth - 1)
            elif entry.is_file(follow_symlinks=False) and _names_holder(entry.name, name):
                yield Path(entry.path)


def _names_holder(file_name: str, name: str) -> bool:
    """`name` as a whole word of the file name (lab_x_r is not lab_x_r2's), and a marker of what it is."""
    lowered = file_name.lower()
    whole = re.search(rf"(?<![A-Za-z0-9-]){re.escape(name)}(?![A-Za-z0-9-])", file_name)
    return whole is not None and any(marker in lowered for marker in _MARKERS)


def _identity(path: Path) -> tuple[int, int, int]:
    try:
        found = os.stat(path, follow_symlinks=False)
    except OSError:
        return (-1, -1, -1)
    return (os.major(found.st_dev), os.minor(found.st_dev), found.st_ino)


def _flocked() -> set[tuple[int, int, int]]:
    """Files some process holds a lock on, from /proc/locks (proc(5): `N: FLOCK ADVISORY WRITE pid
    MAJ:MIN:INODE start end`, major and minor in hex; waiters are marked `->` and hold nothing)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return set()
    found = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":
            continue
        with contextlib.suppress(ValueError):
            major, minor, inode = fields[5].split(":")
            found.add((int(major, 16), int(minor, 16), int(inode)))
    return found


def _live_holder(path: Path) -> bool:
    """A holder record: a JSON object whose `pid` is alive here (its `host`, when given, is this machine)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as source:
            data = json.loads(source.read(_RECORD_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
        return False
    host = data.get("host")
    return (host in (None, "", socket.gethostname())) and alive(data["pid"])


def alive(pid: int) -> bool:
    """A running process (a zombie is not: its parent is about to reap it)."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[-1][:1] != "Z"
