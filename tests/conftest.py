"""Shared fixtures: the workshop config, its planned topology, and safe AWS settings for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

from peerprobe import config, server, topology
from peerprobe.backends.lab import moto_patches
from tests.session import lab_state_dir, prefect_server

__all__ = ["lab_state_dir", "prefect_server"]  # registered here only: one instance for the session

# Any Prefect server a test starts (the test harness, an ephemeral one) inherits this: no telemetry leaves the
# machine. Set at import, before a test can start one.
os.environ.update(server.NOTHING_LEAVES)

# The tests' in-process moto is the lab server's moto: the same costs cut, before any test makes a backend.
moto_patches.install()


# The longest scopes (module, or class) of the suite, a minute or more each on one worker, put first. xdist's loadscope
# hands out scopes with more tests first and keeps this order only among scopes of the same size (handing these out
# first regardless, with --no-loadscope-reorder, made the suite slower: 17 min 50 s against 11 min 53 s).
LONGEST_FIRST = (
    "tests/test_fault_campaign.py",
    "tests/test_cli_ownership.py",
    "tests/flows/test_experiment.py",
    "tests/flows/test_fleet_worker.py",
    "tests/backends/aws/test_world.py",
    "tests/backends/lab/test_lab_services.py",
    "tests/flows/test_attach_flow.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 must never reach the instance metadata service or a real endpoint from the tests.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def _logs_to_open_streams() -> Iterator[None]:
    # A command run through CliRunner points structlog at its own stderr, which is closed when the command ends:
    # a warning a later test logs in this process would fail on it ("I/O operation on closed file").
    yield
    structlog.reset_defaults()


@pytest.fixture
def workshop() -> config.ExperimentConfig:
    return config.load()


@pytest.fixture
def workshop_topology(workshop: config.ExperimentConfig) -> topology.Topology:
    return topology.plan(workshop)
