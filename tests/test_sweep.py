"""`peerprobe sweep`: durations; tagged moto resources of no environment (verified to exist, deleted in
dependency order, idempotently); a lab whose agent died; a `pp-*` namespace nobody owns; `--older-than`.
Namespaces and agents are passed in explicitly, so a test never touches another session's lab."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerprobe import config, sweep
from peerprobe.backends.aws import aws_cloud
from peerprobe.backends.lab import environment as lab
from peerprobe.backends.lab import moto_service
from peerprobe.backends.lab.agent.process import stop_agent
from peerprobe.backends.lab.net import list_namespaces
from peerprobe.backends.ports import Stamp
from peerprobe.cli import app
from tests.backends.lab.conftest import lab_state_dir
from tests.lock_holder import start_holder

__all__ = ["lab_state_dir"]
ORPHAN_ENV = "lab:sweep6-orphan:cn-northwest-1"
STRAY_NS = "pp-5eeb06-stray"


DURATIONS = [("30m", 1800), ("2h", 7200), ("7d", 604800), ("90s", 90), ("1w", 604800)]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: str, seconds: float) -> None:
    assert sweep.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "2 hours", "-1h", "1x"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(sweep.ConfigError, match="--older-than"):
        sweep.parse_duration(text)


def test_the_command_refuses_a_bad_duration_before_doing_anything() -> None:
    result = CliRunner().invoke(app, ["sweep", "--older-than", "soon"])
    assert result.exit_code == 2 and "--older-than" in result.output


def cfg(name: str) -> config.ExperimentConfig:
    return config.from_mapping(
        {"name": name, "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}}}
    )


def find(**extra: object) -> list[sweep.Leftover]:
    return sweep.find(namespaces=lambda: [n for n in _stray() if n == STRAY_NS], agents=lambda: [], **extra)  # type: ignore[arg-type]


def _stray() -> list[str]:
    return [STRAY_NS] if Path(f"/run/netns/{STRAY_NS}").exists() else []


@pytest.fixture
def orphaned_cloud(lab_state_dir: Path) -> Iterator[dict[str, str]]:
    """Tagged resources of an environment that has no state: what a crash between create and save leaves."""
    cloud = aws_cloud(
        Stamp(experiment="sweep6-orphan", environment=ORPHAN_ENV, run_id="t"),
        region="cn-northwest-1",
        endpoint_url=moto_service.endpoint_url(),
    )
    vpc = cloud.ensure_vpc("orphan", cidr="10.66.0.0/16")
    subnet = cloud.ensure_subnet(
        "orphan-a", vpc_id=vpc.id, cidr="10.66.1.0/24", availability_zone="cn-northwest-1a", public=False
    )
    group = cloud.ensure_security_group("orphan-sg", vpc_id=vpc.id, description="orphan")
    igw = cloud.ensure_internet_gateway("orphan-igw", vpc_id=vpc.id)
    yield {"vpc": vpc.id, "subnet": subnet.id, "security-group": group.id, "internet-gateway": igw.id}


@pytest.mark.lab
def test_orphaned_cloud_resources_are_listed_then_removed_idempotently(orphaned_cloud: dict[str, str]) -> None:
    found = {(item.kind, item.id) for item in find() if item.environment == ORPHAN_ENV}
    assert set(orphaned_cloud.items()) <= found
    leftovers = [item for item in find() if item.environment == ORPHAN_ENV]
    assert all(item.reason == "no live environment" and item.age_seconds is not None for item in leftovers)
    sweep.remove(leftovers)
    assert not [item for item in find() if item.environment == ORPHAN_ENV], "deleted tags do not count"
    sweep.remove(leftovers)  # again: absent counts as removed


@pytest.mark.lab
def test_a_lab_whose_agent_died_is_swept_with_its_namespaces(lab_state_dir: Path) -> None:
    config_ = cfg("sweep6-dead")
    state = lab.up(config_)
    try:
        assert not [item for item in find() if item.environment == state.env_key], "a healthy lab is live"
        assert state.agent_pid is not None
        stop_agent(state.agent_pid)
        broken = [item for item in find() if item.environment == state.env_key]
        assert [(item.kind, item.reason.split(":")[0]) for item in broken] == [("environment", "broken")]
        sweep.remove(broken)
        assert lab.load_state(state.env_key) is None and list_namespaces(state.env_key) == []
    finally:
        lab.down(config_)


@pytest.mark.lab
def test_older_than_sweeps_live_environments_created_before_it(lab_state_dir: Path) -> None:
    config_ = cfg("sweep6-old")
    state = lab.up(config_)
    try:
        mine = lambda items: [i for i in items if i.environment == state.env_key]  # noqa: E731
        assert not mine(find(older_than=3600.0))
        old = mine(find(older_than=1.0, now=__import__("time").time() + 60))
        assert [(i.kind, i.reason) for i in old] == [("environment", "older than 1s")]
        sweep.remove(old)
        assert lab.load_state(state.env_key) is None and list_namespaces(state.env_key) == []
    finally:
        lab.down(config_)


@pytest.mark.lab
def test_a_namespace_nobody_owns_is_swept(lab_state_dir: Path) -> None:
    subprocess.run(["ip", "netns", "add", STRAY_NS], check=True)
    try:
        assert not [i for i in find() if i.id == STRAY_NS], "too young: it may be a lab being built"
        stray = [i for i in find(grace_seconds=0.0) if i.id == STRAY_NS]
        assert [(i.kind, i.reason) for i in stray] == [("netns", "no environment owns it")]
        sweep.remove(stray)
        assert not Path(f"/run/netns/{STRAY_NS}").exists()
        sweep.remove(stray)
    finally:
        subprocess.run(["ip", "netns", "del", STRAY_NS], check=False, capture_output=True)


def test_an_agent_whose_state_is_gone_is_listed(tmp_path: Path) -> None:
    spec = tmp_path / "environments" / "lab_gone_x" / "agent.json"
    found = sweep._agent_orphans([(999999, spec)], now=1e12, grace=0.0)
    assert [(i.kind, i.id) for i in found] == [("agent", "999999")]


def test_yes_skips_what_belongs_to_an_environment_someone_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    held = "lab:sweep-held:cn-northwest-1"
    holder = start_holder(held, 60, command="peerprobe run")
    try:
        # Never reached while the environment is held: a region with no moto behind it would fail the removal.
        lines = sweep.remove([sweep.Leftover("vpc", "vpc-0held", held, 600.0, "no live environment", region="x")])
    finally:
        holder.kill()
        holder.wait()
    assert len(lines) == 1 and lines[0].startswith("skipped vpc vpc-0held: environment lab:sweep-held")
    assert f"`peerprobe run` (pid {holder.pid} on " in lines[0]
