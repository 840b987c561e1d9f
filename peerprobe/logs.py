"""structlog, configured once per process: events with fields, at the level the user asked for.

Library code only calls ``structlog.get_logger()`` and binds context with ``bind``. Commands configure it
once: to stderr for the lab commands, or through the standard ``peerprobe`` logger for flow runs, which
Prefect then ships to the run's logs in the UI (PREFECT_LOGGING_EXTRA_LOGGERS). Events carry ids, never
credentials.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

LOGGER = "peerprobe"
_configured = False


def configure(verbosity: int = 0, *, through_stdlib: bool = False) -> None:
    """verbosity 0: warnings and errors; 1 (-v): progress events; 2 (-vv): debug."""
    global _configured
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if through_stdlib:
        _through_stdlib(level)
    else:
        _to_stderr(level)
    _configured = True


def _to_stderr(level: int) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def _through_stdlib(level: int) -> None:
    """Events become records of the `peerprobe.*` loggers: Prefect's handlers put them in the run's logs."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    logging.getLogger(LOGGER).setLevel(level)
    extra = {name for name in os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS", "").split(",") if name}
    os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = ",".join(sorted(extra | {LOGGER}))


def bind(**fields: Any) -> None:
    """Context every later event of this unit of work carries (experiment, phase, step, backend)."""
    structlog.contextvars.bind_contextvars(**fields)


def is_configured() -> bool:
    return _configured
