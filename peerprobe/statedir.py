"""peerprobe's state directory: where long-lived services and environments record what they left running.

`PEERPROBE_STATE_DIR` wins; otherwise `$XDG_STATE_HOME/peerprobe`, falling back to `~/.local/state/peerprobe`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peerprobe import outputs
from peerprobe.errors import UnreadableStateError

ENV_VAR = "PEERPROBE_STATE_DIR"


def state_dir() -> Path:
    """Return the state directory, creating it (mode 0700: it may name pids and ports) if missing."""
    path = _configured_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _configured_dir() -> Path:
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit).expanduser()
    # XDG Base Directory spec: an unset or empty XDG_STATE_HOME means ~/.local/state.
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "peerprobe"


def read_json(name: str) -> dict[str, Any] | None:
    """Return the JSON object stored under `name` in the state directory, or None if absent or unreadable. A
    symlink or anything but a regular file planted under that name is unreadable: never followed, never waited
    on (O_NOFOLLOW, O_NONBLOCK for a FIFO)."""
    try:
        return read_state(name)
    except UnreadableStateError:
        return None


def read_json_at(path: Path) -> dict[str, Any] | None:
    """`read_json` of a file in any state directory (another checkout's, for sweep); creates nothing."""
    try:
        return _read_state_at(path)
    except UnreadableStateError:
        return None


def read_state(name: str) -> dict[str, Any] | None:
    """The JSON object stored under `name`, None when there is none; a file that is there but unusable raises
    UnreadableStateError naming its path and what is wrong with it (a symlink, not a regular file, not UTF-8,
    not JSON, not an object), so a command can say so and fall back on what it finds elsewhere."""
    return _read_state_at(state_dir() / name)


def read_bytes(name: str) -> bytes | None:
    """The bytes stored under `name` in the state directory, or None if absent or unusable (a symlink or
    anything but a regular file planted there: never followed, never waited on)."""
    try:
        return _read_bytes_at(state_dir() / name)
    except UnreadableStateError:
        return None


def _read_state_at(path: Path) -> dict[str, Any] | None:
    content = _read_bytes_at(path)
    return None if content is None else _json_object(path, content)


def _read_bytes_at(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink where a state file belongs
            raise UnreadableStateError(path, "a symlink, not a state file (never followed)") from None
        raise UnreadableStateError(path, error.strerror or str(error)) from error
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise UnreadableStateError(path, "not a regular file")
        return source.read()


def _json_object(path: Path, content: bytes) -> dict[str, Any]:
    if not content.strip():
        raise UnreadableStateError(path, "empty (truncated)")
    try:
        data = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise UnreadableStateError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise UnreadableStateError(path, f"not JSON (truncated or garbage: {error.msg} at byte {error.pos})") from None
    if not isinstance(data, dict):
        raise UnreadableStateError(path, f"a JSON {type(data).__name__}, not an object")
    return data


def json_text(data: dict[str, Any]) -> str:
    """How peerprobe writes a JSON document (state files, baselines, wherever they are kept): indented, keys
    sorted, one trailing newline, so copies of the same document are the same bytes."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write `data` under `name` atomically and owner-only, so a reader never sees half a file; whatever was
    planted under that name (a symlink included) is replaced, never written through."""
    return write_bytes(name, json_text(data).encode("utf-8"))


def write_bytes(name: str, data: bytes) -> Path:
    """Write `data` under `name` as `write_json` does: atomically, owner-only, replacing whatever was there."""
    path = state_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a name may have a subdirectory
    outputs.replace_atomically(path, data, mode=outputs.PRIVATE_MODE)
    return path


def remove(name: str) -> None:
    """Delete `name` from the state directory; an absent file is fine."""
    (state_dir() / name).unlink(missing_ok=True)


QUARANTINE = "quarantine"


def quarantine(name: str) -> Path | None:
    """Move an unreadable file (or a symlink: the link itself, never its target) out of the way, into
    `quarantine/` with the time it was moved, so the next command starts afresh and a person can still look at
    it; returns where it went, None when there was nothing under that name."""
    source = state_dir() / name
    if not source.is_symlink() and not source.exists():
        return None
    target_dir = state_dir() / QUARANTINE
    target_dir.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = target_dir / f"{name.replace('/', '_')}.{stamp}"
    os.rename(source, target)  # rename moves a symlink itself, never what it points at
    return target


def discard(name: str) -> Path | None:
    """Remove `name`; a file there that cannot be read is quarantined instead (returned), to look at later."""
    try:
        read_state(name)
    except UnreadableStateError:
        return quarantine(name)
    remove(name)
    return None


def open_private(path: Path) -> int:
    """An fd on `path` for locking: created owner-only if missing, never through a symlink planted there (the
    link is replaced by a regular file), close-on-exec so no child process inherits the lock."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    for _ in range(2):
        try:
            fd = os.open(path, flags, outputs.PRIVATE_MODE)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            path.unlink()  # a symlink planted where a lock file belongs: drop the link, make the file
            continue
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)
        raise UnreadableStateError(path, "not a regular file (a lock file belongs here)")
    raise UnreadableStateError(path, "a symlink keeps reappearing where a lock file belongs")


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise read-modify-write of `name` across threads and processes (an flock on a sibling file)."""
    path = state_dir() / f".{name.replace('/', '_')}.lock"
    with _thread_locks.setdefault(str(path), threading.Lock()):
        fd = open_private(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last fd on it releases the flock


_thread_locks: dict[str, threading.Lock] = {}


# --- environment generations ----------------------------------------------------------------------------------

GENERATIONS = "generations.json"
_NONCE = "_nonce"


def generation(environment: str) -> str:
    """The environment's generation, part of every cache key; cleanup advances it (design.md principles).
    It starts from a nonce of this state directory, so results cached by another state directory (another
    machine, a test session) never match."""
    data = read_json(GENERATIONS) or {}
    if _NONCE not in data:
        return _generation_of(_ensure_nonce(), environment)
    return f"{data[_NONCE]}-{int(data.get(environment, 0))}"


def advance_generation(environment: str) -> str:
    with locked(GENERATIONS):
        data = read_json(GENERATIONS) or {}
        data.setdefault(_NONCE, secrets.token_hex(4))
        data[environment] = int(data.get(environment, 0)) + 1
        write_json(GENERATIONS, data)
    return f"{data[_NONCE]}-{data[environment]}"


def _ensure_nonce() -> dict[str, object]:
    with locked(GENERATIONS):
        data = read_json(GENERATIONS) or {}
        if _NONCE not in data:
            data[_NONCE] = secrets.token_hex(4)
            write_json(GENERATIONS, data)
    return data


def _generation_of(data: dict[str, object], environment: str) -> str:
    count = data.get(environment, 0)
    return f"{data[_NONCE]}-{int(count) if isinstance(count, int | str) else 0}"
