"""The experiment flow's one parameter model: what the Prefect UI shows as a validated form, and what
`peerprobe run` fills from the command line. Importable without Prefect, so results and forms resolve."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from peerprobe.backends import support
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError


class RunParameters(BaseModel):
    """One run of the experiment: which environment, on which backend, and what to do at the end."""

    model_config = ConfigDict(extra="forbid")

    config: ExperimentConfig = Field(default_factory=ExperimentConfig, description="The experiment (design.md keys)")
    backend: Literal["lab", "aws"] = Field(default="lab", description="lab: the embedded lab; aws: a real account")
    keep: bool = Field(default=False, description="Keep the environment; restore the baseline SNAT settings")
    cleanup_on_failure: bool = Field(default=False, description="On failure, remove everything instead of keeping it")

    @model_validator(mode="after")
    def _supported(self) -> RunParameters:
        # A run started from the UI or a deployment is refused here, before its first task creates anything.
        error = support.refusal(self.config, self.backend)
        if error is not None:
            raise ValueError(str(error))
        return self


# --- what `peerprobe serve` lets a run started from the UI do ---------------------------------------------------

# Set by `peerprobe serve` in its own environment, so the runs it executes inherit it: the backends they may use.
SERVED_BACKENDS_ENV = "PEERPROBE_SERVED_BACKENDS"
ALLOW_AWS_OPTION = "--allow-aws"


def served_backends(*, allow_aws: bool) -> str:
    return "lab,aws" if allow_aws else "lab"


def check_served(parameters: RunParameters) -> None:
    """A run that `peerprobe serve` executes (started from the UI or on a schedule) uses the aws backend, with
    this machine's AWS credentials, only when serve was started with --allow-aws; otherwise it fails here,
    before anything is read or created. Runs of the command line are not served: they pass."""
    allowed = os.environ.get(SERVED_BACKENDS_ENV)
    if allowed is None or parameters.backend in allowed.split(","):
        return
    raise ConfigError(
        f"backend {parameters.backend}: this `peerprobe serve` was started without {ALLOW_AWS_OPTION}, so the runs "
        f"it executes may not use your AWS credentials; nothing was created. Restart it with "
        f"`peerprobe serve {ALLOW_AWS_OPTION}` to allow them, or run `peerprobe run --backend aws` yourself"
    )
