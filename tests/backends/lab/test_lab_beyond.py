"""`lab up` on the topologies beyond the workshop (deployments/topologies/): the shared steps create the secondary
CIDRs, pod subnets, transit gateway and the pods' security groups in moto, the lab's data plane reads them back,
and every cell of every phase (all targets, Services and load balancers included) agrees with the model, its
translations too. `lab down` leaves no namespace and nothing of the environment in moto. Needs root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerprobe import config, run
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.aws._state import AwsState
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import moto_service, net
from peerprobe.backends.ports import TAG_ENVIRONMENT
from peerprobe.config import ExperimentConfig, PhaseSnat
from peerprobe.model.facts import Facts
from peerprobe.model.path import cell_path
from peerprobe.probes.plan import plan
from peerprobe.report._observed import disagreements, side_by_side
from peerprobe.vocabulary import Cell
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
TOPOLOGIES = Path(__file__).parents[3] / "deployments" / "topologies"
TIMEOUT = 1.0  # every lab path answers in milliseconds or never
# Each lab: (topology file, this module's own experiment name (EKS names are per account and region), overrides).
LABS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "custom-networking": ("custom-networking", "lb-custom", {}),
    "custom-networking-primary-routes": ("custom-networking-primary-routes", "lb-primary", {}),
    "transit-gateway": ("transit-gateway", "lb-tgw", {}),
    "pod-sgs-strict": ("pod-security-groups-strict", "lb-strict", {}),
    "pod-sgs-standard": ("pod-security-groups-standard", "lb-standard", {}),
    "pod-sgs-standard-cluster": (
        "pod-security-groups-standard",
        "lb-std-cluster",
        {"services": {"external_traffic_policy": "Cluster"}},
    ),
    "beyond": ("beyond", "lb-beyond", {}),
}


def topology_config(lab_id: str) -> ExperimentConfig:
    """The topology's settings under an experiment and cluster names of this module's own, probes of 1 s."""
    topology, name, overrides = LABS[lab_id]
    found = config.load(TOPOLOGIES / f"{topology}.yaml").model_dump(mode="json", by_alias=True)
    for key in ("vpc1", "vpc2"):
        found["clusters"][key].pop("name", None)
    found.pop("name", None)
    found["probe"] = {**found.get("probe", {}), "timeout_seconds": TIMEOUT}
    return own_config(name, config.merge(found, overrides))


def probe_phase(cfg: ExperimentConfig, name: str, snat: PhaseSnat) -> tuple[list[Cell], set[str]]:
    """Every cell of one phase: the model's verdicts, and the cells whose recorded translations disagree."""
    lab.set_snat(cfg, "vpc1", snat.vpc1)
    lab.set_snat(cfg, "vpc2", snat.vpc2)
    state = lab.require_state(cfg)
    specs = plan(state.topology)
    results = lab.probe(state, specs, timeout_seconds=TIMEOUT)
    cells = run.judge_phase(cfg, state.topology, name=name, snat=snat, results=results)
    facts = Facts(config=cfg, topology=state.topology, snat=snat)
    answered = [s for s in specs if results[s].outcome == "ok"]
    paths = {s.key for s in answered if disagreements(side_by_side(cell_path(s, facts), results[s].translations))}
    return cells, paths


def drifted(cells: list[Cell]) -> list[str]:
    return [f"{c.vantage}->{c.target}@{c.target_node}: {c.explanation[0]}" for c in cells if c.verdict != "match"]


def moto_leftovers(cfg: ExperimentConfig, recorded: AwsState) -> list[str]:
    """What moto still holds of the environment: live VPCs, transit gateways, security groups and clusters of its
    tags and names, and the transit gateway attachments `recorded` while it was up (moto 5 neither filters
    attachments by tag nor returns their tags)."""
    clients = ClientFactory.for_loopback(cfg.region, moto_service.endpoint_url())
    ec2, eks = clients.client("ec2"), clients.client("eks")
    owned = {"Name": f"tag:{TAG_ENVIRONMENT}", "Values": [lab.env_key(cfg)]}
    left = [v["VpcId"] for v in ec2.describe_vpcs(Filters=[owned])["Vpcs"]]
    left += [
        g["TransitGatewayId"]
        for g in ec2.describe_transit_gateways(Filters=[owned])["TransitGateways"]
        if g["State"] not in ("deleted", "deleting")
    ]
    attachments = ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
    left += [
        a["TransitGatewayAttachmentId"]
        for a in attachments
        if a["TransitGatewayAttachmentId"] in recorded.transit_gateway_attachments.values()
        and a["State"] not in ("deleted", "deleting")
    ]
    left += [
        f"{g['GroupId']} {g['GroupName']}" for g in ec2.describe_security_groups(Filters=[owned])["SecurityGroups"]
    ]
    names = {cfg.clusters.vpc1.name, cfg.clusters.vpc2.name}
    left += [c for c in eks.list_clusters()["clusters"] if c in names]
    return left


@pytest.fixture(scope="module", params=sorted(LABS))
def beyond_lab(request: pytest.FixtureRequest, lab_state_dir: Path) -> Iterator[tuple[ExperimentConfig, lab.LabState]]:
    cfg = topology_config(request.param)
    recorded = AwsState(environment=lab.env_key(cfg))
    try:
        state = lab.up(cfg)
        recorded = aws_state.load(state.env_key)
        yield cfg, state
    finally:
        lab.down(cfg)
    assert net.list_namespaces(lab.env_key(cfg)) == []
    assert moto_leftovers(cfg, recorded) == []
    assert not aws_state.is_recorded(lab.env_key(cfg))


