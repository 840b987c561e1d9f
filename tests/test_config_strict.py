"""Config strictness: hostile or mistaken input is refused fast, with the key path first and a short message."""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

import pytest

from peerprobe import config, config_yaml, topology
from peerprobe.backends.lab.net import _names
from peerprobe.errors import ConfigError


def refusal(tmp_path: Path, text: str) -> str:
    path = tmp_path / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert time.perf_counter() - started < 0.5  # "well under a second"
    return str(caught.value)


def error_for(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data)
    return str(caught.value)


# --- names, regions, phase names: in full, in ASCII --------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"name": "workshop\n"}, "name"),
        ({"name": "work\u0441hop"}, "name"),  # a Cyrillic letter
        ({"region": "cn-northwest-1\n"}, "region"),
        ({"region": "cn-northwest-\u0661"}, "region"),  # an Arabic-Indic digit: \d would take it
        ({"clusters": {"vpc1": {"name": "eks\n"}}}, "clusters.vpc1.name"),
        ({"clusters": {"vpc1": {"name": "ekś"}}}, "clusters.vpc1.name"),
        ({"phases": [{"name": "baseline\n"}]}, "phases[0].name"),
        ({"clusters": {"vpc2": {"cni_version": "1.20.\u0664"}}}, "clusters.vpc2.cni_version"),
        ({"vpcs": {"vpc1": {"id": "vpc-0123abcd\n"}}}, "vpcs.vpc1.id"),
        ({"images": {"echo": "busybox\nlatest"}}, "images.echo"),
    ],
)
def test_names_match_in_full_and_in_ascii(data: dict[str, object], path: str) -> None:
    assert error_for(data).startswith(f"{path}: ")


def test_well_formed_names_still_pass() -> None:
    loaded = config.from_mapping(
        {
            "name": "lab-2",
            "region": "us-gov-west-1",
            "phases": [{"name": "x1"}],
            "vpcs": {"vpc1": {"id": "vpc-0a1b2c3d"}},
        }
    )
    assert loaded.region == "us-gov-west-1" and loaded.vpcs.vpc1.id == "vpc-0a1b2c3d"


# --- YAML -------------------------------------------------------------------------------------------------

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n" for prev, name in zip("abcdefg", "bcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: a\nregion: us-east-1\nname: b\n", "name: duplicate key 'name' at line 3 (first at line 1)"),
        (
            "vpcs:\n  vpc1:\n    cidr: 10.0.0.0/16\n    cidr: 10.1.0.0/16\n",
            "vpcs.vpc1.cidr: duplicate key 'cidr' at line 4",
        ),
        (LAUGHS, "aliases expand to more than"),
        ("a: &x [*x]\n", "an alias refers to the value that contains it"),
        ("a: " + "[" * 11 + "]" * 11 + "\n", "nested deeper than"),
        ("".join(" " * i + f"k{i}:\n" for i in range(40)), "nested deeper than"),
        ("1: x\n", "the key '1' is not text"),
        ("name: !!python/object/apply:os.system [true]\n", "name: line 1: "),
        ("phases: !!set {a: null}\n", "phases: line 1: the YAML tag"),
        ("name: x\n  bad: indentation\n", "line 2, column"),
        ('name: x\nregion: "a\x01"\n', "line 2: invalid YAML: unacceptable character #x0001"),
        ("name: a\n---\nname: b\n", "line 2, column 1: invalid YAML: expected a single document"),
        ("- a\n- b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
    ],
)
def test_yaml_refusals(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refusal(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "path", "wanted"),
    [
        ("clusters: {vpc1: {nodes: yes}}\n", "clusters.vpc1.nodes", "a number"),
        ("probe: {timeout_seconds: off}\n", "probe.timeout_seconds", "a number"),
        ("probe: {attempts: on}\n", "probe.attempts", "a number"),
        ("name: no\n", "name", "text"),
        ("region: off\n", "region", "text"),
        ("services: {external_traffic_policy: on}\n", "services.external_traffic_policy", "one of Cluster or Local"),
        ("security_groups: {open_from_peer: [8080, yes]}\n", "security_groups.open_from_peer[1]", "a port number"),
    ],
)
def test_yaml_11_booleans_where_a_number_or_text_is_meant(tmp_path: Path, text: str, path: str, wanted: str) -> None:
    message = refusal(tmp_path, text)
    assert message.startswith(f"{path}: ") and "read by YAML as a boolean" in message and wanted in message


