"""Shared fixtures: the workshop config, its planned topology, and safe AWS settings for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog

from peerprobe import config, server, topology
from tests.session import lab_state_dir, prefect_server

__all__ = ["lab_state_dir", "prefect_server"]  # registered here only: one instance for the session

# Any Prefect server a test starts (the test harness, an ephemeral one) inherits this: no telemetry leaves the
# machine. Set at import, before a test can start one.
os.environ.update(server.NOTHING_LEAVES)


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
