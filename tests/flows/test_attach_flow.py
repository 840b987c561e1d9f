"""Attach mode through the flows and the session's Prefect test server, against AWS as it behaves (world/): an
environment built under one name is attached from a config with another; the experiment flow (kept) matches every
cell and reports no config_diff, a drift check of the attached clusters finds no drift against the baseline the
run recorded, and the cleanup flow leaves the owner's side as it was, nothing of the visit behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.cleanup import cleanup
from flows.drift import drift_check
from flows.experiment import experiment
from peerprobe import config as config_module
from peerprobe.backends import attach
from peerprobe.params import RunParameters
from peerprobe.report.document import Report
from tasks._faults import FAULT_ENV
from tests.backends.aws._eks_addons import FakeAddons
from tests.backends.aws.test_attach_run import build_owner, owners_side, visiting
from tests.backends.aws.world.world import World, world_config

pytestmark = pytest.mark.lab  # the session's Prefect test server comes with the lab's fixtures


@pytest.fixture
def owned(prefect_server: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    FakeAddons().install(monkeypatch)  # moto serves no EKS add-on API
    with World(world_config("harness-owner")).install(monkeypatch) as world:
        build_owner(world)
        yield world


def matched(report: Any) -> bool:
    assert isinstance(report, Report)
    return bool(report.phases) and all(cell.verdict == "match" for phase in report.phases for cell in phase.cells)


def test_an_attached_run_kept_a_drift_check_and_cleanup_through_the_flows(owned: World) -> None:
    before = owners_side(owned)
    config = visiting(owned)
    owned.visit(config)
    ran = experiment(parameters=RunParameters(config=config, backend="aws", keep=True), return_state=True)
    assert ran.is_completed(), ran.message
    report = ran.result()
    assert matched(report) and report.config_diff == []
    assert {cell.vantage for cell in report.phases[0].cells} == {"vpc1-pod", "vpc2-pod"}
    read = report.topology.vpc1.read
    assert read is not None and read["cluster"] == owned.config.clusters.vpc1.name, "the topology says what was read"

    checked = drift_check(parameters=RunParameters(config=config, backend="aws"), return_state=True)
    assert checked.is_completed(), checked.message
    live = checked.result()
    assert matched(live) and [p.name for p in live.phases] == ["live"] and live.config_diff == []

    cleaned = cleanup(parameters=RunParameters(config=config, backend="aws"), return_state=True)
    assert cleaned.is_completed(), cleaned.message
    assert owners_side(owned) == before
    assert not any(key[0] == attach.namespace(config) for s in owned.servers.values() for key in s.state.objects)


def test_a_failed_attached_run_puts_aws_node_back_as_found_at_once(
    owned: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = owners_side(owned)
    clusters = {vpc: {"name": getattr(owned.config.clusters, vpc).name, "existing": True} for vpc in ("vpc1", "vpc2")}
    clusters["vpc1"]["allow_snat_changes"] = True
    phases = [{"name": "external-snat", "snat": {"vpc1": {"external_snat": True}}}, {"name": "as-found"}]
    config = config_module.from_mapping(
        {"name": "visitor", "clusters": clusters, "images": owned.config.images.model_dump(), "phases": phases}
    )
    owned.visit(config)
    monkeypatch.setenv(FAULT_ENV, "probe")  # after the first phase changed aws-node
    failed = experiment(parameters=RunParameters(config=config, backend="aws"), return_state=True)
    assert failed.is_failed() and "injected fault" in str(failed.message)
    assert owners_side(owned)["aws-node"] == before["aws-node"], "restored on failure, before any cleanup"
    assert attach.found_env(attach.cluster_id("aws", config.region, config.clusters.vpc1.name)) is None
    monkeypatch.delenv(FAULT_ENV)
    cleaned = cleanup(parameters=RunParameters(config=config, backend="aws"), return_state=True)
    assert cleaned.is_completed(), cleaned.message
    assert owners_side(owned) == before
