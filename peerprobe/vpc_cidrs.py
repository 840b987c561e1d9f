"""Which further IPv4 CIDR blocks AWS lets a VPC associate beside its primary one.

Source: Amazon VPC user guide, "VPC CIDR blocks", sections "Manage IPv4 CIDR blocks for a VPC" and "IPv4 CIDR
block association restrictions" (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html; the table
of permitted and restricted associations by the primary block's range, awsdocs/amazon-vpc-user-guide).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
SHARED_ADDRESS_SPACE = "100.64.0.0/10"  # RFC 6598; the table permits it beside every primary range
BENCHMARK = "198.19.0.0/16"  # part of RFC 2544's 198.18.0.0/15; the table restricts it beside RFC 1918 primaries
PUBLIC_ROW = "a publicly routable range or 100.64.0.0/10"
SOURCE = "VPC user guide, IPv4 CIDR block association restrictions"
# "IPv4 CIDR blocks per VPC": 5 by default, adjustable up to 50, the primary counted (Amazon VPC quotas).
MAX_BLOCKS = 50

# The table's restricted associations, by the range the primary block is in: (range, why), checked by overlap.
_RESTRICTED: dict[str, tuple[tuple[str, str], ...]] = {
    "10.0.0.0/8": (
        ("172.16.0.0/12", "another RFC 1918 range"),
        ("192.168.0.0/16", "another RFC 1918 range"),
        (BENCHMARK, "restricted beside every RFC 1918 primary"),
    ),
    "172.16.0.0/12": (
        ("10.0.0.0/8", "another RFC 1918 range"),
        ("192.168.0.0/16", "another RFC 1918 range"),
        ("172.31.0.0/16", "restricted beside a 172.16.0.0/12 primary"),
        (BENCHMARK, "restricted beside every RFC 1918 primary"),
    ),
    "192.168.0.0/16": (
        ("10.0.0.0/8", "another RFC 1918 range"),
        ("172.16.0.0/12", "another RFC 1918 range"),
        (BENCHMARK, "restricted beside every RFC 1918 primary"),
    ),
    BENCHMARK: tuple((r, "an RFC 1918 range") for r in RFC1918),
    PUBLIC_ROW: (*((r, "an RFC 1918 range") for r in RFC1918), (BENCHMARK, "restricted beside this primary")),
}


def _net(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr)


def primary_row(primary: str) -> str:
    """The table's row for a primary block: the RFC 1918 range or 198.19.0.0/16 it is in, else PUBLIC_ROW."""
    return next((row for row in (*RFC1918, BENCHMARK) if _net(primary).subnet_of(_net(row))), PUBLIC_ROW)


def association_problem(primary: str, associated: Sequence[str], candidate: str) -> str | None:
    """Why AWS refuses to associate ``candidate`` with a VPC whose primary block is ``primary`` and which already
    holds ``associated`` (the primary among them); None when the table permits it."""
    row = primary_row(primary)
    where = "" if row == PUBLIC_ROW else " in"
    for restricted, why in _RESTRICTED[row]:
        if _net(candidate).overlaps(_net(restricted)):
            return (
                f"AWS does not associate {candidate} with a VPC whose primary CIDR {primary} is{where} {row}: "
                f"{restricted} is {why} ({SOURCE})"
            )
    # "If any of the CIDR blocks associated with the VPC are from the 10.0.0.0/15 range, you cannot add a CIDR
    # block from the 10.0.0.0/16 range."
    low = _net("10.0.0.0/15")
    if _net(candidate).overlaps(_net("10.0.0.0/16")) and any(_net(c).subnet_of(low) for c in associated):
        return f"AWS does not associate a block of 10.0.0.0/16 with a VPC that holds a block of 10.0.0.0/15 ({SOURCE})"
    return None