def test_every_phase_agrees_with_the_model(beyond_lab: tuple[ExperimentConfig, lab.LabState]) -> None:
    cfg, _ = beyond_lab
    for phase in cfg.phases:
        cells, translations = probe_phase(cfg, phase.name, phase.snat)
        assert len(cells) == len(plan(lab.require_state(cfg).topology)), phase.name
        assert drifted(cells) == [], phase.name
        assert translations == set(), phase.name


def test_the_steps_made_in_moto_what_the_lab_realises(beyond_lab: tuple[ExperimentConfig, lab.LabState]) -> None:
    """The data plane's link and groups are those moto holds: the transit gateway (not a peering) when asked
    for, the pods' own groups recorded, the pod subnets of custom networking in moto."""
    cfg, state = beyond_lab
    ids = aws_state.load(state.env_key)
    assert state.net is not None and state.net.peering
    tgw = cfg.peering.via == "transit-gateway"
    assert (ids.transit_gateway is not None, ids.peering is None) == (tgw, tgw)
    for key in ("vpc1", "vpc2"):
        cluster = getattr(cfg.clusters, key)
        assert bool(ids.clusters[key].pod_security_group) == (cluster.pod_security_groups is not None)
        assert bool(ids.networks[key].pod_subnets) == cluster.custom_networking.enabled
    held = moto_leftovers(cfg, ids)  # what the teardown check looks for is there while the lab is up
    assert ids.networks["vpc1"].vpc in held and (ids.transit_gateway in held) == tgw
    assert all(attachment in held for attachment in ids.transit_gateway_attachments.values())
    groups = [ids.clusters[k].pod_security_group for k in ("vpc1", "vpc2") if ids.clusters[k].pod_security_group]
    assert all(any(item.startswith(f"{group} ") for item in held) for group in groups)


def _probe(cfg: ExperimentConfig, vantage: str, target: str) -> str:
    state = lab.require_state(cfg)
    specs = [s for s in plan(state.topology) if (s.vantage, s.target) == (vantage, target)]
    (result,) = lab.probe(state, specs, timeout_seconds=TIMEOUT).values()
    return result.outcome


def test_a_route_to_the_transit_gateway_deleted_in_moto_cuts_the_lab(knob_lab: Any) -> None:
    """The lab's link is what moto's transit gateway and routes say: one VPC's route to it deleted behind
    peerprobe's back, `lab refresh` (and any rebuild) takes the attachments away."""
    cfg, state = knob_lab("lb-tgw-cut", {"peering": {"via": "transit-gateway"}})
    assert _probe(cfg, "vpc2-pod", "pod-ip") == "ok"
    ids = aws_state.load(state.env_key)
    cloud = lab._cloud(cfg, state.env_key, state.run_id)
    table = ids.networks["vpc2"].route_tables[0]
    for route in cloud.route_table(table).routes:
        if route.target_id == ids.transit_gateway:
            cloud.delete_route(table, destination_cidr=route.destination_cidr)
    refreshed = lab.refresh(cfg)
    assert refreshed.net is not None and not refreshed.net.peering
    assert _probe(cfg, "vpc2-pod", "pod-ip") == "timeout"


def test_the_pods_group_as_moto_holds_it_decides_at_the_branch_eni(knob_lab: Any) -> None:
    """The echo pod's branch ENI admits the peer by the pods' own group in moto: its peer rules revoked behind
    peerprobe's back, `lab refresh` drops the peer's connection to the pod, while the nodes' group still admits
    it (only the branch ENI's groups count)."""
    overrides = {"clusters": {"vpc1": {"pod_security_groups": {"pods": ["echo"], "include_cluster_sg": False}}}}
    cfg, state = knob_lab("lb-sgp-revoke", overrides)
    assert _probe(cfg, "vpc2-ec2", "pod-ip") == "ok"
    group = aws_state.load(state.env_key).clusters["vpc1"].pod_security_group
    cloud = lab._cloud(cfg, state.env_key, state.run_id)
    peer = [r for r in cloud.ingress_rules(group) if r.cidr]
    assert peer, "the pods' group admits the peer's blocks (open_from_peer)"
    cloud.revoke_ingress(group, rules=peer)
    lab.refresh(cfg)
    assert _probe(cfg, "vpc2-ec2", "pod-ip") == "timeout"


def test_lab_down_without_the_recorded_ids_finds_everything_by_tags(knob_lab: Any) -> None:
    """The ids record lost: `lab down` recovers the transit gateway, its attachments, the pods' groups and the pod
    subnets from their tags and names (moto 5 lists no attachment in DescribeTags: found by their gateway), and
    leaves nothing in moto or on this machine."""
    overrides = config.merge(
        {"peering": {"via": "transit-gateway"}},
        {
            "vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}},
            "clusters": {
                "vpc1": {
                    "custom_networking": {"enabled": True, "cidr": "100.64.0.0/16"},
                    "pod_security_groups": {"pods": ["echo"]},
                }
            },
        },
    )
    cfg, state = knob_lab("lb-lost-ids", overrides)
    recorded = aws_state.load(state.env_key)
    assert len(recorded.transit_gateway_attachments) == 2 and len(moto_leftovers(cfg, recorded)) > 5
    aws_state.forget(state.env_key)
    assert lab.down(cfg) is True
    assert moto_leftovers(cfg, recorded) == [] and net.list_namespaces(state.env_key) == []
