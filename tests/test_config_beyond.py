"""The keys beyond the workshop: secondary CIDRs, custom networking, pod security groups, peering.via/route_cidrs.
Each refusal starts with the key path (every key involved for a cross-field rule) and says "overlaps" for overlaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from peerprobe import config
from peerprobe.cli import app
from peerprobe.errors import ConfigError

CN = {"vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}}}


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data)
    return str(caught.value)


def custom(cidr: str = "100.64.0.0/16", **cluster: Any) -> dict[str, Any]:
    return {**CN, "clusters": {"vpc1": {"custom_networking": {"enabled": True, "cidr": cidr}, **cluster}}}


def test_the_new_keys_default_to_the_workshop() -> None:
    loaded = config.load()
    assert loaded.vpcs.vpc1.secondary_cidrs == [] and loaded.clusters.vpc1.pod_security_groups is None
    assert not loaded.clusters.vpc1.custom_networking.enabled
    assert (loaded.peering.via, loaded.peering.route_cidrs) == ("peering", "all")


def test_every_new_key_is_accepted_together() -> None:
    loaded = config.from_mapping(
        {
            **custom(pod_security_groups={"mode": "standard", "pods": ["echo"]}),
            "peering": {"via": "transit-gateway", "route_cidrs": "primary"},
        }
    )
    assert loaded.clusters.vpc1.pods_on_secondary_eni and loaded.clusters.vpc1.branch_eni("echo")
    assert not loaded.clusters.vpc1.branch_eni("busybox")


@pytest.mark.parametrize(
    ("secondary", "path", "words"),
    [
        ("100.64.0.1/16", "vpcs.vpc1.secondary_cidrs: item 1", "host bits"),
        ("100.64.0.0/12", "vpcs.vpc1.secondary_cidrs: item 1", "between /16 and /28"),
        ("192.0.2.0/24", "vpcs.vpc1.secondary_cidrs: item 1", "overlaps 192.0.2.0/24"),  # the lab's outside range
        ("169.254.0.0/16", "vpcs.vpc1.secondary_cidrs: item 1", "link-local"),
        ("127.0.0.0/16", "vpcs.vpc1.secondary_cidrs: item 1", "loopback"),
    ],
)
def test_each_secondary_cidr_is_a_vpc_block(secondary: str, path: str, words: str) -> None:
    message = error_for({"vpcs": {"vpc1": {"secondary_cidrs": [secondary]}}})
    assert message.startswith(f"{path}: ") and words in message


def test_a_duplicate_secondary_cidr_is_quoted() -> None:
    message = error_for({"vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/16", "100.64.0.0/16"]}}})
    assert message == "vpcs.vpc1.secondary_cidrs: item 2: duplicate '100.64.0.0/16'"


@pytest.mark.parametrize(
    ("vpcs", "first", "second"),
    [
        ({"vpc1": {"secondary_cidrs": ["172.16.8.0/24"]}}, "vpcs.vpc1.secondary_cidrs[0]", "vpcs.vpc1.cidr"),
        (
            {"vpc1": {"secondary_cidrs": ["100.64.0.0/16", "100.64.8.0/24"]}},
            "vpcs.vpc1.secondary_cidrs[0]",
            "vpcs.vpc1.secondary_cidrs[1]",
        ),
        (
            {"vpc1": {"secondary_cidrs": ["100.64.0.0/16"]}, "vpc2": {"secondary_cidrs": ["100.64.0.0/20"]}},
            "vpcs.vpc1.secondary_cidrs[0]",
            "vpcs.vpc2.secondary_cidrs[0]",
        ),
        ({"vpc2": {"secondary_cidrs": ["172.16.0.0/16"]}}, "vpcs.vpc2.secondary_cidrs[0]", "vpcs.vpc1.cidr"),
    ],
)
def test_overlapping_blocks_name_both_keys(vpcs: dict[str, Any], first: str, second: str) -> None:
    message = error_for({"vpcs": vpcs})
    assert message.startswith(f"{first}, {second}: ") and " overlaps " in message


def test_a_secondary_cidr_overlapping_a_service_cidr_names_both() -> None:
    vpc2 = {"cidr": "10.0.0.0/16", "secondary_cidrs": ["10.100.0.0/16"]}
    message = error_for({"vpcs": {"vpc2": vpc2}})
    assert "clusters.vpc1.service_cidr, vpcs.vpc2.secondary_cidrs[0]: 10.100.0.0/16 overlaps 10.100.0.0/16" in message


@pytest.mark.parametrize("secondary", ["10.0.0.0/16", "192.168.100.0/24", "172.31.0.0/16", "198.19.0.0/16"])
def test_aws_association_restrictions_refuse_ranges_beside_an_rfc1918_primary(secondary: str) -> None:
    """VPC user guide, "IPv4 CIDR block association restrictions", the 172.16.0.0/12 row (vpc1's primary)."""
    message = error_for({"vpcs": {"vpc1": {"secondary_cidrs": [secondary]}, "vpc2": {"cidr": "10.200.0.0/16"}}})
    assert message.startswith("vpcs.vpc1.secondary_cidrs[0], vpcs.vpc1.cidr: AWS does not associate")


@pytest.mark.parametrize("secondary", ["100.64.0.0/16", "100.100.0.0/16", "172.20.0.0/16"])
def test_rfc6598_and_the_same_rfc1918_range_are_accepted(secondary: str) -> None:
    assert config.from_mapping({"vpcs": {"vpc1": {"secondary_cidrs": [secondary]}}}).vpcs.vpc1.secondary_cidrs


def test_custom_networking_needs_a_cidr() -> None:
    message = error_for({"clusters": {"vpc1": {"custom_networking": {"enabled": True}}}})
    assert message.startswith("clusters.vpc1.custom_networking.cidr, clusters.vpc1.custom_networking.enabled: ")


def test_a_custom_networking_cidr_must_be_one_of_the_vpcs_secondary_cidrs() -> None:
    message = error_for(custom("100.65.0.0/16"))
    assert message.startswith("clusters.vpc1.custom_networking.cidr, vpcs.vpc1.secondary_cidrs: 100.65.0.0/16 is not")


def test_a_custom_networking_cidr_too_small_for_the_pod_subnets() -> None:
    message = error_for(
        {"vpcs": {"vpc1": {"secondary_cidrs": ["100.64.0.0/26"]}}, **{"clusters": custom("100.64.0.0/26")["clusters"]}}
    )
    assert message.startswith("clusters.vpc1.custom_networking.cidr, clusters.vpc1.nodes: ")


@pytest.mark.parametrize(
    ("cluster", "path"),
    [
        (
            {**custom()["clusters"]["vpc1"], "cni_version": "1.1.0"},
            "clusters.vpc1.custom_networking.enabled, clusters.vpc1.cni_version",
        ),
        (
            {"pod_security_groups": {}, "cni_version": "1.7.6"},
            "clusters.vpc1.pod_security_groups, clusters.vpc1.cni_version",
        ),
        (
            {"pod_security_groups": {"mode": "standard"}, "cni_version": "1.10.4"},
            "clusters.vpc1.pod_security_groups.mode, clusters.vpc1.cni_version",
        ),
    ],
)
def test_features_older_cnis_lack_are_refused(cluster: dict[str, Any], path: str) -> None:
    message = error_for({**CN, "clusters": {"vpc1": cluster}})
    assert message.startswith(f"{path}: ") and "or later" in message


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ({"pods": []}, "clusters.vpc1.pod_security_groups.pods: names no pod"),
        ({"pods": ["echo", "echo"]}, "clusters.vpc1.pod_security_groups.pods: item 2: duplicate 'echo'"),
        ({"pods": ["nginx"]}, "clusters.vpc1.pod_security_groups.pods[0]: 'nginx' is not one of echo or busybox"),
        ({"mode": "relaxed"}, "clusters.vpc1.pod_security_groups.mode: 'relaxed' is not one of strict or standard"),
        (
            {"mdoe": "strict"},
            "clusters.vpc1.pod_security_groups.mdoe: unknown key (did you mean "
            "clusters.vpc1.pod_security_groups.mode?)",
        ),
    ],
)
def test_pod_security_groups_are_validated(groups: dict[str, Any], expected: str) -> None:
    assert error_for({"clusters": {"vpc1": {"pod_security_groups": groups}}}).startswith(expected)


@pytest.mark.parametrize(("key", "value"), [("via", "tgw"), ("route_cidrs", "some")])
def test_peering_words_are_refused(key: str, value: str) -> None:
    assert error_for({"peering": {key: value}}).startswith(f"peering.{key}: '{value}' is not one of ")


def test_a_bad_secondary_cidr_exits_2_with_the_key_path_first(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("vpcs: {vpc1: {secondary_cidrs: [192.168.7.0/24]}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", "--config", str(path)])
    assert result.exit_code == 2 and "vpcs.vpc1.secondary_cidrs[0], vpcs.vpc2.cidr: " in result.output


def test_a_custom_networking_cidr_outside_the_vpc_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("clusters: {vpc2: {custom_networking: {enabled: true, cidr: 100.64.0.0/16}}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", "--config", str(path)])
    assert (
        result.exit_code == 2 and "clusters.vpc2.custom_networking.cidr, vpcs.vpc2.secondary_cidrs: " in result.output
    )
