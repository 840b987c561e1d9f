"""A whole run of the aws backend's steps against AWS as it behaves (world/: moto, a fake Kubernetes API per
cluster, the stand-ins, the data plane, every behaviour of world/behaviours.py switched on): every cell matches,
nothing is created twice, nothing is left behind. And for each behaviour, the adapter without the fix that
absorbs it fails that run. The whole Prefect flow against the same world: tests/flows/test_aws_flow.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.aws.world.behaviours import BEHAVIOURS, Behaviour
from tests.backends.aws.world.drive import drive
from tests.backends.aws.world.world import World, world_config


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))
    with World(world_config("harness"), BEHAVIOURS).install(monkeypatch) as found:
        yield found


def test_a_run_and_its_cleanup_complete_against_aws_as_it_behaves(world: World) -> None:
    assert drive(world) == []
    replayed = {line.split(" ", 1)[0] for line in world.behaviour.answered}
    assert replayed >= {
        "eks:CreateCluster",
        "ec2:DescribeSubnets",
        "ec2:AcceptVpcPeeringConnection",
        "ec2:DeleteSubnet",
    }
    assert set(world.data_plane.answered) == {"vpc1-pod", "vpc2-pod", "vpc2-ec2"}


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=str)
def test_the_run_fails_with_the_fix_for_a_behaviour_switched_off(
    behaviour: Behaviour, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    behaviour.defect(monkeypatch, world)
    assert drive(world) != [], f"{behaviour.name}: the run passed with its fix switched off"
