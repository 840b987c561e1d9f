"""The experiment flow's one parameter model: what the Prefect UI shows as a validated form, and what
`peerprobe run` fills from the command line. Importable without Prefect, so results and forms resolve."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from peerprobe.backends import support
from peerprobe.config import ExperimentConfig


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
