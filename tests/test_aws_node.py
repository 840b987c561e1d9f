"""aws-node's environment <-> SNAT settings, with the CNI's own parsing leniency."""

from __future__ import annotations

import pytest

from peerprobe.aws_node import (
    EXCLUDE_SNAT_CIDRS,
    EXTERNAL_SNAT,
    KNOWN,
    apply_assignments,
    did_you_mean,
    env_for,
    snat_from_env,
    warnings,
)
from peerprobe.config import Snat


def test_defaults_when_unset() -> None:
    assert snat_from_env({}) == Snat()


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("TRUE", True), ("yes", False)])
def test_external_snat_parses_like_go(value: str, expected: bool) -> None:
    assert snat_from_env({EXTERNAL_SNAT: value}).external_snat is expected


def test_invalid_and_ipv6_exclusions_are_skipped() -> None:
    env = {EXCLUDE_SNAT_CIDRS: "192.168.0.0/16, fd00::/8,bogus,172.16.0.0/33,10.0.0.1,10.0.0.0/255.0.0.0"}
    assert snat_from_env(env).exclude_snat_cidrs == ["192.168.0.0/16"]


def test_an_exclusion_with_host_bits_is_its_network_as_in_go() -> None:
    # net.ParseCIDR returns the network: aws-node excludes 10.0.0.0/8 for 10.0.0.1/8.
    assert snat_from_env({EXCLUDE_SNAT_CIDRS: " 10.0.0.1/8"}).exclude_snat_cidrs == ["10.0.0.0/8"]


def test_round_trip() -> None:
    snat = Snat(external_snat=True, exclude_snat_cidrs=["10.0.0.0/8", "172.16.0.0/16"])
    assert snat_from_env(env_for(snat)) == snat


def test_set_and_unset_like_kubectl() -> None:
    env = apply_assignments({EXTERNAL_SNAT: "false", "OTHER": "x"}, [f"{EXTERNAL_SNAT}=true", "OTHER-"])
    assert env == {EXTERNAL_SNAT: "true"}


def test_bad_assignment_is_refused() -> None:
    with pytest.raises(ValueError, match="NAME=VALUE"):
        apply_assignments({}, ["=x"])


@pytest.mark.parametrize("name", ["BAD NAME", "1ST", "A\nB", ""])
def test_a_name_kubectl_would_refuse_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        apply_assignments({}, [f"{name}=1"])


# --- warnings: what aws-node does with names and values it cannot use ------------------------------------------


def test_settings_aws_node_reads_as_given_have_no_warning() -> None:
    good = [
        f"{EXTERNAL_SNAT}=true",
        f"{EXCLUDE_SNAT_CIDRS}=10.0.0.0/8,172.16.0.0/12",
        "WARM_IP_TARGET=5",
        "AWS_VPC_K8S_CNI_RANDOMIZESNAT=none",
        "AWS_VPC_K8S_CNI_CONNMARK=0x80",
        f"{EXTERNAL_SNAT}-",
    ]
    assert warnings(good, {}) == []


@pytest.mark.parametrize(
    ("misspelt", "meant"),
    [
        ("AWS_VPC_K8S_CNI_EXTERNAL_SNAT", EXTERNAL_SNAT),
        ("aws_vpc_k8s_cni_externalsnat", EXTERNAL_SNAT),
        ("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDR", EXCLUDE_SNAT_CIDRS),
        ("WARM_IP_TARGETS", "WARM_IP_TARGET"),
    ],
)
def test_a_misspelt_name_gets_the_name_it_meant(misspelt: str, meant: str) -> None:
    assert did_you_mean(misspelt) == meant
    [message] = warnings([f"{misspelt}=true"], {})
    assert message.startswith(misspelt) and "changes nothing" in message and f"did you mean {meant}?" in message


def test_an_unknown_name_far_from_any_gets_no_guess() -> None:
    [message] = warnings(["SOMETHING_ELSE=1"], {})
    assert "reads no variable of this name" in message and "did you mean" not in message


def test_a_boolean_go_cannot_parse_means_the_default() -> None:
    [message] = warnings([f"{EXTERNAL_SNAT}=yes"], {})
    assert "strconv.ParseBool" in message and "uses the default, false" in message
    assert snat_from_env({EXTERNAL_SNAT: "yes"}).external_snat is False  # and the model agrees


def test_an_invalid_cidr_is_skipped_and_what_is_kept_is_named() -> None:
    [message] = warnings([f"{EXCLUDE_SNAT_CIDRS}=172.16.0.0/33,192.168.0.0/16"], {})
    assert "'172.16.0.0/33' is not an IPv4 CIDR" in message and "aws-node keeps 192.168.0.0/16" in message


def test_a_cidr_with_host_bits_is_named_as_read() -> None:
    [message] = warnings([f"{EXCLUDE_SNAT_CIDRS}=10.1.2.3/8"], {})
    assert "read as 10.0.0.0/8" in message


@pytest.mark.parametrize(
    "assignment",
    ["AWS_VPC_K8S_CNI_VETHPREFIX=toolong", "AWS_VPC_ENI_MTU=100", "POD_MTU=abc", "NETWORK_POLICY_ENFORCING_MODE=on"],
)
def test_a_value_aws_node_refuses_says_it_will_not_start(assignment: str) -> None:
    [message] = warnings([assignment], {})
    assert "refuses to start" in message


def test_exclusions_while_external_snat_is_on_have_no_effect() -> None:
    [message] = warnings([f"{EXTERNAL_SNAT}=true"], {EXCLUDE_SNAT_CIDRS: "10.0.0.0/8"})
    assert f"{EXCLUDE_SNAT_CIDRS} has no effect" in message


def test_every_known_variable_names_the_file_that_reads_it() -> None:
    assert all(variable.source for variable in KNOWN.values()) and len(KNOWN) > 50
