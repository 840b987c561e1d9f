"""The Experiment port: the steps the flow chains, each idempotent, and the small results they persist.

The flow never sees a client, a credential or a token: tasks pass an `EnvironmentRef` (plain data) and the
backend (lab or aws) is opened from it inside the task.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from peerprobe.config import ExperimentConfig, Snat
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.snapshot import ConfigSnapshot
from peerprobe.topology import Topology
from peerprobe.vocabulary import VPC_KEYS as VPC_KEYS  # re-exported: the steps are per VPC
from peerprobe.vocabulary import Vantage
from peerprobe.vocabulary import VpcKey as VpcKey

Backend = Literal["lab", "aws"]


class EnvironmentRef(BaseModel):
    """Which environment a task works on: the validated config, the backend, and the generation that
    cleanup advances (part of every cache key, so a retry after a cleanup re-creates, never reuses)."""

    model_config = ConfigDict(frozen=True)

    backend: Backend
    config: ExperimentConfig
    generation: str = "0"
    run_id: str

    @property
    def key(self) -> str:
        return f"{self.backend}:{self.config.name}:{self.config.region}"

    def fingerprint(self) -> str:
        """Changes when the config does: cached steps of another config are never reused."""
        return hashlib.sha256(self.config.model_dump_json().encode()).hexdigest()[:12]


class StepResult(BaseModel):
    """What a step made or found, for the run's record and the report (ids, never secrets)."""

    step: str
    resources: dict[str, Any] = Field(default_factory=dict)
    note: str = ""


class Experiment(Protocol):
    """One environment's steps. Every method is idempotent: look up before creating, absent is success."""

    def create_network(self, vpc: VpcKey) -> StepResult: ...
    def create_cluster(self, vpc: VpcKey) -> StepResult: ...
    def create_peer_host(self) -> StepResult: ...
    def peer_vpcs(self) -> StepResult: ...
    def deploy_apps(self) -> StepResult: ...
    def expose_services(self) -> StepResult: ...
    def exists(self) -> bool:
        """Whether the environment's recorded resources are still there (a run may reuse cached steps)."""
        ...

    def lost(self) -> bool:
        """Whether the environment is recorded but AWS no longer has its networks (its record is stale)."""
        ...

    def remove_lost(self) -> StepResult:
        """Remove what is left of a lost environment (its record, its data plane, what still carries its tag)."""
        ...

    def topology(self) -> Topology: ...
    def model_config(self, config: ExperimentConfig | None = None) -> ExperimentConfig:
        """The config the model predicts from: `config` (default the experiment's), or when attaching, with what
        was read of the attached clusters in its place (attach.as_read)."""
        ...

    def config_diff(self) -> list[dict[str, Any]] | None:
        """Attach mode: where the config file disagrees with the clusters as read; None otherwise."""
        ...

    def set_snat(self, vpc: VpcKey, snat: Snat | None) -> Snat: ...
    def read_snat(self, vpc: VpcKey) -> Snat: ...
    def restore_aws_node(self) -> dict[str, list[str]]:
        """Attach mode: each attached cluster's aws-node back to what was found (nothing saved: nothing done)."""
        ...

    def wait_snat(self, vpc: VpcKey, snat: Snat | None, *, timeout_seconds: float) -> Snat: ...
    def probe(self, vantage: Vantage, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]: ...
    def snapshot(self) -> ConfigSnapshot:
        """The live configuration, read back (aws-node env and CNI version, Services, security-group rules,
        peering and routes): what a drift check predicts from and diffs against the baseline. Reads only."""
        ...

    def cleanup(self) -> StepResult: ...
