"""Just enough HTTP/1.1 for the lab: read a request, write a response, read a response (length or chunked)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEAD = 16 * 1024
MAX_BODY = 1024 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Not Allowed", 503: "Service Unavailable"}


class HttpError(Exception):
    """The peer did not speak HTTP/1.x the way we can read."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    version: str  # "1.1", as lua's ngx.req.http_version() prints it
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


async def read_request(reader: asyncio.StreamReader) -> Request:
    start, headers = await _read_head(reader)
    parts = start.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(f"bad request line {start[:80]!r}")
    request = Request(parts[0], parts[1], parts[2].removeprefix("HTTP/"), headers)
    length = _content_length(request.header("content-length"))
    if length:
        body = await reader.readexactly(length)
        return Request(request.method, request.target, request.version, headers, body)
    return request


def format_response(status: int, body: bytes, *, content_type: str, server: str, head_only: bool = False) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        f"Server: {server}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",  # one request per connection: every probe is a new TCP connection anyway
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


async def read_response(reader: asyncio.StreamReader) -> Response:
    start, headers = await _read_head(reader)
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"bad status line {start[:80]!r}")
    response = Response(int(parts[1]), headers, b"")
    return Response(response.status, headers, await _read_body(reader, response))


async def _read_body(reader: asyncio.StreamReader, response: Response) -> bytes:
    if "chunked" in (response.header("transfer-encoding") or "").lower():
        return await _read_chunked(reader)
    length = _content_length(response.header("content-length"))
    if length is not None:
        return await reader.readexactly(length)
    return await reader.read(MAX_BODY)  # no framing: the body runs to the end of the connection


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as error:
            raise HttpError(f"bad chunk size {size_line[:20]!r}") from error
        if size == 0 or len(body) + size > MAX_BODY:
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the CRLF after each chunk


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, tuple[tuple[str, str], ...]]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as error:
        raise HttpError("header section too long") from error
    if len(raw) > MAX_HEAD:
        raise HttpError("header section too long")
    start, *lines = raw.decode("latin-1").split("\r\n")
    return start, tuple(_header(line) for line in lines if line)


def _header(line: str) -> tuple[str, str]:
    name, sep, value = line.partition(":")
    if not sep or not name or name != name.strip():
        raise HttpError(f"bad header line {line[:80]!r}")
    return name, value.strip()


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) > MAX_BODY:
        raise HttpError(f"bad Content-Length {value[:20]!r}")
    return int(value)
