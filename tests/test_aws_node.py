"""aws-node's environment <-> SNAT settings, with the CNI's own parsing leniency."""

from __future__ import annotations

import pytest

from peerprobe.aws_node import EXCLUDE_SNAT_CIDRS, EXTERNAL_SNAT, apply_assignments, env_for, snat_from_env
from peerprobe.config import Snat


def test_defaults_when_unset() -> None:
    assert snat_from_env({}) == Snat()


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("TRUE", True), ("yes", False)])
def test_external_snat_parses_like_go(value: str, expected: bool) -> None:
    assert snat_from_env({EXTERNAL_SNAT: value}).external_snat is expected


def test_invalid_and_ipv6_exclusions_are_skipped() -> None:
    env = {EXCLUDE_SNAT_CIDRS: "192.168.0.0/16, fd00::/8,bogus,10.0.0.1/8"}
    assert snat_from_env(env).exclude_snat_cidrs == ["192.168.0.0/16"]


def test_round_trip() -> None:
    snat = Snat(external_snat=True, exclude_snat_cidrs=["10.0.0.0/8", "172.16.0.0/16"])
    assert snat_from_env(env_for(snat)) == snat


def test_set_and_unset_like_kubectl() -> None:
    env = apply_assignments({EXTERNAL_SNAT: "false", "OTHER": "x"}, [f"{EXTERNAL_SNAT}=true", "OTHER-"])
    assert env == {EXTERNAL_SNAT: "true"}


def test_bad_assignment_is_refused() -> None:
    with pytest.raises(ValueError, match="NAME=VALUE"):
        apply_assignments({}, ["=x"])
