"""The fleet's plain facts, no Prefect: each environment's deployment name, the schedule's cron checked before
anything starts, the worker command `fleet add` prints, and the work-pool types a fleet runs on."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from peerprobe.config import ExperimentConfig
from peerprobe.errors import ConfigError

FLOW_NAME = "drift-check"
ENTRYPOINT = "flows/drift.py:drift_check"
DEFAULT_INTERVAL_MINUTES = 30
# The pool types whose job templates peerprobe's deployments fit (docs/fleet.md); a process pool is created.
POOL_TYPES = ("process", "kubernetes", "ecs")
CREATED_POOL_TYPE = "process"
TAGS = ("peerprobe", "drift", "fleet")

# One cron field: `*`, a number or a name, a range, a step, or a comma list of them (crontab(5)).
_ATOM = r"(\*|[0-9a-z]+(-[0-9a-z]+)?)(/[0-9]+)?"
_FIELD = re.compile(rf"{_ATOM}(,{_ATOM})*", re.IGNORECASE)
_NICKNAMES = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


@dataclass(frozen=True)
class Member:
    """One environment of the fleet: its config and backend, and so its deployment's name."""

    backend: str
    config: ExperimentConfig

    @property
    def name(self) -> str:
        return deployment_name(self.backend, self.config)

    @property
    def env_key(self) -> str:
        return f"{self.backend}:{self.config.name}:{self.config.region}"


def deployment_name(backend: str, config: ExperimentConfig) -> str:
    """`<backend>-<name>-<region>`: the deployment of drift-check that checks this environment."""
    return f"{backend}-{config.name}-{config.region}"


def check_cron(expression: str) -> str:
    """A five-field cron expression (or a nickname such as @hourly), with numbers in each field's range; raises
    ConfigError naming the bad field. Prefect checks it again when the schedule is made."""
    text = " ".join(expression.split())
    if text.lower() in _NICKNAMES:
        return text
    fields = text.split(" ")
    if len(fields) != 5:
        raise ConfigError(f"--cron {expression!r}: a cron expression has 5 fields (minute hour day month weekday)")
    for field, (low, high), what in zip(fields, _RANGES, ("minute", "hour", "day", "month", "weekday"), strict=True):
        if not _FIELD.fullmatch(field) or any(
            not low <= int(number) <= high for number in re.findall(r"(?<![/0-9])[0-9]+", field)
        ):
            raise ConfigError(f"--cron {expression!r}: the {what} field {field!r} is not valid (range {low}-{high})")
    return text


def check_pool_type(pool: str, pool_type: str) -> None:
    if pool_type not in POOL_TYPES:
        raise ConfigError(
            f"--pool {pool}: a work pool of type {pool_type!r}; peerprobe's deployments run on "
            f"{', '.join(POOL_TYPES)} pools (docs/fleet.md)"
        )


def worker_command(pool: str, pool_type: str, env_prefix: str) -> str:
    """The command that starts a worker for the pool, with what it needs to reach the server."""
    command = f"prefect worker start --pool {shlex.quote(pool)}"
    if pool_type != CREATED_POOL_TYPE:
        command += f" --type {pool_type}"
    return f"{env_prefix} {command}".strip()
