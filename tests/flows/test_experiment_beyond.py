"""The experiment flow on the lab with everything beyond the workshop at once (deployments/topologies/beyond.yaml:
custom networking, strict pod security groups, a transit gateway): every cell of every phase matches the model,
and the run cleans up after itself, in moto and on this machine. One Prefect test server for the session."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.experiment import experiment
from peerprobe import config
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import net
from peerprobe.params import RunParameters
from tests.backends.lab.conftest import own_config

pytestmark = pytest.mark.lab
BEYOND = Path(__file__).parents[2] / "deployments" / "topologies" / "beyond.yaml"


def test_a_run_on_the_beyond_topology_matches_the_model_and_cleans_up(prefect_server: None) -> None:
    settings = config.load(BEYOND).model_dump(mode="json", by_alias=True)
    for key in ("vpc1", "vpc2"):
        settings["clusters"][key].pop("name", None)
    settings.pop("name", None)
    cfg = own_config("fl-beyond", config.merge(settings, {"probe": {"timeout_seconds": 1}}))
    try:
        report = experiment(parameters=RunParameters(config=cfg))
    finally:
        lab.down(cfg)
    assert len(report.phases) == 3 and report.summary.cells == sum(len(p.cells) for p in report.phases) > 0
    drifted = [f"{p.name}: {c.vantage}->{c.target}" for p in report.phases for c in p.cells if c.verdict != "match"]
    assert drifted == []
    key = lab.env_key(cfg)
    assert lab.load_state(key) is None and not aws_state.is_recorded(key) and net.list_namespaces(key) == []
