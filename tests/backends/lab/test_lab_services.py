"""The lab against the model over the FULL plan (issue 4): every cell of every default phase, and each knob
that changes Services, load balancers or DNS, judged by run.judge_phase. Needs root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import run
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.backends.lab.net import _run
from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.probes.plan import plan
from peerprobe.vocabulary import Cell
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
TIMEOUT = 1.5  # an answer expected to come must come within it on a loaded 2-core CI machine


def judge(state: lab.LabState, cfg: ExperimentConfig, name: str, snat: PhaseSnat) -> list[Cell]:
    lab.set_snat(cfg, "vpc1", snat.vpc1)
    lab.set_snat(cfg, "vpc2", snat.vpc2)
    specs = plan(state.topology)
    results = lab.probe(lab.require_state(cfg), specs, timeout_seconds=TIMEOUT)
    cells = run.judge_phase(cfg, state.topology, name=name, snat=snat, results=results)
    assert len(cells) == len(specs)  # every cell of the plan was probed and judged
    return cells


def drifted(cells: list[Cell]) -> list[str]:
    return [f"{c.vantage}->{c.target}/{c.target_node}: {c.explanation[0]}" for c in cells if c.verdict != "match"]


@pytest.fixture(scope="module")
def workshop(lab_state_dir: Path) -> Iterator[tuple[ExperimentConfig, lab.LabState]]:
    cfg = own_config("services")
    state = lab.up(cfg)
    yield cfg, state
    lab.down(cfg)
    assert net.list_namespaces(lab.env_key(cfg)) == []


@pytest.mark.parametrize("phase", range(3), ids=["baseline", "external-snat", "exclude-snat"])
def test_every_cell_of_every_default_phase_matches_the_model(
    workshop: tuple[ExperimentConfig, lab.LabState], phase: int
) -> None:
    cfg, state = workshop
    chosen = cfg.phases[phase]
    cells = judge(state, cfg, chosen.name, chosen.snat)
    assert {c.target for c in cells} >= {
        "cluster-ip",
        "node-port",
        "load-balancer",
        "internal-nlb",
        "headless",
        "nginx-nlb",
    }
    assert drifted(cells) == []


def test_names_resolve_as_each_vantage_sees_them(workshop: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, state = workshop
    cells = {(c.vantage, c.target): c for c in judge(state, cfg, "baseline", PhaseSnat())}
    vpc1 = state.topology.vpc1
    facts = vpc1.load_balancer_facts
    assert cells[("vpc1-pod", "headless")].observed.resolved == [vpc1.echo_pod.ip]  # type: ignore[union-attr]
    assert cells[("vpc2-pod", "headless")].observed.outcome == "dns-error"  # type: ignore[union-attr]
    assert cells[("vpc2-ec2", "load-balancer")].observed.resolved == facts["load-balancer"].public_ips  # type: ignore[union-attr]
    assert cells[("vpc2-pod", "internal-nlb")].observed.resolved == facts["internal-nlb"].private_ips  # type: ignore[union-attr]


def test_lab_exec_gets_the_same_view(workshop: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, state = workshop
    headless = state.topology.vpc1.headless_name or ""
    mine = net.exec_in(lab.vantage_namespace(cfg, "vpc1-pod"), ["getent", "hosts", headless], timeout=5)
    theirs = net.exec_in(lab.vantage_namespace(cfg, "vpc2-pod"), ["getent", "hosts", headless], timeout=5)
    assert state.topology.vpc1.echo_pod.ip in mine.stdout  # type: ignore[union-attr]
    assert theirs.returncode != 0


def test_aws_node_and_kube_proxy_keep_each_others_rules(workshop: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, state = workshop
    lab.set_env(cfg, "vpc1", ["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=192.168.0.0/16"])
    assert state.net is not None
    saved = _run.run(_run.Job("save", _run.in_netns(state.net.nodes_of("vpc1")[0].ns, ["iptables-save"])))
    assert "KUBE-SERVICES" in saved and "KUBE-POSTROUTING" in saved and "AWS SNAT CHAIN EXCLUSION" in saved
    lab.set_env(cfg, "vpc1", ["AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS-"])


KNOBS: dict[str, dict[str, Any]] = {
    "local": {"services": {"external_traffic_policy": "Local"}},
    "nlb-ip": {"services": {"internal_nlb": {"target_type": "ip", "preserve_client_ip": True}}},
    "nlb-ip-nopreserve": {"services": {"internal_nlb": {"target_type": "ip", "preserve_client_ip": False}}},
    "nlb-nopreserve": {"services": {"internal_nlb": {"preserve_client_ip": False}}},
    "internal-elb": {"services": {"load_balancer": {"scheme": "internal"}}},
    "local-ip-internal": {
        "services": {
            "external_traffic_policy": "Local",
            "load_balancer": {"scheme": "internal"},
            "internal_nlb": {"target_type": "ip", "preserve_client_ip": False},
        }
    },
    "no-sg-rules": {"security_groups": {"open_from_peer": []}},
    "no-nat": {"vpcs": {"vpc1": {"nat_gateway": False}, "vpc2": {"nat_gateway": False}}},
    "no-peering": {"peering": {"enabled": False}},
    "public-nodes": {"clusters": {"vpc1": {"node_subnets": "public"}, "vpc2": {"node_subnets": "public"}}},
    # One VPC1 node: the busybox sits on the only target, so the NLB hairpin always bites.
    "hairpin": {"clusters": {"vpc1": {"nodes": 1}}},
    "hairpin-ip": {"clusters": {"vpc1": {"nodes": 1}}, "services": {"internal_nlb": {"target_type": "ip"}}},
}


@pytest.mark.parametrize("knob", sorted(KNOBS))
def test_each_knob_matches_the_model_over_the_full_plan(knob_lab: Any, knob: str) -> None:
    cfg, state = knob_lab(f"k-{knob}", KNOBS[knob])
    for phase in cfg.phases:
        assert drifted(judge(state, cfg, phase.name, phase.snat)) == [], phase.name


def test_local_policy_sends_only_to_the_endpoint_zone(knob_lab: Any) -> None:
    cfg, state = knob_lab("k-health", KNOBS["local"])
    assert state.net is not None
    echo_node = state.topology.vpc1.echo_pod.node  # type: ignore[union-attr]
    echo_ip = state.topology.vpc1.node(echo_node).ip
    healthy = {lb.ns: lb.healthy for lb in state.net.load_balancers}
    assert all(all(t.startswith(f"{echo_ip}:") for t in targets) for targets in healthy.values())
    assert sum(bool(targets) for targets in healthy.values()) == 3  # one zone per load balancer
    cells = judge(state, cfg, "baseline", PhaseSnat())
    lb = next(c for c in cells if c.vantage == "vpc2-pod" and c.target == "load-balancer")
    assert lb.observed is not None and lb.observed.client_address_role == "load-balancer"
