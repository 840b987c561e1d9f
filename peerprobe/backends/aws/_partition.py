"""The partition of a region (aws, aws-cn, aws-us-gov) and what follows from it: ARNs, DNS suffixes, service
principals. Derived from botocore's endpoint data for the region, never hard-coded per call site."""

from __future__ import annotations

from functools import cache

from peerprobe.backends.aws.clients import new_session

# Service principals that differ in the China partition: EC2's is ec2.amazonaws.com.cn there (as eksctl
# writes it in its node role trust policy); EKS's is eks.amazonaws.com everywhere.
_SUFFIXED_PRINCIPALS = frozenset({"ec2"})


@cache
def partition(region: str) -> str:
    """botocore's partition for the region: "aws-cn" for cn-northwest-1, "aws" for us-east-1."""
    found = new_session().get_partition_for_region(region)
    return str(found)


def dns_suffix(region: str) -> str:
    """amazonaws.com.cn in the China partition, amazonaws.com elsewhere."""
    return "amazonaws.com.cn" if partition(region) == "aws-cn" else "amazonaws.com"


def arn(region: str, service: str, resource: str, *, account: str = "", arn_region: str = "") -> str:
    """arn:<partition>:<service>:<region>:<account>:<resource> with the partition of `region`."""
    return f"arn:{partition(region)}:{service}:{arn_region}:{account}:{resource}"


def managed_policy(region: str, name: str) -> str:
    """An AWS managed policy's ARN in the region's partition (arn:aws-cn:iam::aws:policy/... in China)."""
    return arn(region, "iam", f"policy/{name}", account="aws")


def service_principal(region: str, service: str) -> str:
    """The principal a trust policy names for `service` in the region's partition."""
    if service in _SUFFIXED_PRINCIPALS:
        return f"{service}.{dns_suffix(region)}"
    return f"{service}.amazonaws.com"
