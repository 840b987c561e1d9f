"""Three of moto 5.x's costs, cut without changing an answer: the lab's moto server applies them, and so do the
tests' in-process moto (`install()` once per process)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from moto.ec2.models import core as ec2_core
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.eks import utils as eks_utils
from moto.iam import models as iam_models
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.settings import load_iam_aws_managed_policies


class _KnownPartitions:
    """What moto 5.x's EKS asks a fresh boto3 Session for on every CreateCluster and CreateNodegroup (to check
    a role ARN's partition, moto/eks/utils.py): parsing botocore's endpoint data each time costs ~80 ms with
    the GIL held, so every concurrent call to the server waits. The partitions never change while it runs."""

    partitions: list[str] = eks_utils.Session().get_available_partitions()  # type: ignore[attr-defined]

    def get_available_partitions(self) -> list[str]:
        return list(self.partitions)


# With MOTO_IAM_LOAD_MANAGED_POLICIES (so attaching AmazonEKSClusterPolicy is checked, as AWS checks it), moto
# builds ~1,600 AWS managed policies from 5 MB of JSON for each of an account's six partitions the first time any
# request names the account (moto/iam/models.py get_account_id_from looks in every partition), and again on every
# reset: ~1 s of CPU each time. Built on first read instead, only the partitions a run uses pay, once.
_PENDING = object()


@cache
def _policy_documents() -> dict[str, Any]:
    documents: dict[str, Any] = json.loads(aws_managed_policies_data)
    return documents


def _aws_policies(backend: Any) -> list[Any]:
    if not load_iam_aws_managed_policies():
        return []
    build = iam_models.AWSManagedPolicy.from_data
    return [build(name, backend.account_id, backend.region_name, doc) for name, doc in _policy_documents().items()]


def _materialize(backend: Any) -> None:
    policies = _aws_policies(backend)
    backend.__dict__[_LazyPolicies.key("aws_managed_policies")] = policies
    backend.__dict__[_LazyPolicies.key("managed_policies")] = {policy.arn: policy for policy in policies}


class _LazyPolicies:
    """An IAMBackend attribute whose first read builds the managed policies; writes are kept as they are."""

    def __init__(self, name: str) -> None:
        self.slot = self.key(name)

    @staticmethod
    def key(name: str) -> str:
        return f"_peerprobe_{name}"

    def __get__(self, backend: Any, owner: type | None = None) -> Any:
        if backend is None:
            return self
        if backend.__dict__.get(self.slot, _PENDING) is _PENDING:
            _materialize(backend)
        return backend.__dict__[self.slot]

    def __set__(self, backend: Any, value: Any) -> None:
        backend.__dict__[self.slot] = value


def _pending(_backend: Any) -> object:
    return _PENDING


def _tags_of(resource: Any) -> list[dict[str, str]]:
    """What moto's get_tags answers for one EC2 resource, read from the backend's tag map by its id: moto runs
    DescribeTags with a resource-id filter instead, matching a pattern against every tag of every resource, so
    describing N resources costs N x all tags (400 tagged groups, one tag filter: 0.19 s, 0.012 s by id)."""
    if not resource.id:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource.id), "")
    tags = resource.ec2_backend.tags.get(resource.id, {})
    return [{"resource_id": resource.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]


@cache
def install() -> None:
    """Applies all three, once per process (before any backend exists: one made earlier keeps its policies)."""
    eks_utils.Session = _KnownPartitions  # type: ignore[attr-defined]
    ec2_core.TaggedEC2Resource.get_tags = _tags_of  # type: ignore[method-assign,assignment]
    backend = iam_models.IAMBackend
    # moto's __init__ assigns what these return to the two attributes below: a marker, built on first read.
    setattr(backend, "_init_aws_policies", _pending)  # noqa: B010
    setattr(backend, "_init_managed_policies", _pending)  # noqa: B010
    backend.aws_managed_policies = _LazyPolicies("aws_managed_policies")  # type: ignore[assignment]
    backend.managed_policies = _LazyPolicies("managed_policies")  # type: ignore[assignment]
