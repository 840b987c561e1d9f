"""The lab against the model, with real packets: pod-ip from every vantage and peer-host(-public) from the
VPC1 pod, in every default phase and under each knob that affects them (issue 3). Needs root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config, run
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.backends.opened import peer_rules
from peerprobe.config import ExperimentConfig, PhaseSnat, Snat
from peerprobe.model.facts import Facts
from peerprobe.model.path import cell_path
from peerprobe.probes.plan import plan
from peerprobe.report._observed import disagreements, side_by_side
from peerprobe.vocabulary import Cell

pytestmark = pytest.mark.lab
TARGETS = {"pod-ip", "peer-host", "peer-host-public"}
TIMEOUT = 1.5  # an answer expected to come must come within it on a loaded 2-core CI machine


def probe_phase(state: lab.LabState, cfg: ExperimentConfig, name: str, snat: PhaseSnat) -> list[Cell]:
    lab.set_snat(cfg, "vpc1", snat.vpc1)
    lab.set_snat(cfg, "vpc2", snat.vpc2)
    specs = [s for s in plan(state.topology) if s.target in TARGETS]
    results = lab.probe(lab.require_state(cfg), specs, timeout_seconds=TIMEOUT)
    return run.judge_phase(cfg, state.topology, name=name, snat=snat, results=results)


def drifted(cells: list[Cell]) -> list[str]:
    return [f"{c.vantage}->{c.target}: {c.explanation[0]}" for c in cells if c.verdict != "match"]


@pytest.fixture(scope="module")
def workshop_lab(lab_state_dir: Path) -> Iterator[tuple[ExperimentConfig, lab.LabState]]:
    cfg = config.load()
    state = lab.up(cfg)
    yield cfg, state
    lab.down(cfg)
    assert net.list_namespaces(lab.env_key(cfg)) == []


@pytest.mark.parametrize("phase", range(3), ids=["baseline", "external-snat", "exclude-snat"])
def test_every_default_phase_matches_the_model(workshop_lab: tuple[ExperimentConfig, lab.LabState], phase: int) -> None:
    cfg, state = workshop_lab
    chosen = cfg.phases[phase]
    cells = probe_phase(state, cfg, chosen.name, chosen.snat)
    assert {c.target for c in cells} == TARGETS and len(cells) == 6
    assert drifted(cells) == []


def test_the_echo_server_reports_the_node_for_the_vpc2_pod(workshop_lab: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, state = workshop_lab
    cells = probe_phase(state, cfg, "baseline", PhaseSnat())
    cell = next(c for c in cells if c.vantage == "vpc2-pod" and c.target == "pod-ip")
    assert cell.observed is not None and cell.observed.client_address == state.topology.vpc2.nodes[0].ip


def test_a_toggle_on_one_cluster_only(workshop_lab: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, state = workshop_lab
    cells = probe_phase(state, cfg, "vpc2-only", PhaseSnat(vpc2=Snat(external_snat=True)))
    roles = {(c.vantage, c.target): c.observed.client_address_role for c in cells if c.observed}
    assert roles[("vpc2-pod", "pod-ip")] == "client-pod" and roles[("vpc1-pod", "peer-host")] == "client-node"
    assert drifted(cells) == []


def test_set_env_behind_our_back_changes_the_rules(workshop_lab: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, state = workshop_lab
    lab.set_snat(cfg, "vpc1", Snat())
    snat = lab.set_env(cfg, "vpc1", ["AWS_VPC_K8S_CNI_EXTERNALSNAT=true"])
    assert snat.external_snat
    specs = [s for s in plan(state.topology) if s.target == "peer-host"]
    (result,) = lab.probe(lab.require_state(cfg), specs, timeout_seconds=TIMEOUT).values()
    assert result.client_address == state.topology.vpc1.busybox_pod.ip  # type: ignore[union-attr]
    lab.set_env(cfg, "vpc1", ["AWS_VPC_K8S_CNI_EXTERNALSNAT-"])


def test_the_kernels_translations_are_read_for_every_probe_of_a_phase(
    workshop_lab: tuple[ExperimentConfig, lab.LabState],
) -> None:
    """One phase over every cell, external SNAT off: the vpc2 pod's call to a VPC1 NodePort was SNATed to
    its node's primary IP in that node's namespace (behaviour.md), then DNATed to the echo pod at the addressed
    node; and the kernel left every hop it recorded with the model's addresses, on every cell that answered."""
    cfg, state = workshop_lab
    lab.set_snat(cfg, "vpc1", Snat())
    lab.set_snat(cfg, "vpc2", Snat())
    top = state.topology
    node2, node1, pod = top.vpc2.nodes[0], top.vpc1.nodes[0], top.vpc2.busybox_pod
    specs = plan(top)
    results = lab.probe(lab.require_state(cfg), specs, timeout_seconds=TIMEOUT)
    seen = results[next(s for s in specs if s.key == f"vpc2-pod/node-port/{node1.name}")].translations
    assert seen and pod is not None and top.vpc1.echo_pod is not None
    snat = next(t for t in seen if t.snat)  # the first; the addressed node masquerades too
    [dnat] = [t for t in seen if t.dnat]
    assert (snat.at, snat.original.src, snat.leaving.src) == (f"node:{node2.name}", pod.ip, node2.ip)
    assert (dnat.at, dnat.leaving.dst, dnat.leaving.dport) == (f"node:{node1.name}", top.vpc1.echo_pod.ip, 8080)
    assert seen.index(snat) < seen.index(dnat)
    assert disagreeing(cfg, top, specs, results) == set()


