"""What `peerprobe serve` lets the runs it executes do: the aws backend only with --allow-aws."""

from __future__ import annotations

import pytest

from peerprobe import params
from peerprobe.errors import ConfigError
from peerprobe.params import RunParameters


def test_a_served_run_on_aws_is_refused_without_allow_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(params.SERVED_BACKENDS_ENV, params.served_backends(allow_aws=False))
    params.check_served(RunParameters(backend="lab"))
    with pytest.raises(ConfigError, match=r"nothing was created.*peerprobe serve --allow-aws"):
        params.check_served(RunParameters(backend="aws"))


def test_a_served_run_on_aws_passes_with_allow_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(params.SERVED_BACKENDS_ENV, params.served_backends(allow_aws=True))
    params.check_served(RunParameters(backend="aws"))


def test_a_run_of_the_command_line_is_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(params.SERVED_BACKENDS_ENV, raising=False)
    params.check_served(RunParameters(backend="aws"))
