"""Who owns a lab namespace: a record inside the namespace itself, the alias of its loopback device, naming the
environment key and the state directory whose state records the namespace.

Why there: sweep must tell a leftover from another checkout's live lab (another PEERPROBE_STATE_DIR), and other
state directories cannot be found from here, so the namespace has to say whose it is. An interface alias
(ip-link(8) `alias`, the kernel's IFLA_IFALIAS) lives and dies with the namespace: it cannot outlive it, go
stale or be left behind by a crash, and nothing is added to the host. A file in /etc/netns/<ns>/ would outlive
a namespace that a crash removed, and `ip netns exec` bind-mounts every file there over /etc/<name>, printing
"Bind ... failed" on each exec when /etc has no such file.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from peerprobe.errors import ConfigError

MARK = "peerprobe-owner="
# IFALIASZ is 256 bytes with the terminating NUL (include/uapi/linux/if.h); the kernel refuses longer aliases.
MAX_BYTES = 255
READ_SECONDS = 10.0
# The longest environment key a config allows (an experiment name of 32, a region of up to 20 characters): a
# state directory is refused up front when even its record would not fit.
LONGEST_KEY = "lab:" + "n" * 32 + ":" + "r" * 20
_SAFE = "/:._-+,="  # kept as they are; everything else (spaces, '#', '@', quotes) is %-escaped for ip -batch


@dataclass(frozen=True)
class Owner:
    env_key: str
    state_dir: Path


def record(env_key: str, state_dir: Path) -> str:
    """The alias that names the owner; ConfigError when it does not fit (a very long state directory path)."""
    text = f"{MARK}{quote(env_key, safe=_SAFE)}@{quote(str(state_dir), safe=_SAFE)}"
    if len(text.encode()) > MAX_BYTES:
        raise ConfigError(
            f"PEERPROBE_STATE_DIR: {str(state_dir)[:120]!r} is too long for the lab's owner record "
            f"({len(text.encode())} > {MAX_BYTES} bytes with {env_key}): use a shorter path"
        )
    return text


def alias_line(env_key: str, state_dir: Path) -> str:
    """The `ip -batch` line that writes the record into a namespace."""
    return f"link set dev lo alias {record(env_key, state_dir)}"


def parse(alias: str) -> Owner | None:
    if not alias.startswith(MARK) or "@" not in alias:
        return None
    key, _, directory = alias.removeprefix(MARK).partition("@")
    return Owner(env_key=unquote(key), state_dir=Path(unquote(directory))) if key and directory else None


def read(ns: str) -> Owner | None:
    """The record in `ns`, or None (no record, or the namespace is gone)."""
    try:
        done = subprocess.run(
            ["ip", "-n", ns, "-j", "link", "show", "dev", "lo"],
            capture_output=True,
            text=True,
            timeout=READ_SECONDS,
            check=False,
        )
        links = json.loads(done.stdout) if done.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    alias = links[0].get("ifalias", "") if links and isinstance(links[0], dict) else ""
    return parse(alias) if isinstance(alias, str) else None
