"""Config: defaults are the workshop, merge rules, and one clear message for each kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerprobe import config
from peerprobe.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_for(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data)
    return str(caught.value)


def test_defaults_are_the_workshop_topology() -> None:
    default = config.load()
    assert default.vpcs.vpc1.cidr == "172.16.0.0/16" and default.vpcs.vpc2.cidr == "192.168.0.0/16"
    assert default.clusters.vpc1.name == "gcr-eksworkshop-private" and default.clusters.vpc1.nodes == 3
    assert [phase.name for phase in default.phases] == ["baseline", "external-snat", "exclude-snat"]
    assert default.security_groups.open_from_peer == [8080, "nodeport"]


def test_mappings_merge_and_vpcs_keep_their_own_defaults() -> None:
    merged = config.from_mapping({"vpcs": {"vpc1": {"nat_gateway": False}}, "clusters": {"vpc2": {"nodes": 4}}})
    assert merged.vpcs.vpc1.cidr == "172.16.0.0/16" and merged.vpcs.vpc1.nat_gateway is False
    assert merged.vpcs.vpc2.cidr == "192.168.0.0/16"
    assert merged.clusters.vpc2.nodes == 4 and merged.clusters.vpc2.name == "gcr-zhy-eksworkshop"


def test_lists_replace_the_defaults() -> None:
    merged = config.from_mapping({"security_groups": {"open_from_peer": []}, "phases": [{"name": "only"}]})
    assert merged.security_groups.open_from_peer == []
    assert [phase.name for phase in merged.phases] == ["only"]


def test_phase_snat_is_absolute_not_carried_over() -> None:
    merged = config.from_mapping({"phases": [{"name": "a", "snat": {"vpc1": {"external_snat": True}}}, {"name": "b"}]})
    assert merged.phases[1].snat.vpc1.external_snat is False and merged.phases[1].snat.vpc1.is_default


def test_load_reads_a_file(tmp_path: Path) -> None:
    loaded = config.load(write(tmp_path, "name: drift-test\nclusters:\n  vpc1: {nodes: 5}\n"))
    assert loaded.name == "drift-test" and loaded.clusters.vpc1.nodes == 5


def test_exclude_cidrs_accept_the_env_var_form() -> None:
    merged = config.from_mapping(
        {"phases": [{"name": "x", "snat": {"vpc2": {"exclude_snat_cidrs": "10.0.0.0/8, 172.16.0.0/16"}}}]}
    )
    assert merged.phases[0].snat.vpc2.exclude_snat_cidrs == ["10.0.0.0/8", "172.16.0.0/16"]


def test_yaml_syntax_error_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 2, column \d+: invalid YAML"):
        config.load(write(tmp_path, "name: x\n  bad: indentation\nvpcs: {}\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        config.load(tmp_path / "absent.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        config.load(write(tmp_path, "- a\n- b\n"))


def test_unknown_key_names_its_path() -> None:
    message = error_for({"vpcs": {"vpc1": {"cidr_block": "10.0.0.0/16"}}})
    assert message == "vpcs.vpc1.cidr_block: unknown key (did you mean vpcs.vpc1.cidr?)"


def test_overlapping_vpc_cidrs_name_both_keys() -> None:
    message = error_for({"vpcs": {"vpc2": {"cidr": "172.16.128.0/17"}}})
    assert message.startswith("vpcs.vpc1.cidr, vpcs.vpc2.cidr:") and "overlaps" in message


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [("not-a-cidr", "is not a valid CIDR"), ("fd00::/64", "is not IPv4"), ("172.16.0.1/16", "has host bits set")],
)
def test_invalid_cidrs(cidr: str, reason: str) -> None:
    message = error_for({"vpcs": {"vpc1": {"cidr": cidr}}})
    assert message.startswith("vpcs.vpc1.cidr: ") and reason in message


def test_service_cidr_overlapping_a_vpc() -> None:
    message = error_for({"clusters": {"vpc2": {"service_cidr": "192.168.0.0/20"}}})
    assert message.startswith("clusters.vpc2.service_cidr, vpcs.vpc2.cidr:") and "overlaps" in message


def test_invalid_exclude_cidr_names_phase_and_index() -> None:
    message = error_for(
        {"phases": [{"name": "p", "snat": {"vpc1": {"exclude_snat_cidrs": ["192.168.0.0/16", "300.1.0.0/16"]}}}]}
    )
    assert message.startswith("phases[0].snat.vpc1.exclude_snat_cidrs: ") and "300.1.0.0/16" in message


@pytest.mark.parametrize("nodes", [0, 101])
def test_node_count_outside_range(nodes: int) -> None:
    assert error_for({"clusters": {"vpc1": {"nodes": nodes}}}).startswith("clusters.vpc1.nodes: ")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"services": {"external_traffic_policy": "Nowhere"}}, "services.external_traffic_policy"),
        ({"clusters": {"vpc1": {"pod_eni": "tertiary"}}}, "clusters.vpc1.pod_eni"),
        ({"services": {"internal_nlb": {"target_type": "alb"}}}, "services.internal_nlb.target_type"),
    ],
)
def test_unknown_enum_values(data: dict[str, object], path: str) -> None:
    message = error_for(data)
    assert message.startswith(f"{path}: ") and "is not one of" in message


@pytest.mark.parametrize("name", ["-starts-with-dash", "has space", "x" * 101, "dots.are.bad"])
def test_eks_cluster_names_eks_rejects(name: str) -> None:
    assert error_for({"clusters": {"vpc1": {"name": name}}}).startswith("clusters.vpc1.name: ")


@pytest.mark.parametrize("timeout", [0, 0.1, 61])
def test_probe_timeout_out_of_range(timeout: float) -> None:
    assert error_for({"probe": {"timeout_seconds": timeout}}).startswith("probe.timeout_seconds: ")


def test_duplicate_phase_names_quote_the_value() -> None:
    message = error_for({"phases": [{"name": "baseline"}, {"name": "again"}, {"name": "baseline"}]})
    assert message.startswith("phases[2].name, phases[0].name: duplicate 'baseline'")


def test_outside_cidrs_never_the_whole_internet() -> None:
    assert "whole internet" in error_for({"outside_cidrs": ["0.0.0.0/0"]})


def test_vpc_too_small_for_its_nodes() -> None:
    message = error_for({"vpcs": {"vpc1": {"cidr": "172.16.0.0/24"}}, "clusters": {"vpc1": {"nodes": 100}}})
    assert message.startswith("vpcs.vpc1.cidr, clusters.vpc1.nodes:")


def test_open_from_peer_rejects_other_words() -> None:
    assert error_for({"security_groups": {"open_from_peer": ["all"]}}).startswith("security_groups.open_from_peer: ")
