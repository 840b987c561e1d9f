"""A state on its way, as the harness keeps time: the next `left` looks at it see it unfinished."""

from __future__ import annotations

import threading


class Countdown:
    """Thread-safe: concurrent steps (and the data plane) look at the same resources."""

    def __init__(self, left: int) -> None:
        self.left = left
        self._lock = threading.Lock()

    def look(self) -> bool:
        """One look, counted: True once the state has arrived."""
        with self._lock:
            if self.left <= 0:
                return True
            self.left -= 1
            return False

    def arrived(self) -> bool:
        """Whether it has arrived, without counting as a look (what the network sees, not an API call)."""
        with self._lock:
            return self.left <= 0
