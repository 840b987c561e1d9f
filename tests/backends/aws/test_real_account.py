"""Against a real account: only the read-only preflight (no resource is created). Marked `aws`; skipped
unless PEERPROBE_AWS_TESTS=1 and credentials are present (the suite never reaches AWS by default)."""

from __future__ import annotations

import os

import pytest

from peerprobe import config as config_module

pytestmark = pytest.mark.aws


@pytest.mark.skipif(os.environ.get("PEERPROBE_AWS_TESTS") != "1", reason="set PEERPROBE_AWS_TESTS=1 with credentials")
def test_preflight_names_the_caller() -> None:
    from peerprobe.backends.aws.experiment import preflight

    region = os.environ.get("AWS_REGION", "cn-northwest-1")
    identity = preflight(config_module.from_mapping({"region": region}))
    assert identity.account and identity.arn.startswith(f"arn:{identity.partition}:")
