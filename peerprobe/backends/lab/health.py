"""Load balancer health checks, from each load balancer node's own namespace, as AWS runs them.

TCP connect to the traffic port (Cluster; ip targets), or HTTP GET /healthz on the healthCheckNodePort under
externalTrafficPolicy Local, where kube-proxy answers 200 only on nodes with a local endpoint
(cloud-provider-aws aws_loadbalancer.go health checks; pkg/proxy/healthcheck).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog

from peerprobe.backends.lab.agent import _http, _netns
from peerprobe.backends.lab.agent.client import request_bytes
from peerprobe.backends.lab.net import LbNode

log = structlog.get_logger()
CHECK_TIMEOUT = 0.5  # a check not answered within this fails
# AWS counts a target unhealthy only after consecutive failed checks (UnhealthyThresholdCount: 2 to 10; NLB's
# default 2 for TCP and HTTP: ELB API reference, CreateTargetGroup). One check lost on a busy machine takes nothing
# out of service.
UNHEALTHY_THRESHOLD = 2


def check_all(lbs: Sequence[LbNode], *, timeout: float = CHECK_TIMEOUT) -> dict[str, list[str]]:
    """Every load balancer node's healthy targets, keyed by its namespace; all checks at once."""
    started = time.perf_counter()
    healthy = asyncio.run(_check_all(lbs, timeout))
    log.info(
        "lab.health.checked",
        nodes=len(lbs),
        healthy=sum(len(v) for v in healthy.values()),
        elapsed_ms=round((time.perf_counter() - started) * 1000),
    )
    return healthy


async def _check_all(lbs: Sequence[LbNode], timeout: float) -> dict[str, list[str]]:
    results = await asyncio.gather(*(_check_node(lb, timeout) for lb in lbs))
    return {lb.ns: found for lb, found in zip(lbs, results, strict=True)}


async def _check_node(lb: LbNode, timeout: float) -> list[str]:
    verdicts = await asyncio.gather(*(_check(lb, target, timeout) for target in lb.targets))
    return [target for target, ok in zip(lb.targets, verdicts, strict=True) if ok]


async def _check(lb: LbNode, target: str, timeout: float) -> bool:
    """Healthy unless UNHEALTHY_THRESHOLD checks in a row fail, each with its own timeout."""
    host, _, port = target.rpartition(":")
    dial = (host, lb.health_port or int(port))
    for _ in range(UNHEALTHY_THRESHOLD):
        if await _check_once(lb, target, dial, timeout):
            return True
    return False


async def _check_once(lb: LbNode, target: str, dial: tuple[str, int], timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return await _probe(lb, dial)
    except (OSError, TimeoutError, _http.HttpError, asyncio.IncompleteReadError) as error:
        log.debug("lab.health.failed", lb=lb.ns, target=target, error=str(error)[:80])
        return False


async def _probe(lb: LbNode, dial: tuple[str, int]) -> bool:
    sock = _netns.new_socket(lb.ns)
    try:
        await asyncio.get_running_loop().sock_connect(sock, dial)
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        if lb.health_path is None:
            return True  # TCP health check: the connection was accepted
        writer.write(request_bytes(f"{dial[0]}:{dial[1]}", lb.health_path))
        await writer.drain()
        return (await _http.read_response(reader)).status == 200
    finally:
        writer.close()
