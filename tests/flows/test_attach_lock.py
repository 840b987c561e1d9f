"""An attached cluster is locked like an environment (design.md): two checks that attach to one cluster never
overlap, whatever their experiments are called; a config that attaches nothing takes only its own lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe import config, ownership
from peerprobe.backends import attach
from peerprobe.backends.steps import EnvironmentRef
from peerprobe.errors import EnvironmentBusyError
from tasks._ownership import environment_lock
from tests.lock_holder import start_holder

THEIRS = "payments-prod"


@pytest.fixture(autouse=True)
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def cluster_held() -> Iterator[str]:
    """Another check attached to THEIRS, in a process of its own."""
    key = attach.cluster_id("lab", "cn-northwest-1", THEIRS)
    holder = start_holder(key, 60, command="peerprobe drift")
    yield key
    holder.terminate()
    holder.wait()


def ref(name: str, *, existing: bool) -> EnvironmentRef:
    clusters = {"vpc1": {"name": THEIRS, "existing": existing}}
    return EnvironmentRef(backend="lab", config=config.from_mapping({"name": name, "clusters": clusters}), run_id="t")


def test_a_second_check_of_the_same_cluster_is_busy(cluster_held: str) -> None:
    with (
        pytest.raises(EnvironmentBusyError) as refused,
        environment_lock(ref("visitor", existing=True), command="x", timeout_seconds=0),
    ):
        pass
    assert f"environment {cluster_held} is busy" in str(refused.value)
    assert "peerprobe drift" in str(refused.value)


def test_a_config_that_attaches_nothing_takes_no_cluster_lock(cluster_held: str) -> None:
    with environment_lock(ref("builder", existing=False), command="x", timeout_seconds=0):
        pass


def test_the_environments_own_lock_is_released_when_the_cluster_is_busy(cluster_held: str) -> None:
    visitor = ref("visitor", existing=True)
    with pytest.raises(EnvironmentBusyError), environment_lock(visitor, command="x", timeout_seconds=0):
        pass
    assert ownership.holder(visitor.key) is None
