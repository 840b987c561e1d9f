"""SSM Run Command on the EC2 host waits until the host's agent has registered and is Online: a new instance
registers a minute or two after boot, and SendCommand to one that has not is refused (InvalidInstanceId).
moto serves no DescribeInstanceInformation; these tests answer it as SSM does."""

from __future__ import annotations

from typing import Any

import pytest

from peerprobe.backends.aws import AwsCloud
from peerprobe.errors import WaitTimeoutError
from tests.backends.aws._fakes import AwsBehaviour

INSTANCE = "i-0123456789abcdef0"


def _registers_after(answers: int, *, status: str = "Online") -> Any:
    """DescribeInstanceInformation: nothing for the first `answers` calls, then the instance at `status`."""
    calls: list[int] = []

    def make(params: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        found = [{"InstanceId": INSTANCE, "PingStatus": status}] if len(calls) > answers else []
        return {"InstanceInformationList": found}

    return make


def test_the_command_is_sent_once_the_agent_is_online(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    behaviour.answer("ssm:DescribeInstanceInformation", _registers_after(2))
    cloud.run_shell(INSTANCE, ["true"], timeout_seconds=5)
    asked = [i for i, op in enumerate(behaviour.seen) if op == "ssm:DescribeInstanceInformation"]
    assert len(asked) == 3
    assert behaviour.seen.index("ssm:SendCommand") > asked[-1]


def test_an_agent_that_never_registers_is_a_bounded_wait_and_nothing_is_sent(
    cloud: AwsCloud, behaviour: AwsBehaviour
) -> None:
    behaviour.answer("ssm:DescribeInstanceInformation", _registers_after(10**6))
    with pytest.raises(WaitTimeoutError, match=rf"ssm managed instance {INSTANCE}: ping status not registered after"):
        cloud.run_shell(INSTANCE, ["true"], timeout_seconds=5)
    assert behaviour.calls("ssm:SendCommand") == 0


def test_an_agent_that_lost_its_connection_is_waited_for(cloud: AwsCloud, behaviour: AwsBehaviour) -> None:
    behaviour.answer("ssm:DescribeInstanceInformation", _registers_after(0, status="ConnectionLost"))
    with pytest.raises(WaitTimeoutError, match="ping status ConnectionLost"):
        cloud.run_shell(INSTANCE, ["true"], timeout_seconds=5)
    assert behaviour.calls("ssm:SendCommand") == 0