@pytest.mark.parametrize("data", [{"clusters": {"vpc1": {"nodes": True}}}, {"probe": {"timeout_seconds": False}}])
def test_a_boolean_is_never_taken_as_a_number(data: dict[str, object]) -> None:
    assert "got the boolean" in error_for(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"vpcs": {"vpc1": {"nat_gateway": 1}}}, "vpcs.vpc1.nat_gateway: expected true or false, got the number 1"),
        ({"vpcs": {"vpc1": None}}, "vpcs.vpc1: must be a mapping of keys (got null)"),
        ({"phases": [{"name": "a"}, 5]}, "phases[1]: must be a mapping of keys (got the number 5)"),
        ({"phases": {"name": "a"}}, "phases: must be a list (got a mapping"),
        ({"clusters": {"vpc1": {"cni_version": 1.2}}}, "clusters.vpc1.cni_version: expected text, got the number 1.2"),
    ],
)
def test_a_value_of_the_wrong_kind_says_what_was_given(data: dict[str, object], expected: str) -> None:
    assert error_for(data).startswith(expected)


def test_yaml_booleans_where_a_boolean_is_meant_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("vpcs: {vpc1: {nat_gateway: no}}\npeer_host: {public_ip: off}\n", encoding="utf-8")
    loaded = config.load(path)
    assert loaded.vpcs.vpc1.nat_gateway is False and loaded.peer_host.public_ip is False


def test_merge_keys_and_small_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("clusters:\n  vpc1: &c {nodes: 4, name: one}\n  vpc2: {<<: *c, name: two}\n", encoding="utf-8")
    loaded = config.load(path)
    assert (loaded.clusters.vpc2.name, loaded.clusters.vpc2.nodes) == ("two", 4)


def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    return path


def huge(tmp_path: Path) -> Path:
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\n" + "#" * config_yaml.MAX_BYTES + "\n", encoding="utf-8")
    return path


def device_link(tmp_path: Path) -> Path:
    path = tmp_path / "link.yaml"
    path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp, "is a directory, not a regular file"),
        (fifo, "is a FIFO, not a regular file"),
        (lambda tmp: Path("/dev/zero"), "is a character device, not a regular file"),
        (device_link, "is a character device, not a regular file"),
        (huge, "a config file is at most 64 KiB"),
    ],
)
def test_only_regular_files_of_bounded_size(tmp_path: Path, make: object, expected: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=expected):
        config.load(path)
    assert time.perf_counter() - started < 0.5


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(path)


@pytest.mark.parametrize(
    "data",
    [
        {"name": "x" * 100_000},
        {"clusters": {"vpc1": {"name": "x" * 100_000}}},
        {"vpcs": {"vpc1": {"cidr": "1" * 100_000}}},
        {"services": {"external_traffic_policy": "L" * 100_000}},
        {"k" * 100_000: 1},
        {"probe": {"timeout_seconds": "9" * 100_000}},
        {"outside_cidrs": ["x" * 100_000]},
    ],
)
def test_an_error_never_echoes_a_huge_input(data: dict[str, object]) -> None:
    message = error_for(data)
    assert len(message) < 400 and "…" in message


def test_many_errors_are_cut_to_a_readable_list() -> None:
    message = error_for({f"key{i}": 1 for i in range(100)})
    lines = message.splitlines()
    assert len(lines) == config.MAX_ERROR_LINES + 1 and lines[-1] == "... and 80 more errors"


# --- outside_cidrs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidrs", "expected"),
    [
        (
            ["0.0.0.0/0"],
            "outside_cidrs: item 1: 0.0.0.0/0 is wider than a /8: it would open the load balancers to the whole "
            "internet",
        ),
        (["0.0.0.0/1", "128.0.0.0/1"], "outside_cidrs: item 1: 0.0.0.0/1 is wider than a /8"),
        (["198.51.100.7/32", "10.0.0.0/7"], "outside_cidrs: item 2: 10.0.0.0/7 is wider than a /8"),
        (
            ["10.0.0.0/8", "11.0.0.0/8"],
            "outside_cidrs: 10.0.0.0/8, 11.0.0.0/8 hold 33,554,432 addresses, more than a /8",
        ),
        (["1.2.3.0/24", "1.2.3.0/24"], "outside_cidrs: item 2: duplicate '1.2.3.0/24'"),
        (["1.2.0.0/16", "1.2.3.0/24"], "outside_cidrs[1], outside_cidrs[0]: 1.2.3.0/24 overlaps 1.2.0.0/16"),
        (["224.0.0.0/8"], "outside_cidrs: item 1: '224.0.0.0/8' overlaps 224.0.0.0/4, multicast"),
        (["1.2.3.4/24"], "outside_cidrs: item 1: '1.2.3.4/24' has host bits set"),
    ],
)
def test_outside_cidrs_stay_narrow(cidrs: list[str], expected: str) -> None:
    assert error_for({"outside_cidrs": cidrs}).startswith(expected)


