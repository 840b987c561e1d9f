"""AWS's network, for the probes: each batch answered as the connections would go in the environment as it is
now. The model walks each probe over the live configuration (the peering and its routes, the peer rules, the
SNAT settings, as the snapshot reads them back) and topology; a load balancer whose name does not resolve yet
or whose targets are not healthy yet answers as it would then. So a step that left something undone (a peering
not accepted, a rule not opened, a load balancer used before it was ready) shows as drift, as on AWS."""

from __future__ import annotations

import ast
import json
import re
from typing import TYPE_CHECKING

from peerprobe import snapshot
from peerprobe.model import Facts
from peerprobe.model._walk import Blocked
from peerprobe.model.expect import host_header, walked
from peerprobe.probes import echo
from peerprobe.probes.plan import ECHO_PORT, PEER_HOST_PORT, ProbeSpec, plan
from peerprobe.vocabulary import LB_TARGETS, Vantage

if TYPE_CHECKING:
    from tests.backends.aws.world.world import World

# wget's (and the python prober's) words for what the client saw; _scripts.classify reads them back.
_SAID = {
    "timeout": "wget: download timed out",
    "refused": "wget: can't connect to remote host: Connection refused",
    "dns-error": "wget: bad address '{host}'",
    "http-error": "wget: server returned error: HTTP/1.1 503 Service Unavailable",
}
_BUSYBOX_PROBE = re.compile(r"^p (\d+) '([^']*)' (\d+) [01]$", re.MULTILINE)
_PYTHON_ARGS = re.compile(r"json\.loads\(('(?:[^'\\]|\\.)*')\)")
NGINX_PAGE = "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head></html>"


def batch(script: str) -> tuple[str, list[tuple[str, int]]]:
    """The nonce and the (host, port) of every probe of a busybox or python batch script, in order."""
    found = _PYTHON_ARGS.search(script)
    if found is not None:
        nonce, _, probes, _ = json.loads(ast.literal_eval(found.group(1)))
        return str(nonce), [(str(host), int(port)) for host, port, _ in probes]
    nonce = re.search(r"N=([0-9a-f]+)", script)
    assert nonce is not None, "not a probe batch"
    return nonce.group(1), [(host, int(port)) for _, host, port in _BUSYBOX_PROBE.findall(script)]


class DataPlane:
    def __init__(self, world: World) -> None:
        self.world = world
        self.answered: list[Vantage] = []

    def answer(self, vantage: Vantage, script: str) -> str:
        """The batch's output as the vantage would print it, each probe framed as the scripts frame it."""
        nonce, probes = batch(script)
        reader = self.world.prober()
        live = reader.snapshot()
        topology = reader.topology()
        config = reader.model_config(snapshot.live_config(reader.config, live))  # attach mode: as read
        facts = Facts(config=config, topology=topology, snat=live.snat())
        specs = {(s.host, s.port): s for s in plan(topology) if s.vantage == vantage}
        self.answered.append(vantage)
        return "".join(self._section(nonce, i, specs[probe], facts) for i, probe in enumerate(probes))

    def _section(self, nonce: str, index: int, spec: ProbeSpec, facts: Facts) -> str:
        rc, err, body = self._connect(spec, facts)
        lines = [f"=={nonce} begin {index}", f"rc {rc}", "elapsed 0.01", f"=={nonce} err {index}", err]
        lines += [f"=={nonce} body {index}", body, f"=={nonce} end {index}"]
        return "\n".join(lines) + "\n"

    def _connect(self, spec: ProbeSpec, facts: Facts) -> tuple[int, str, str]:
        """(wget's exit status, what it printed, the body served)."""
        if spec.target in LB_TARGETS:
            stopped = self.world.controller.reachable(spec.host)
            if stopped is not None:
                return 1, stopped, ""
        result = walked(spec, facts)
        if isinstance(result, Blocked):
            return 1, _SAID[result.outcome].format(host=spec.host), ""
        if spec.target == "nginx-nlb":
            return 0, "", NGINX_PAGE
        port = PEER_HOST_PORT if spec.target in ("peer-host", "peer-host-public") else ECHO_PORT
        return 0, "", echo.render(result.ip, host_header(spec.host, spec.port), port, "/")
