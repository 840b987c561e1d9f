"""The lab's Vantage port: a vantage's batch runs in its namespace (the busybox pods, the EC2 host, the outside
client), through the agent, with that vantage's own DNS view."""

from __future__ import annotations

from collections.abc import Sequence

from peerprobe.backends.lab import environment
from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConflictError
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.vocabulary import Vantage


class LabVantage:
    def __init__(self, config: ExperimentConfig, vantage: Vantage) -> None:
        self.config = config
        self.vantage = vantage

    def probe(self, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        state = environment.require_state(self.config)
        results = environment.probe(state, specs, timeout_seconds=timeout_seconds)
        return [results[spec] for spec in specs]


class VisitingVantage:
    """A vantage of an experiment attached to the clusters of the lab environment `owner`: its own busybox pods
    there, and the owner's outside client (one internet)."""

    def __init__(self, config: ExperimentConfig, vantage: Vantage, *, owner: str) -> None:
        self.config = config
        self.vantage = vantage
        self.owner = owner

    def probe(self, specs: Sequence[ProbeSpec], *, timeout_seconds: float) -> list[ProbeResult]:
        state = environment.load_state(self.owner)
        placed = state.guests.get(self.config.name) if state is not None else None
        if state is None or placed is None:
            raise ConflictError(
                f"lab environment {self.owner}: no namespace peerprobe-{self.config.name} to probe from",
                resource="namespace",
                resource_id=f"peerprobe-{self.config.name}",
                state="absent",
            )
        results = environment.probe(state, specs, timeout_seconds=timeout_seconds, guest=placed.tag)
        return [results[spec] for spec in specs]