def disagreeing(cfg: ExperimentConfig, top: Any, specs: list[Any], results: dict[Any, Any]) -> set[str]:
    facts = Facts(config=cfg, topology=top, snat=PhaseSnat())
    answered = [s for s in specs if results[s].outcome == "ok"]
    return {s.key for s in answered if disagreements(side_by_side(cell_path(s, facts), results[s].translations))}


KNOBS = {
    "no-peer-rules": {"security_groups": {"open_from_peer": []}},
    "no-peering": {"peering": {"enabled": False}},
    "no-vpc1-nat": {"vpcs": {"vpc1": {"nat_gateway": False}}},
    "public-nodes": {"clusters": {"vpc1": {"node_subnets": "public"}, "vpc2": {"node_subnets": "public"}}},
    "old-cni-secondary-eni": {"clusters": {"vpc1": {"cni_version": "1.7.10", "pod_eni": "secondary"}}},
    "ec2-closed-to-vpc1": {"peer_host": {"admit_vpc1": False}},
}


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_each_knob_matches_the_model(knob_lab: Any, knob: str) -> None:
    cfg, state = knob_lab(f"knob-{knob}"[:30].rstrip("-"), KNOBS[knob])
    for phase in cfg.phases:
        cells = probe_phase(state, cfg, phase.name, phase.snat)
        assert cells, phase.name  # a phase with no cells would pass unseen
        assert drifted(cells) == [], phase.name


def test_a_rule_revoked_in_moto_reaches_the_lab(knob_lab: Any) -> None:

    cfg, state = knob_lab("revoked")
    aws = lab._cloud(cfg, state.env_key, state.run_id)
    group = aws_state.load(state.env_key).clusters["vpc1"].security_group
    assert group.startswith("sg-")
    aws.revoke_ingress(group, rules=peer_rules(cfg, state.topology))
    lab.refresh(cfg)
    specs = [s for s in plan(state.topology) if s.vantage == "vpc2-ec2" and s.target == "pod-ip"]
    (result,) = lab.probe(lab.require_state(cfg), specs, timeout_seconds=TIMEOUT).values()
    assert result.outcome == "timeout"


def test_a_crashed_lab_is_replaced_by_the_next_up(knob_lab: Any) -> None:
    cfg, state = knob_lab("crashed")
    assert state.agent_pid is not None
    import os
    import signal

    os.kill(state.agent_pid, signal.SIGKILL)  # the agent dies with the command that owned it
    fresh = lab.up(cfg)
    assert lab.healthy(fresh) and fresh.agent_pid != state.agent_pid


def test_down_twice_succeeds_and_leaves_nothing(knob_lab: Any) -> None:
    cfg, _ = knob_lab("downtwice")
    assert lab.down(cfg) is True
    assert lab.down(cfg) is False
    assert net.list_namespaces(lab.env_key(cfg)) == []
