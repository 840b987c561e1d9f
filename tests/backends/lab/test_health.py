"""The load balancers' health checks as AWS runs them: a target leaves service only after consecutive failed
checks, and the wait for the load balancers ends when their forwarding (not a check of the moment) has healthy
targets. Needs root."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import health, net
from peerprobe.backends.lab.cluster import LabCluster
from peerprobe.backends.lab.net import LbNode
from peerprobe.probes.plan import plan
from peerprobe.wait import Waits

pytestmark = pytest.mark.lab


def _lb_probe(cfg: Any, vantage: str, target: str) -> str:
    state = lab.require_state(cfg)
    specs = [s for s in plan(state.topology) if (s.vantage, s.target) == (vantage, target)]
    (result,) = lab.probe(state, specs, timeout_seconds=1.5).values()
    return result.outcome


def test_a_target_a_check_missed_at_converge_is_in_service_when_the_wait_ends(knob_lab: Any) -> None:
    """The health check at converge lost every answer (a busy machine): the load balancers forward to nobody
    until the wait's next check takes the targets into service."""
    cfg, state = knob_lab("h-missed")
    assert state.net is not None
    missed = net.program_load_balancers(state.net, {})
    lab.save_state(state.model_copy(update={"net": missed}))
    assert _lb_probe(cfg, "vpc2-ec2", "internal-nlb") == "timeout"
    LabCluster(cfg, "vpc1", run_id=state.run_id, timing=Waits(delay=0.1)).wait_ready(timeout_seconds=30)
    assert all(lb.healthy for lb in (lab.require_state(cfg).net or missed).load_balancers if lb.kind == "internal-nlb")
    assert _lb_probe(cfg, "vpc2-ec2", "internal-nlb") == "ok"
    assert _lb_probe(cfg, "vpc2-pod", "load-balancer") == "ok"


def test_a_recheck_with_nothing_changed_reprograms_nothing(knob_lab: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = knob_lab("h-same")
    programmed: list[object] = []
    monkeypatch.setattr(net, "program_load_balancers", lambda *args: programmed.append(args))
    lab.recheck_health(cfg)
    assert programmed == []


def test_one_failed_check_takes_no_target_out_of_service(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([TimeoutError("lost"), True])

    async def answer_in_turn(lb: LbNode, dial: tuple[str, int]) -> bool:
        found = next(answers)
        if isinstance(found, BaseException):
            raise found
        return found

    monkeypatch.setattr(health, "_probe", answer_in_turn)
    assert health.check_all([_node(["10.0.0.1:30080"])]) == {"lb-ns": ["10.0.0.1:30080"]}


def test_consecutive_failed_checks_take_the_target_out(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[tuple[str, int]] = []

    async def refuse(lb: LbNode, dial: tuple[str, int]) -> bool:
        tried.append(dial)
        raise ConnectionRefusedError

    monkeypatch.setattr(health, "_probe", refuse)
    assert health.check_all([_node(["10.0.0.1:30080"])]) == {"lb-ns": []}
    assert tried == [("10.0.0.1", 30080)] * health.UNHEALTHY_THRESHOLD


def _node(targets: list[str]) -> LbNode:
    eni = {"ns": "lb-ns", "device": "eth0", "router_if": "r-lb", "ip": "10.0.9.9", "prefixlen": 24}
    eni |= {"gateway": "10.0.9.1", "subnet": "private"}
    return LbNode.model_validate(
        {"kind": "internal-nlb", "zone": "a", "eni": eni, "mode": "forward", "targets": targets, "mark": 1}
    )
