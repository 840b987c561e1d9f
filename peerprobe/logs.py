"""structlog, configured once per process: events with fields to stderr, at the level the user asked for.

Library code only calls ``structlog.get_logger()``; the CLI (and later the flows, which add Prefect's run
logger as a sink) call ``configure`` once. Secrets are never logged: events carry ids, not credentials.
"""

from __future__ import annotations

import logging
import sys

import structlog

_configured = False


def configure(verbosity: int = 0) -> None:
    """0: warnings and errors; 1 (-v): progress events; 2 (-vv): debug."""
    global _configured
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def is_configured() -> bool:
    return _configured
