"""Fixtures for the lab-network tests: skip `lab` tests without root or `ip netns`; one workshop lab per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from labnet_helpers import Lab, build_lab, unavailable

from peerprobe import config as cfg


@pytest.fixture(autouse=True)
def _skip_without_namespaces(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("lab") and (reason := unavailable()):
        pytest.skip(reason)


@pytest.fixture(scope="module")
def workshop() -> Iterator[Lab]:
    if reason := unavailable():
        pytest.skip(reason)
    lab = build_lab(cfg.load())
    yield lab
    lab.stop()
