"""The lab's moto server: one request at a time, each answer read out before the next request starts."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from peerprobe.backends.lab.moto_main import OneAtATime


class Overlap:
    """A WSGI app that counts how many requests it serves at once, and whose body is produced lazily."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.count = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self._body()

    def _body(self) -> Iterator[bytes]:
        with self.count:
            self.now += 1
            self.most = max(self.most, self.now)
        threading.Event().wait(0.05)  # a request in the middle of its work while the others arrive
        yield b"ok"
        with self.count:
            self.now -= 1


def _serve_at_once(app: Callable[..., Any], requests: int = 4) -> list[list[bytes]]:
    answers: list[list[bytes]] = []

    def one() -> None:
        answers.append(list(app({}, lambda status, headers: None)))

    threads = [threading.Thread(target=one) for _ in range(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return answers


def test_requests_arriving_together_are_served_one_at_a_time() -> None:
    app = Overlap()
    answers = _serve_at_once(OneAtATime(app))
    assert answers == [[b"ok"]] * 4 and app.most == 1


def test_without_it_they_overlap() -> None:
    """The check above can fail: the same requests overlap in the bare app."""
    app = Overlap()
    _serve_at_once(app)
    assert app.most > 1
