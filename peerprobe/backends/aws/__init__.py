"""The AWS adapter: boto3 clients from one factory, idempotent ensure/delete operations, errors translated."""

from peerprobe.backends.aws._base import Waits
from peerprobe.backends.aws._identity import Identity
from peerprobe.backends.aws._identity import preflight as identity_preflight
from peerprobe.backends.aws.clients import ClientFactory
from peerprobe.backends.aws.cloud import AwsCloud, aws_cloud

__all__ = ["AwsCloud", "ClientFactory", "Identity", "Waits", "aws_cloud", "identity_preflight"]
