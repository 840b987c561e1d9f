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
from pathlib import Path
from typing import Any

from peerprobe import outputs

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
    """Return the JSON object stored under `name` in the state directory, or None if absent or unreadable (a
    symlink or anything but a regular file planted there included: see `read_bytes`)."""
    raw = read_bytes(name)
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_bytes(name: str) -> bytes | None:
    """The bytes stored under `name` in the state directory, or None if absent. A symlink or anything but a
    regular file planted under that name is absent too: never followed, never waited on (O_NOFOLLOW,
    O_NONBLOCK for a FIFO)."""
    path = state_dir() / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:  # a symlink where a state file belongs
            return None
        raise
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return None
        return source.read()


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


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Serialise read-modify-write of `name` across threads and processes (an flock on a sibling file)."""
    path = state_dir() / f".{name.replace('/', '_')}.lock"
    with _thread_locks.setdefault(str(path), threading.Lock()), open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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
