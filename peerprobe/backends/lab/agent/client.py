"""The batched probe client: every probe of every vantage at once, each a new TCP connection, one loop.

Requests look like busybox wget's (the pods' client): `GET / HTTP/1.1`, Host without :80, Connection: close.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import os
import socket
import time
from collections.abc import Mapping, Sequence

import structlog

from peerprobe.backends.lab.agent import _http, _netns
from peerprobe.backends.lab.agent.resolver import NameNotResolved, Resolver, ResolverSource, as_resolver
from peerprobe.probes import echo
from peerprobe.probes.batch import ProbeResult, short
from peerprobe.probes.plan import ProbeSpec
from peerprobe.vocabulary import Outcome

USER_AGENT = "Wget"  # what busybox wget sends; the echo server prints it under HEADERS RECEIVED

# Where a VPC has no route, or a security group no rule, packets vanish and the client times out. The
# lab's kernel answers at once instead (no route, ARP unanswered, ICMP unreachable); reporting those as
# `timeout` keeps lab cells comparable with AWS. A reset or a refusal is an answer in both worlds.
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ETIMEDOUT})
_REFUSED = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE})

log = structlog.get_logger()


def run_batch(
    netns: str, specs: Sequence[ProbeSpec], *, timeout_seconds: float, resolver: ResolverSource
) -> list[ProbeResult]:
    """Run one vantage's probes concurrently from namespace `netns`; results in the order of `specs`."""
    return asyncio.run(probe_batch(netns, specs, timeout_seconds=timeout_seconds, resolver=resolver))


def run_batches(
    batches: Mapping[str, Sequence[ProbeSpec]],
    *,
    timeout_seconds: float,
    resolver: ResolverSource,
    resolvers: Mapping[str, ResolverSource] | None = None,
) -> dict[str, list[ProbeResult]]:
    """Run every vantage's batch at once (keyed by namespace); `resolvers` overrides `resolver` per namespace."""
    return asyncio.run(probe_batches(batches, timeout_seconds=timeout_seconds, resolver=resolver, resolvers=resolvers))


async def probe_batches(
    batches: Mapping[str, Sequence[ProbeSpec]],
    *,
    timeout_seconds: float,
    resolver: ResolverSource,
    resolvers: Mapping[str, ResolverSource] | None = None,
) -> dict[str, list[ProbeResult]]:
    chosen = resolvers or {}
    runs = [
        probe_batch(netns, specs, timeout_seconds=timeout_seconds, resolver=chosen.get(netns, resolver))
        for netns, specs in batches.items()
    ]
    return dict(zip(batches, await asyncio.gather(*runs), strict=True))


async def probe_batch(
    netns: str, specs: Sequence[ProbeSpec], *, timeout_seconds: float, resolver: ResolverSource
) -> list[ProbeResult]:
    _netns.require(netns)  # a missing vantage is a broken lab, not twenty probe failures
    resolve = as_resolver(resolver)
    started = time.monotonic()
    results = await asyncio.gather(*(_probe(netns, spec, resolve, timeout_seconds) for spec in specs))
    log.info(
        "probe.batch",
        netns=netns,
        probes=len(results),
        timeout=timeout_seconds,
        elapsed=round(time.monotonic() - started, 3),
        outcomes=_tally(results),
    )
    return list(results)


async def _probe(netns: str, spec: ProbeSpec, resolve: Resolver, timeout: float) -> ProbeResult:
    source = _Source()
    result = await _attempt(netns, spec, resolve, timeout, source)
    return dataclasses.replace(result, source=source.address)


async def _attempt(netns: str, spec: ProbeSpec, resolve: Resolver, timeout: float, source: _Source) -> ProbeResult:
    started = time.monotonic()
    resolving = _is_name(spec.host)
    resolved: tuple[str, ...] | None = None
    try:
        async with asyncio.timeout(timeout):
            address = spec.host
            if resolving:
                resolved = tuple(await resolve(spec.host))
                if not resolved:
                    raise NameNotResolved(spec.host, "the name has no addresses")
                address = resolved[0]  # like busybox wget: the first address only, no fallback
            response = await _exchange(netns, address, spec.port, host_header(spec.host, spec.port), source)
    except NameNotResolved as error:
        return _failed(spec, "dns-error", error.reason, started)
    except TimeoutError:
        if resolving and resolved is None:
            return _failed(spec, "dns-error", f"no answer for {spec.host} within {timeout:g}s", started)
        return _failed(spec, "timeout", f"no response within {timeout:g}s", started, resolved)
    except OSError as error:
        return _failed(spec, _os_outcome(error), _os_detail(error), started, resolved)
    except (_http.HttpError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        return _failed(spec, "http-error", _http_detail(error), started, resolved)
    return _answered(spec, response, started, resolved)


class _Source:
    """The probe socket's own address once connect() has chosen it: with the address dialled, it is the flow
    the lab finds in the conntrack tables (lab/observe.py), whether or not the connection completed."""

    address: str | None = None

    def read(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            ip, port = sock.getsockname()[:2]
            if port and not ipaddress.ip_address(ip).is_unspecified:
                self.address = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def _exchange(netns: str, address: str, port: int, host: str, source: _Source) -> _http.Response:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = _netns.new_socket(netns, family)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        source.read(sock)
        sock.close()
        raise
    source.read(sock)
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(request_bytes(host))
        await writer.drain()
        return await _http.read_response(reader)
    finally:
        writer.close()


def host_header(host: str, port: int) -> str:
    """The Host header curl and wget send: the port only when it is not 80; IPv6 literals in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 80 else f"{shown}:{port}"


def request_bytes(host: str, path: str = "/") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answered(
    spec: ProbeSpec, response: _http.Response, started: float, resolved: tuple[str, ...] | None
) -> ProbeResult:
    fields = echo.parse(response.body.decode("utf-8", "replace"))
    ok = response.status == 200
    return ProbeResult(
        spec=spec,
        outcome="ok" if ok else "http-error",
        client_address=fields.client_address,
        host=fields.host,
        request_uri=fields.request_uri,
        resolved=resolved,
        http_status=response.status,
        detail=None if ok else f"HTTP {response.status}",
        elapsed_seconds=time.monotonic() - started,
    )


def _failed(
    spec: ProbeSpec, outcome: Outcome, detail: str, started: float, resolved: tuple[str, ...] | None = None
) -> ProbeResult:
    return ProbeResult(
        spec=spec, outcome=outcome, resolved=resolved, detail=short(detail), elapsed_seconds=time.monotonic() - started
    )


def _os_outcome(error: OSError) -> Outcome:
    if error.errno in _UNREACHABLE:
        return "timeout"
    if error.errno in _REFUSED or isinstance(error, ConnectionError):
        return "refused"
    return "http-error"


def _os_detail(error: OSError) -> str:
    if error.errno is None:
        return f"{type(error).__name__}: {error}"
    detail = f"{errno.errorcode.get(error.errno, 'E?')}: {os.strerror(error.errno)}"
    return detail + " (no answer on AWS: counted as timeout)" if error.errno in _UNREACHABLE else detail


def _http_detail(error: Exception) -> str:
    if isinstance(error, asyncio.IncompleteReadError) and not error.partial:
        return "empty reply from server"  # curl's words (exit 52) for a close before any byte
    return f"unreadable response: {error}"


def _is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _tally(results: Sequence[ProbeResult]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for result in results:
        tally[result.outcome] = tally.get(result.outcome, 0) + 1
    return tally
