"""What k8s.gcr.io/echoserver:1.4 answers (kubernetes-retired/contrib ingress/echoheaders), and its parser.

The lab's agent renders it; both backends parse it, so a lab run and an AWS run read the same fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# echoheaders' lua prints `nginx: $nginx_version - lua: ngx_lua_version`; 1.4 was built on these.
SERVER_VERSION = "nginx: 1.10.0 - lua: 10001"
NO_BODY = "-no body in request-"

_KEY_VALUE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_ -]*)=(.*)$")
# Section titles of 1.4 and of the later echoserver images (1.10: "Request Headers:"), so either parses.
_HEADER_SECTIONS = frozenset({"HEADERS RECEIVED:", "Request Headers:"})
_BODY_SECTIONS = frozenset({"BODY:", "Request Body:"})
_CLIENT_SECTIONS = frozenset({"CLIENT VALUES:", "Request Information:"})


@dataclass(frozen=True)
class EchoFields:
    """The three values the report compares; None where the text did not carry them."""

    client_address: str | None = None
    request_uri: str | None = None
    host: str | None = None

    @property
    def is_echo(self) -> bool:
        return self.client_address is not None or self.request_uri is not None


def host_without_port(host_header: str) -> str:
    """nginx's `$host`: the Host header's name without its port, lower-cased (IPv6 literals keep brackets)."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def render(
    client_address: str,
    host_header: str | None,
    server_port: int,
    path: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    *,
    request_version: str = "1.1",
    body: str | None = None,
) -> str:
    """The body echoserver 1.4 sends for one request.

    `client_address` is the TCP peer after all NAT, `server_port` the port the server listens on (8080 in a
    pod, whatever the client dialled), `path` the request target as sent, `headers` every header but Host.
    """
    hostname = host_without_port(host_header) if host_header is not None else ""
    query = path.split("?", 1)[1] if "?" in path else "nil"  # lua prints a nil $query_string as "nil"
    lines = [
        "CLIENT VALUES:",
        f"client_address={client_address}",
        f"command={method}",
        f"real path={path}",
        f"query={query}",
        f"request_version={request_version}",
        f"request_uri=http://{hostname}:{server_port}{path}",
        "",
        "SERVER VALUES:",
        f"server_version={SERVER_VERSION}",
        "",
        "HEADERS RECEIVED:",
        *_header_lines(host_header, headers),
        "BODY:",
    ]
    return "\n".join(lines) + "\n" + (body or NO_BODY)


def _header_lines(host_header: str | None, headers: Iterable[tuple[str, str]]) -> list[str]:
    # ngx.req.get_headers() lower-cases names and gathers repeats into a table, which ngx.say concatenates;
    # echoheaders then prints them sorted by name.
    merged: dict[str, str] = {}
    if host_header is not None:
        merged["host"] = host_header
    for name, value in headers:
        key = name.lower()
        if key != "host":
            merged[key] = merged.get(key, "") + value
    return [f"{key}={merged[key]}" for key in sorted(merged)]


def parse(text: str) -> EchoFields:
    """Read client_address, request_uri and the Host header out of an echo body; missing lines stay None.

    Text that is not echo output (an nginx welcome page, an error page) gives all three None.
    """
    values: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        title = line.strip()
        if title in _BODY_SECTIONS:
            break  # the request body is the client's text, not the server's
        if title in _HEADER_SECTIONS or title in _CLIENT_SECTIONS or title == "SERVER VALUES:":
            section = title
            continue
        match = _KEY_VALUE.match(line)
        if match is not None and section:
            values.setdefault(f"{section}{match.group(1).strip()}", match.group(2).strip())
    return _fields(values)


def _fields(values: dict[str, str]) -> EchoFields:
    def first(keys: frozenset[str], name: str) -> str | None:
        return next((values[f"{key}{name}"] for key in sorted(keys) if f"{key}{name}" in values), None)

    return EchoFields(
        client_address=first(_CLIENT_SECTIONS, "client_address"),
        request_uri=first(_CLIENT_SECTIONS, "request_uri"),
        host=first(_HEADER_SECTIONS, "host"),
    )
