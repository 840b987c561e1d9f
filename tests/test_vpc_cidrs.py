"""AWS's restrictions on the blocks a VPC can associate beside its primary one (VPC user guide, "VPC CIDR blocks")."""

from __future__ import annotations

import pytest

from peerprobe.vpc_cidrs import PUBLIC_ROW, association_problem, primary_row


@pytest.mark.parametrize(
    ("primary", "row"),
    [
        ("10.1.0.0/16", "10.0.0.0/8"),
        ("172.16.0.0/16", "172.16.0.0/12"),
        ("192.168.0.0/16", "192.168.0.0/16"),
        ("198.19.0.0/16", "198.19.0.0/16"),
        ("100.64.0.0/16", PUBLIC_ROW),
        ("52.0.0.0/16", PUBLIC_ROW),
    ],
)
def test_the_primary_block_picks_the_tables_row(primary: str, row: str) -> None:
    assert primary_row(primary) == row


@pytest.mark.parametrize(
    ("primary", "candidate"),
    [
        ("172.16.0.0/16", "10.0.0.0/16"),  # another RFC 1918 range
        ("172.16.0.0/16", "192.168.0.0/24"),
        ("172.16.0.0/16", "172.31.0.0/16"),  # 172.31.0.0/16 beside a 172.16.0.0/12 primary
        ("10.1.0.0/16", "198.19.0.0/16"),  # 198.19.0.0/16 beside every RFC 1918 primary
        ("198.19.0.0/16", "10.0.0.0/16"),
        ("100.64.0.0/16", "192.168.0.0/16"),  # RFC 1918 beside a 100.64.0.0/10 or public primary
        ("52.0.0.0/16", "198.19.0.0/16"),
    ],
)
def test_restricted_associations_are_refused(primary: str, candidate: str) -> None:
    problem = association_problem(primary, [primary], candidate)
    assert problem is not None and candidate in problem and "association restrictions" in problem


@pytest.mark.parametrize(
    ("primary", "candidate"),
    [
        ("172.16.0.0/16", "100.64.0.0/16"),  # 100.64.0.0/10 beside every primary
        ("192.168.0.0/16", "100.127.0.0/16"),
        ("10.1.0.0/16", "10.2.0.0/16"),  # the same RFC 1918 range
        ("172.16.0.0/16", "172.20.0.0/16"),
        ("10.1.0.0/16", "52.1.0.0/16"),  # a publicly routable block
        ("198.19.0.0/16", "100.64.0.0/16"),
    ],
)
def test_permitted_associations_pass(primary: str, candidate: str) -> None:
    assert association_problem(primary, [primary], candidate) is None


def test_a_vpc_with_a_block_of_10_0_0_0_15_takes_none_of_10_0_0_0_16() -> None:
    assert association_problem("10.1.0.0/16", ["10.1.0.0/16"], "10.0.8.0/24") is not None
    assert association_problem("10.2.0.0/16", ["10.2.0.0/16"], "10.0.8.0/24") is None
