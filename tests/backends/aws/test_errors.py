"""botocore errors become peerprobe errors, most specific first, naming the resource and cut short."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, WaiterError

from peerprobe.backends.aws import AwsCloud
from peerprobe.backends.aws._errors import MAX_DETAIL, aws_errors, translate
from peerprobe.errors import (
    ConflictError,
    CredentialsError,
    InfrastructureError,
    NotFoundError,
    PeerprobeError,
    TransientError,
    WaitTimeoutError,
)


def _client_error(code: str, status: int = 400, message: str = "boom") -> ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "SomeOperation")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("RequestLimitExceeded", 503, TransientError),
        ("Throttling", 400, TransientError),
        ("ThrottlingException", 400, TransientError),
        ("InternalError", 500, TransientError),
        ("SomethingNew", 502, TransientError),
        ("InvalidVpcID.NotFound", 400, NotFoundError),
        ("InvalidGroup.NotFound", 400, NotFoundError),
        ("ResourceNotFoundException", 404, NotFoundError),
        ("LoadBalancerNotFound", 400, NotFoundError),
        ("DependencyViolation", 400, ConflictError),
        ("ResourceInUseException", 409, ConflictError),
        ("InvalidIPAddress.InUse", 400, ConflictError),
        ("IncorrectState", 400, ConflictError),
        ("IncorrectInstanceState", 400, ConflictError),
        ("InvalidPermission.Duplicate", 400, ConflictError),
        ("UnauthorizedOperation", 403, InfrastructureError),
        ("InvalidParameterValue", 400, InfrastructureError),
    ],
)
def test_codes_map_to_our_types(code: str, status: int, expected: type[InfrastructureError]) -> None:
    error = translate(_client_error(code, status), kind="security group", resource_id="sg-123", name="vpc1-nodes")
    assert type(error) is expected
    assert str(error) == f"security group sg-123 (vpc1-nodes): {code}: boom"
    assert isinstance(error, InfrastructureError)
    assert (error.resource, error.resource_id, error.state) == ("security group", "sg-123", code)


def test_payload_is_cut_short() -> None:
    error = translate(_client_error("InvalidParameterValue", message="x" * 5000), kind="vpc", resource_id="vpc-1")
    assert len(str(error)) < MAX_DETAIL + 60


def test_context_manager_raises_from_the_sdk_error() -> None:
    original = _client_error("DependencyViolation")
    with pytest.raises(ConflictError) as caught, aws_errors("vpc", "vpc-1", "vpc1"):
        raise original
    assert caught.value.__cause__ is original


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError),
        (NoCredentialsError(), CredentialsError),
        (WaiterError(name="NatGatewayAvailable", reason="Max attempts exceeded", last_response={}), WaitTimeoutError),
        (
            WaiterError(
                name="NatGatewayAvailable",
                reason="Waiter encountered a terminal failure state",
                last_response={"Error": {"Code": "NatGatewayNotFound", "Message": "gone"}},
            ),
            NotFoundError,
        ),
    ],
)
def test_botocore_errors(error: Exception, expected: type[PeerprobeError]) -> None:
    translated = translate(error, kind="nat gateway", resource_id="nat-1")
    assert type(translated) is expected
    assert str(translated).startswith("nat gateway nat-1: ")


def test_a_real_moto_error_is_translated(cloud: AwsCloud) -> None:
    with pytest.raises(NotFoundError, match=r"^instance i-0123456789abcdef0: InvalidInstanceID.NotFound"):
        cloud.instance("i-0123456789abcdef0")
