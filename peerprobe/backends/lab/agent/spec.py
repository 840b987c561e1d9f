"""The agent's spec file: every HTTP listener of one lab environment, each in its own namespace.

The network builder writes it; the agent daemon reads it at start and again on SIGHUP, and answers each
reload in the status file beside it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from peerprobe import outputs
from peerprobe.errors import ConfigError

SCHEMA = "peerprobe.agent/v1"

ListenerKind = Literal["echo", "nginx", "healthz", "proxy"]


class Listener(BaseModel):
    """One server socket: `echo` answers like echoserver 1.4, `nginx` with the stock welcome page, `healthz`
    like kube-proxy's health-check NodePort, `proxy` relays each connection to `upstream` (a Classic ELB)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    netns: str
    ip: str = "0.0.0.0"  # like nginx's `listen 8080`: every address of that namespace
    port: int = Field(gt=0, lt=65536)
    kind: ListenerKind = "echo"
    name: str = ""  # what the logs call it (e.g. "echo-pod", "peer-host")
    upstream: str | None = None  # proxy: "ip:port" dialled from the same namespace for each connection
    service: str = ""  # healthz: the Service's namespace/name
    local_endpoints: int = Field(default=0, ge=0)  # healthz: ready endpoints on this node

    @field_validator("ip")
    @classmethod
    def _is_address(cls, value: str) -> str:
        return str(ipaddress.ip_address(value))

    @property
    def label(self) -> str:
        return self.name or f"{self.netns}/{self.ip}:{self.port}"


class AgentSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_: str = Field(default=SCHEMA, alias="schema")
    listeners: tuple[Listener, ...]


def dump(listeners: Iterable[Listener]) -> str:
    spec = AgentSpec(schema=SCHEMA, listeners=tuple(listeners))
    return spec.model_dump_json(by_alias=True, indent=2)


def write(path: Path, listeners: Iterable[Listener]) -> None:
    """Atomically and owner-only; a symlink planted under that name is replaced, never written through."""
    outputs.replace_atomically(path, dump(listeners).encode("utf-8"), mode=outputs.PRIVATE_MODE)


def load(path: Path) -> AgentSpec:
    """Read a spec file; a bad one raises ConfigError starting with the key path."""
    try:
        return parse(path.read_bytes(), path)
    except OSError as error:
        raise ConfigError(f"agent spec {path}: {error}") from error


def parse(text: bytes, path: Path) -> AgentSpec:
    try:
        spec = AgentSpec.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise ConfigError(f"agent spec {path}: {error}") from error
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{where}: {first['msg']} (agent spec {path})") from error
    if spec.schema_ != SCHEMA:
        raise ConfigError(f"schema: expected {SCHEMA!r}, got {spec.schema_!r} (agent spec {path})")
    return spec


def digest(text: bytes) -> str:
    """Names one version of a spec file: a reload's status carries the digest of the spec it applied."""
    return hashlib.sha256(text).hexdigest()


def status_path(spec_path: Path) -> Path:
    """Where the agent answers each reload of `spec_path`: ``agent.json`` -> ``agent.status.json``."""
    return spec_path.with_name(f"{spec_path.stem}.status.json")


class ReloadStatus(BaseModel):
    """The agent's answer to a SIGHUP: the digest of the spec it read, and "ready" or "error: <why>"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str
    message: str


def write_status(spec_path: Path, status: ReloadStatus) -> None:
    # Written beside and renamed over: a reader never sees half an answer.
    target = status_path(spec_path)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(status.model_dump_json(), encoding="utf-8")
    partial.replace(target)


def read_status(spec_path: Path) -> ReloadStatus | None:
    try:
        return ReloadStatus.model_validate_json(status_path(spec_path).read_bytes())
    except (OSError, ValidationError):
        return None
