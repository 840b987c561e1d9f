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
_asked = 0  # the verbosity the user asked for (-v, -vv), whatever a flow run configures for its own logs


def configure(verbosity: int = 0, *, through_stdlib: bool = False) -> None:
    """verbosity 0: warnings and errors; 1 (-v): progress events; 2 (-vv): debug."""
    global _configured, _asked
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    if through_stdlib:
        _through_stdlib(level)
    else:
        _to_stderr(level)
        _asked = verbosity
    _configured = True


def asked_verbosity() -> int:
    """What the command line asked for: 0 by default, 1 with -v, 2 with -vv."""
    return _asked


def hide_console_tracebacks(logger_names: tuple[str, ...] = ("", "prefect")) -> None:
    """The terminal shows one line per error record, without its traceback; every other handler (the run's
    logs in the Prefect API) still gets the whole record. Applied to the stream handlers of those loggers."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler.formatter, _WithoutTraceback):
                handler.setFormatter(_WithoutTraceback(handler.formatter or logging.Formatter()))


class _WithoutTraceback(logging.Formatter):
    """Formats a record as ``inner`` would, but without exc_info, exc_text or stack_info, restored afterwards
    so the handlers after this one still see them."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


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
