"""Which lab namespaces a live environment owns, whatever state directory it lives in. Each namespace names its
owner (net/_owner.py: an environment key and a state directory); it is owned when that state directory's state
of the environment names it, and while the environment is held or its state was written within the grace
period (a build or a change in progress). Reads only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog
from pydantic import ValidationError

from peerprobe import holders, statedir
from peerprobe.backends.lab import environment
from peerprobe.backends.lab.net import _names as names
from peerprobe.backends.lab.net import _owner
from peerprobe.backends.lab.net._owner import Owner

log = structlog.get_logger()


@dataclass(frozen=True)
class Claim:
    """What the owner says of a group of namespaces that share a prefix: `owned`, the ones its state names
    (None: all of them); the others are orphans, for `reason`."""

    owner: Owner | None
    owned: frozenset[str] | None
    reason: str = ""

    def orphans(self, group: Sequence[str]) -> list[str]:
        return [] if self.owned is None else [ns for ns in group if ns not in self.owned]

    @property
    def env_key(self) -> str:
        return self.owner.env_key if self.owner else ""


def claim(group: Sequence[str], *, now: float, grace: float, fallback: Owner | None = None) -> Claim:
    """The claim on `group` (namespaces of one prefix) of the owner its namespaces name, else of `fallback`
    (the environment of a live agent with that prefix: a lab built before owner records)."""
    owner = next((found for ns in sorted(group) if (found := _owner.read(ns)) is not None), fallback)
    if owner is None:
        return Claim(None, frozenset(), "names no owner (built before owner records, or never finished)")
    if not group[0].startswith(names.prefix_in(owner.state_dir, owner.env_key)):
        return Claim(owner, frozenset(), f"its owner record ({owner.env_key}) does not match its name")
    return _claim_of(owner, now=now, grace=grace)


def _claim_of(owner: Owner, *, now: float, grace: float) -> Claim:
    key, directory = owner.env_key, owner.state_dir
    if not directory.is_dir():
        return Claim(owner, frozenset(), f"its state directory {directory} is gone")
    if holders.held(directory, key):
        return Claim(owner, None)
    path = environment.state_file(key, directory)
    try:
        raw, changed = statedir.read_json_at(path), os.stat(path, follow_symlinks=False).st_mtime
    except OSError:
        raw, changed = None, 0.0
    if raw is None:
        return Claim(owner, frozenset(), f"{key} has no state in {directory}")
    if now - changed < grace:  # written a moment ago: a build or a change is under way
        return Claim(owner, None)
    return _named(owner, raw, path)


def _named(owner: Owner, raw: dict[str, object], path: Path) -> Claim:
    try:
        state = environment.LabState.model_validate(raw)
    except ValidationError as error:
        if owner.state_dir != names.owner_dir():
            # Another checkout may run another version of peerprobe: what it cannot prove dead is kept.
            log.warning("sweep.state_unreadable", path=str(path), error=str(error)[:200], action="kept")
            return Claim(owner, None)
        return Claim(owner, frozenset(), f"{owner.env_key}'s state {path} does not validate")
    if state.net is None:
        return Claim(owner, frozenset(), f"{owner.env_key}'s state in {owner.state_dir} records no network")
    reason = f"not in the network {owner.env_key}'s state in {owner.state_dir} records"
    return Claim(owner, frozenset(state.net.namespaces()), reason)


def agents_owners(agents: Iterable[tuple[int, Path]]) -> dict[str, Owner]:
    """prefix -> the environment of each live agent its state records (its spec file sits in its state
    directory, environments/<key>/agent.json): the owner of namespaces that name none."""
    found = {}
    for pid, spec in agents:
        directory = spec.parent.parent.parent
        with contextlib.suppress(OSError, RuntimeError):
            raw = statedir.read_json_at(spec.parent.with_suffix(".json")) or {}
            key = raw.get("env_key")
            if isinstance(key, str) and raw.get("agent_pid") == pid:
                owner = Owner(key, directory.resolve())
                found[names.prefix_in(owner.state_dir, key)] = owner
    return found
