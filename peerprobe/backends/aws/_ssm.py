"""SSM: the Amazon Linux AMI from its public parameter, and Run Command on the EC2 host (one command per
batch, polled to a terminal status within a bound)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import structlog

from peerprobe.backends.aws._base import AwsBase
from peerprobe.backends.aws._errors import aws_errors
from peerprobe.errors import InfrastructureError, WaitTimeoutError

log = structlog.get_logger()

# Public parameter of the latest Amazon Linux 2023 AMI; published in every commercial and China region.
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
_DONE = frozenset({"Success", "Failed", "Cancelled", "TimedOut", "Cancelling"})
POLL_SECONDS = 2.0


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
        characters of it); a failed or timed-out command raises, naming the instance and the command id."""
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
        invocation = self._finished(command_id, instance_id, deadline=time.monotonic() + timeout_seconds + 60)
        if invocation["Status"] != "Success":
            raise InfrastructureError(
                f"ssm command {command_id} on {instance_id}: {invocation['Status']}: "
                f"{str(invocation.get('StandardErrorContent', ''))[:200]}",
                resource="ssm command", resource_id=command_id, state=str(invocation["Status"]),
            )  # fmt: skip
        return str(invocation.get("StandardOutputContent", ""))

    def _finished(self, command_id: str, instance_id: str, *, deadline: float) -> dict[str, Any]:
        while True:
            try:
                with aws_errors("ssm command", command_id):
                    invocation: dict[str, Any] = self.ssm.get_command_invocation(
                        CommandId=command_id, InstanceId=instance_id
                    )
                if invocation["Status"] in _DONE:
                    return invocation
            except InfrastructureError as error:  # InvocationDoesNotExist for a moment after send_command
                if error.state != "InvocationDoesNotExist":
                    raise
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"ssm command {command_id} on {instance_id}: not finished in time",
                                       resource="ssm command", resource_id=command_id, state="InProgress")  # fmt: skip
            time.sleep(POLL_SECONDS if self.waits.delay else 0)
