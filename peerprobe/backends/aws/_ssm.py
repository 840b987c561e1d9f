"""SSM: the Amazon Linux AMI from its public parameter, and Run Command on the EC2 host (one command per
batch, polled to a terminal status within a bound)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import AwsBase
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.errors import InfrastructureError

log = structlog.get_logger()

# Public parameter of the latest Amazon Linux 2023 AMI; published in every commercial and China region.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
_DONE = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"})
POLL_SECONDS = 2.0
SSM_REGISTRATION_SECONDS = 10 * 60  # registration after boot: usually under two minutes


class SsmOps(AwsBase):
    @property
    def ssm(self) -> Any:
        return self.clients.client("ssm")

    def latest_ami(self, parameter: str | None = None) -> str:
        name = parameter or AMI_PARAMETER
        with aws_errors("ssm parameter", name):
            return str(self.ssm.get_parameter(Name=name)["Parameter"]["Value"])

    def run_shell(self, instance_id: str, commands: Sequence[str], *, timeout_seconds: float) -> str:
        """Run one AWS-RunShellScript on the instance and return its standard output (SSM keeps 24,000
        characters of it); a failed or timed-out command raises, naming the instance and the command id.
        Waits first (bounded) until the instance's SSM agent has registered and is Online."""
        self.wait_ssm_online(instance_id)
        with aws_errors("ssm command", instance_id):
            command = self.ssm.send_command(
                InstanceIds=[instance_id],
                DocumentName="AWS-RunShellScript",
                Parameters={"commands": list(commands), "executionTimeout": [str(int(timeout_seconds))]},
                TimeoutSeconds=max(30, int(timeout_seconds)),
                Comment="peerprobe probes",
            )["Command"]
        command_id = str(command["CommandId"])
        log.info("ssm.command_sent", instance_id=instance_id, command_id=command_id)
        invocation = self.waits.poll(
            lambda: self._finished(command_id, instance_id),
            kind="ssm command",
            resource_id=command_id,
            goal=f"finished on {instance_id}",
            max_seconds=timeout_seconds + 60,
            first=POLL_SECONDS,
        )
        if invocation["Status"] != "Success":
            raise InfrastructureError(
                f"ssm command {command_id} on {instance_id}: {invocation['Status']}: "
                f"{str(invocation.get('StandardErrorContent', ''))[:200]}",
                resource="ssm command",
                resource_id=command_id,
                state=str(invocation["Status"]),
            )
        return str(invocation.get("StandardOutputContent", ""))

    def wait_ssm_online(self, instance_id: str) -> None:
        """Until the instance's SSM agent has registered and pings Online: a new instance registers a minute or
        two after boot, once its instance profile's credentials work, and SendCommand to an instance that has
        not answers InvalidInstanceId (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html)."""
        seen: dict[str, str] = {}

        def online() -> bool | None:
            status = self._ping_status(instance_id)
            seen["status"] = status
            return True if status == "Online" else None

        self.waits.poll(
            online,
            kind="ssm managed instance",
            resource_id=instance_id,
            goal="Online",
            max_seconds=SSM_REGISTRATION_SECONDS,
            first=POLL_SECONDS * 5,
            state=lambda: f"ping status {seen.get('status')}",
        )

    def _ping_status(self, instance_id: str) -> str:
        """The agent's PingStatus (Online, ConnectionLost, Inactive), "not registered" before it registers."""
        with aws_errors("ssm managed instance", instance_id):
            found = self.ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])[
                "InstanceInformationList"
            ]
        return str(found[0].get("PingStatus", "unknown")) if found else "not registered"

    def _finished(self, command_id: str, instance_id: str) -> dict[str, Any] | None:
        """The invocation once it reached a terminal status; None meanwhile (and for the moment after
        SendCommand when it answers InvocationDoesNotExist)."""
        try:
            with aws_errors("ssm command", command_id):
                invocation: dict[str, Any] = self.ssm.get_command_invocation(
                    CommandId=command_id, InstanceId=instance_id
                )
        except InfrastructureError as error:
            if error.state != "InvocationDoesNotExist":
                raise
            return None
        return invocation if invocation["Status"] in _DONE else None
