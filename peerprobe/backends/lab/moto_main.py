"""`python -m peerprobe.backends.lab.moto_main`: moto's own server, one request at a time, with three of its costs
cut (moto_patches.py). Same arguments as `python -m moto.server`."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto import server

from peerprobe.backends.lab import moto_patches


class OneAtATime:
    """A WSGI app that serves one request at a time. moto's backends are plain dicts and lists, not safe for the
    threaded server's concurrent requests (getmoto/moto#372): two labs' steps at once (both VPCs' networks) once got
    an HTML 500 from DescribeSubnets, which botocore cannot parse and does not retry. Each answer is computed and
    read out under the lock; moto answers in milliseconds, and the GIL serialized its work anyway."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return list(body)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def _run_one_at_a_time(run_simple: Callable[..., None]) -> Callable[..., None]:
    def run(host: str, port: int, app: Callable[..., Iterable[bytes]], **kwargs: Any) -> None:
        run_simple(host, port, OneAtATime(app), **kwargs)

    return run


def main() -> None:
    moto_patches.install()
    server.run_simple = _run_one_at_a_time(server.run_simple)  # type: ignore[attr-defined]
    server.main(sys.argv[1:])


if __name__ == "__main__":
    main()
