"""One vantage's probes as a JSON batch, and its results back as report data; pure, no I/O.

The lab's probe client and the AWS backend's scripts exchange these documents, so both read the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from peerprobe.errors import ConfigError
from peerprobe.probes.plan import ProbeSpec
from peerprobe.vocabulary import Observed, Outcome, Target, Translation, Vantage

BATCH_SCHEMA = "peerprobe.batch/v1"
RESULTS_SCHEMA = "peerprobe.batch-results/v1"
MAX_DETAIL = 200  # error details go into reports and logs: keep them short (design.md, Observed.detail)

_OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
_TARGETS: frozenset[str] = frozenset(get_args(Target))
_VANTAGES: frozenset[str] = frozenset(get_args(Vantage))


@dataclass(frozen=True)
class Batch:
    """The probes one vantage runs at once, their shared timeout, and the names it may resolve statically."""

    probes: tuple[ProbeSpec, ...]
    timeout_seconds: float
    hosts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeResult:
    """What one probe saw: the outcome, the echo fields when the server was the echo server, and why not."""

    spec: ProbeSpec
    outcome: Outcome
    client_address: str | None = None
    host: str | None = None
    request_uri: str | None = None
    resolved: tuple[str, ...] | None = None  # the addresses a name resolved to; None when dialled by IP
    http_status: int | None = None
    detail: str | None = None
    elapsed_seconds: float = 0.0
    source: str | None = None  # the client socket's own address, ip:port, where the client knows it
    translations: tuple[Translation, ...] | None = None  # the kernel's, where the backend reads them (the lab)

    @property
    def dialled(self) -> str:
        """The address the client connected to: the name's first address (like busybox wget), or the IP."""
        return self.resolved[0] if self.resolved else self.spec.host


def short(detail: str | None) -> str | None:
    """Cut a detail to MAX_DETAIL characters so responses and tracebacks never flood a report."""
    if detail is None or len(detail) <= MAX_DETAIL:
        return detail
    return detail[: MAX_DETAIL - 1] + "…"


def to_observed(result: ProbeResult) -> Observed:
    """The report's Observed for a result; the address role is left for the classifier to fill in."""
    return Observed(
        outcome=result.outcome,
        client_address=result.client_address,
        resolved=list(result.resolved) if result.resolved is not None else None,
        host=result.host,
        request_uri=result.request_uri,
        detail=short(result.detail),
        translations=list(result.translations) if result.translations is not None else None,
    )


def dump_batch(
    specs: Iterable[ProbeSpec], *, timeout_seconds: float, hosts: Mapping[str, Sequence[str]] | None = None
) -> str:
    document = {
        "schema": BATCH_SCHEMA,
        "timeout_seconds": timeout_seconds,
        "probes": [_spec_to_dict(spec) for spec in specs],
        "hosts": {name: list(addresses) for name, addresses in (hosts or {}).items()},
    }
    return json.dumps(document, indent=2)


def load_batch(text: str) -> Batch:
    """Parse a batch document; a malformed one raises ConfigError naming the key path."""
    document = _object(_json(text, "batch"), "batch")
    _check_schema(document, BATCH_SCHEMA)
    timeout = document.get("timeout_seconds")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"timeout_seconds: must be a positive number, got {timeout!r}")
    probes = _list(document.get("probes"), "probes")
    specs = tuple(_spec_from_dict(_object(item, f"probes[{i}]"), f"probes[{i}]") for i, item in enumerate(probes))
    return Batch(probes=specs, timeout_seconds=float(timeout), hosts=_hosts(document.get("hosts") or {}))


def dump_results(results: Iterable[ProbeResult]) -> str:
    return json.dumps({"schema": RESULTS_SCHEMA, "results": [_result_to_dict(r) for r in results]}, indent=2)


def load_results(text: str) -> list[ProbeResult]:
    document = _object(_json(text, "results"), "results")
    _check_schema(document, RESULTS_SCHEMA)
    items = _list(document.get("results"), "results")
    return [_result_from_dict(_object(item, f"results[{i}]"), f"results[{i}]") for i, item in enumerate(items)]


def _spec_to_dict(spec: ProbeSpec) -> dict[str, Any]:
    return {
        "vantage": spec.vantage,
        "target": spec.target,
        "host": spec.host,
        "port": spec.port,
        "target_node": spec.target_node,
    }


def _spec_from_dict(data: Mapping[str, Any], where: str) -> ProbeSpec:
    vantage = _choice(data.get("vantage"), _VANTAGES, f"{where}.vantage")
    target = _choice(data.get("target"), _TARGETS, f"{where}.target")
    host = data.get("host")
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise ConfigError(f"{where}.host: must be a non-empty name or address, got {host!r}")
    port = data.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}.port: must be an integer in 1-65535, got {port!r}")
    node = data.get("target_node")
    if node is not None and not isinstance(node, str):
        raise ConfigError(f"{where}.target_node: must be a string or null, got {node!r}")
    return ProbeSpec(vantage, target, host, port, node)  # type: ignore[arg-type]  # checked by _choice


def _result_to_dict(result: ProbeResult) -> dict[str, Any]:
    return {
        "key": result.spec.key,
        "probe": _spec_to_dict(result.spec),
        "outcome": result.outcome,
        "client_address": result.client_address,
        "host": result.host,
        "request_uri": result.request_uri,
        "resolved": list(result.resolved) if result.resolved is not None else None,
        "http_status": result.http_status,
        "detail": short(result.detail),
        "elapsed_seconds": round(result.elapsed_seconds, 3),
        "source": result.source,
    }


def _result_from_dict(data: Mapping[str, Any], where: str) -> ProbeResult:
    resolved = data.get("resolved")
    return ProbeResult(
        spec=_spec_from_dict(_object(data.get("probe"), f"{where}.probe"), f"{where}.probe"),
        outcome=_choice(data.get("outcome"), _OUTCOMES, f"{where}.outcome"),  # type: ignore[arg-type]
        client_address=_optional_str(data, "client_address", where),
        host=_optional_str(data, "host", where),
        request_uri=_optional_str(data, "request_uri", where),
        resolved=tuple(_strings(resolved, f"{where}.resolved")) if resolved is not None else None,
        http_status=data.get("http_status") if isinstance(data.get("http_status"), int) else None,
        detail=_optional_str(data, "detail", where),
        elapsed_seconds=float(data.get("elapsed_seconds") or 0.0),
        source=_optional_str(data, "source", where),
    )


def _hosts(value: Any) -> dict[str, tuple[str, ...]]:
    hosts = _object(value, "hosts")
    return {str(name): tuple(_strings(addresses, f"hosts.{name}")) for name, addresses in hosts.items()}


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{what}: not JSON (line {error.lineno}: {error.msg})") from error


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise ConfigError(f"{where}: must be a list of strings")
    return items


def _choice(value: Any, allowed: frozenset[str], where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: must be one of {', '.join(sorted(allowed))}; got {value!r}")
    return str(value)


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: must be a string or null, got {value!r}")
    return value


def _check_schema(document: Mapping[str, Any], expected: str) -> None:
    if document.get("schema") != expected:
        raise ConfigError(f"schema: expected {expected!r}, got {document.get('schema')!r}")
