"""Attach mode on the lab through the flows and the session's Prefect test server: a lab environment built by
`lab up` under one name is attached from a config with another; the experiment flow (kept) matches every cell of
both phases with real packets and reports no config_diff, a drift check finds no drift against the baseline the
run recorded, and the cleanup flow leaves the owner as it was, healthy, with nothing of the visit behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.cleanup import cleanup
from flows.drift import drift_check
from flows.experiment import experiment
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.config import ExperimentConfig
from peerprobe.params import RunParameters
from peerprobe.report.document import Report
from tests.backends.lab.conftest import own_config
from tests.backends.lab.test_attach import owners_side, visiting

pytestmark = pytest.mark.lab


@pytest.fixture
def owner(prefect_server: None, lab_state_dir: Path) -> Iterator[ExperimentConfig]:
    cfg = own_config("flow-owner")
    lab.up(cfg)
    yield cfg
    lab.down(cfg)
    assert net.list_namespaces(lab.env_key(cfg)) == []


def matched(report: Any) -> bool:
    assert isinstance(report, Report)
    return bool(report.phases) and all(cell.verdict == "match" for phase in report.phases for cell in phase.cells)


def test_an_attached_lab_run_kept_a_drift_check_and_cleanup_through_the_flows(owner: ExperimentConfig) -> None:
    before = owners_side(owner)
    config = visiting(owner, name="flow-visitor")
    ran = experiment(parameters=RunParameters(config=config, backend="lab", keep=True), return_state=True)
    assert ran.is_completed(), ran.message
    report = ran.result()
    assert matched(report) and report.config_diff == []
    assert [p.name for p in report.phases] == ["as-found", "external-snat"]
    read = report.topology.vpc1.read
    assert read is not None and read["cluster"] == owner.clusters.vpc1.name, "the topology says what was read"
    assert owners_side(owner)["aws_node"] == before["aws_node"], "the SNAT phase was undone after the last phase"

    checked = drift_check(parameters=RunParameters(config=config, backend="lab"), return_state=True)
    assert checked.is_completed(), checked.message
    live = checked.result()
    assert matched(live) and [p.name for p in live.phases] == ["live"]

    cleaned = cleanup(parameters=RunParameters(config=config, backend="lab"), return_state=True)
    assert cleaned.is_completed(), cleaned.message
    after = owners_side(owner)
    assert {k: after[k] for k in before} == before
    assert lab.healthy(lab.require_state(owner))
