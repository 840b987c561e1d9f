"""Opening an environment's backend from plain data inside a task, its step's context bound to every event."""

from __future__ import annotations

from peerprobe import logs
from peerprobe.backends.steps import EnvironmentRef, Experiment
from peerprobe.errors import ConfigError


def open_experiment(ref: EnvironmentRef, *, step: str = "", phase: str = "") -> Experiment:
    """The backend for this environment, with the step's context bound to every event it logs."""
    logs.bind(experiment=ref.config.name, backend=ref.backend, step=step or None, phase=phase or None)
    if ref.backend == "lab":
        from peerprobe.backends.lab.backend import LabExperiment

        return LabExperiment(ref)
    if ref.backend == "aws":
        from peerprobe.backends.aws.experiment import AwsExperiment, preflight

        checked = (ref.config.region, ref.config.aws.profile, ref.fingerprint())
        if checked not in _AWS_CHECKED:  # once per process: credentials, region, adopted networks
            preflight(ref.config)
            _AWS_CHECKED.add(checked)
        return AwsExperiment(ref)
    raise ConfigError(f"backend: {ref.backend!r} is not one of lab or aws")


_AWS_CHECKED: set[tuple[str, str | None, str]] = set()
