"""The credential and region preflight: one read-only STS GetCallerIdentity, before anything is created."""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from botocore.exceptions import BotoCoreError

from peerprobe.backends.aws._errors import aws_errors
from peerprobe.backends.aws._partition import partition
from peerprobe.backends.aws.clients import ClientFactory, new_session
from peerprobe.errors import CredentialsError

log = structlog.get_logger()


@dataclass(frozen=True)
class Identity:
    """Who the credentials are (never the credentials themselves)."""

    account: str
    arn: str
    partition: str
    region: str


def check_region(region: str) -> None:
    """The region must be one botocore knows for EKS in its partition (cn-northwest-1 is, in aws-cn)."""
    try:
        found = partition(region)
    except BotoCoreError as error:  # UnknownRegionError: no partition claims the name
        raise CredentialsError(f"region: {region!r} belongs to no AWS partition botocore knows") from error
    known = new_session().get_available_regions("eks", partition_name=found)
    if known and region not in known:
        raise CredentialsError(f"region: {region!r} is not an EKS region of partition {partition(region)}")


def preflight(clients: ClientFactory) -> Identity:
    """STS GetCallerIdentity through the factory: no credentials, refused credentials or no region raise
    CredentialsError (exit 2) before anything exists; nothing here creates anything."""
    check_region(clients.region)
    session = clients.session()
    if not clients.loopback and session.get_credentials() is None:
        raise CredentialsError(
            "aws credentials: none found (environment, aws.profile, shared files, SSO or an instance role); "
            "nothing was created"
        )
    with aws_errors("sts caller identity", clients.region):
        found = clients.client("sts").get_caller_identity()
    identity = Identity(
        account=str(found["Account"]), arn=str(found["Arn"]), partition=partition(clients.region), region=clients.region
    )
    log.info("aws.identity", account=identity.account, arn=identity.arn, region=identity.region)
    return identity
