"""How the probe client turns a name into addresses; each vantage may have its own view.

A resolver is an async callable `name -> addresses` that raises NameNotResolved; a plain mapping is the
static kind. A DNS resolver can make its UDP socket with `_netns.new_socket` to ask a server in the vantage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

Resolver = Callable[[str], Awaitable[Sequence[str]]]
ResolverSource = Resolver | Mapping[str, Sequence[str]]


class NameNotResolved(Exception):  # it is an outcome (dns-error), not a fault of ours
    """The name has no address in this vantage's view."""

    def __init__(self, name: str, reason: str = "no such name in this vantage's DNS view") -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class StaticResolver:
    """Names from a fixed mapping; a missing name, or one with no addresses, does not resolve."""

    def __init__(self, hosts: Mapping[str, Sequence[str]]) -> None:
        self._hosts = {name.lower().rstrip("."): tuple(addresses) for name, addresses in hosts.items()}

    async def __call__(self, name: str) -> Sequence[str]:
        addresses = self._hosts.get(name.lower().rstrip("."))
        if not addresses:
            raise NameNotResolved(name)
        return addresses


def as_resolver(source: ResolverSource) -> Resolver:
    return StaticResolver(source) if isinstance(source, Mapping) else source
