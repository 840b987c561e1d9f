"""The steps' progress in this process, for the terminal's progress bar (the UI has its own artifact)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

StepListener = Callable[[str, str], None]  # (task run name, state name)
_listeners: list[StepListener] = []


def listen(listener: StepListener) -> Callable[[], None]:
    """Call `listener` whenever a step finishes in this process (the terminal's progress bar); returns an
    unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener)


def finished(task: Any, task_run: Any, state: Any) -> None:
    for listener in list(_listeners):
        listener(str(task_run.name), str(state.name))