def test_many_small_outside_cidrs_add_up() -> None:
    cidrs = [f"{first}.0.0.0/9" for first in range(20, 23)]
    assert "large part of the internet" in error_for({"outside_cidrs": cidrs})


def test_a_few_outside_addresses_are_fine() -> None:
    loaded = config.from_mapping({"outside_cidrs": ["203.0.113.7/32", "100.0.0.0/9"]})
    assert loaded.outside_cidrs == ["203.0.113.7/32", "100.0.0.0/9"]


# --- VPC CIDRs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "reason"),
    [
        ("0.0.0.0/16", "'this network'"),
        ("127.0.0.0/16", "loopback"),
        ("224.0.0.0/16", "multicast"),
        ("239.255.0.0/16", "multicast"),
        ("240.0.0.0/16", "reserved"),
        ("255.255.255.240/28", "reserved"),
        ("169.254.0.0/16", "link-local"),
        ("192.0.2.0/24", "documentation range"),
        ("198.51.100.0/24", "documentation range"),
        ("198.51.0.0/16", "documentation range"),
        ("203.0.113.0/28", "documentation range"),
    ],
)
def test_vpc_cidrs_refuse_non_unicast_and_lab_ranges(cidr: str, reason: str) -> None:
    message = error_for({"vpcs": {"vpc2": {"cidr": cidr}}})
    assert message.startswith("vpcs.vpc2.cidr: ") and reason in message


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "100.64.0.0/16", "11.0.0.0/16"])
def test_vpc_cidrs_take_private_and_publicly_routable_ranges(cidr: str) -> None:
    assert config.from_mapping({"vpcs": {"vpc2": {"cidr": cidr}}}).vpcs.vpc2.cidr == cidr


def test_every_address_the_lab_keeps_for_itself_is_reserved() -> None:
    lab_addresses = [
        *_names.ROUTER_IGW,
        *_names.PEERING.values(),
        *(address for pair in _names.IGW_INET.values() for address in pair),
        _names.OUTSIDE_GATEWAY,
        _names.POD_GATEWAY,
        _names.LB_BACKEND_POOL,
        topology.OUTSIDE_CLIENT,
        *(str(next(ipaddress.IPv4Network(pool).hosts())) for pool in topology.PUBLIC_POOLS.values()),
    ]
    reserved = [ipaddress.IPv4Network(cidr) for cidr in config.LAB_RESERVED]
    assert lab_addresses and all(any(ipaddress.IPv4Address(a) in net for net in reserved) for a in lab_addresses)


@pytest.mark.parametrize("cidr", ["172.16.0.1/16", "192.168.1.0/16"])
def test_host_bits_set_stay_invalid(cidr: str) -> None:
    message = error_for({"vpcs": {"vpc1": {"cidr": cidr}}})
    assert message.startswith("vpcs.vpc1.cidr: ") and "host bits set" in message


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        ({"vpcs": {"vpc2": {"cidr": "172.16.0.0/20"}}}, "vpcs.vpc1.cidr, vpcs.vpc2.cidr: "),
        ({"clusters": {"vpc1": {"service_cidr": "172.16.0.0/16"}}}, "clusters.vpc1.service_cidr, vpcs.vpc1.cidr: "),
    ],
)
def test_cross_field_errors_name_every_key_and_say_overlaps(data: dict[str, object], keys: str) -> None:
    message = error_for(data)
    assert message.startswith(keys) and "overlaps" in message


def test_every_cross_field_error_is_reported_at_once() -> None:
    message = error_for(
        {"clusters": {"vpc1": {"name": "same"}, "vpc2": {"name": "same"}}, "phases": [{"name": "a"}, {"name": "a"}]}
    )
    assert [line.split(":")[0] for line in message.splitlines()] == [
        "clusters.vpc1.name, clusters.vpc2.name",
        "phases[1].name, phases[0].name",
    ]


def test_adopted_subnets_are_named_by_id_or_by_name_tag() -> None:
    subnets = {"private": ["priv-a", "subnet-0123456789abcdef0"], "public": ["public a"]}
    cfg = config.from_mapping({"vpcs": {"vpc1": {"id": "vpc-0123456789abcdef0", "subnets": subnets}}})
    assert cfg.vpcs.vpc1.subnets.private == ["priv-a", "subnet-0123456789abcdef0"]
    with pytest.raises(ConfigError, match=r"^vpcs\.vpc1\.subnets\.private: item 1: .* neither a subnet id nor"):
        config.from_mapping({"vpcs": {"vpc1": {"subnets": {"private": ["priv\na"]}}}})
