"""The fake API server's pods/exec over a real websocket: the RFC 6455 upgrade, Kubernetes' v4.channel.k8s.io
framing (channel byte 1 stdout, 2 stderr, 3 the exit Status as JSON), the command run here with sh in a
scratch directory, and only when every address it names is a loopback one; or, with `ExecState.answer`, its
standard output given by a stand-in for the network (the harness's data plane), nothing run."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import parse_qs

# RFC 6455 section 1.3: the server proves it read the handshake by hashing the client's key with this GUID.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# The only subprotocol this fake speaks; the python client asks for it (kubernetes/stream/ws_client.py).
PROTOCOL = "v4.channel.k8s.io"
STDOUT, STDERR, ERROR = 1, 2, 3
OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x2, 0x8, 0x9, 0xA
CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR = 1000, 1002
CHUNK = 32 * 1024
_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_URL_HOST = re.compile(r"://([^/:'\"\s]+)")
_PROBE_HOST = re.compile(r"^p \d+ '([^']*)'", re.MULTILINE)  # the probe lines of peerprobe's busybox batch


@dataclass
class ExecRecord:
    """One exec the fake served, for the tests to inspect."""

    pod: str
    container: str
    command: list[str]
    protocols: list[str]
    authorization: str
    exit_code: int | None = None
    killed: bool = False  # ended by the client closing the stream, or by max_seconds


@dataclass
class ExecState:
    forbidden: bool = False  # answer the upgrade with 403, as RBAC without pods/exec does
    stall_upgrade: bool = False  # read the upgrade request and never answer it, as a wedged proxy would
    released: threading.Event = field(default_factory=threading.Event)  # set when the server closes
    max_seconds: float = 30.0  # no command outlives this, whatever the client does
    records: list[ExecRecord] = field(default_factory=list)
    answer: Callable[[ExecRecord], str] | None = None  # the command's stdout, instead of running it here
    processes: set[subprocess.Popen[bytes]] = field(default_factory=set)
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="fake-exec-"))

    def close(self) -> None:
        """Nothing outlives the server: its commands are killed, stalled upgrades let go, its scratch directory
        removed."""
        self.released.set()
        for process in list(self.processes):
            _kill(process)
        shutil.rmtree(self.workdir, ignore_errors=True)


class Refusal(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": str(self),
            "reason": self.reason,
            "code": self.code,
        }


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2, step 5.4)."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (a server never masks, RFC 6455 section 5.1), with the shortest length form."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, size])
    elif size < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
    return head + payload


def read_frame(stream: BinaryIO) -> tuple[int, bytes] | None:
    """The next client frame as (opcode, unmasked payload); None at end of stream or on an unmasked frame
    (RFC 6455 section 5.1: the server must close the connection on one)."""
    head = stream.read(2)
    if len(head) < 2 or not head[1] & 0x80:
        return None
    size = head[1] & 0x7F
    if size >= 126:
        size = int.from_bytes(stream.read(2 if size == 126 else 8), "big")
    mask, data = stream.read(4), stream.read(size)
    if len(mask) < 4 or len(data) < size:
        return None
    return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def check_upgrade(
    headers: Mapping[str, str], pod: Mapping[str, Any] | None, name: str, container: str, state: ExecState
) -> None:
    """What the API server checks before it upgrades; raises Refusal with its status code."""
    if pod is None:
        raise Refusal(404, "NotFound", f'pods "{name}" not found')
    if state.forbidden:
        raise Refusal(403, "Forbidden", f'pods "{name}" is forbidden: cannot create resource "pods/exec"')
    if container not in [c["name"] for c in pod["spec"]["containers"]]:
        raise Refusal(400, "BadRequest", f"container {container} is not valid for pod {name}")
    if headers.get("Upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("Connection", "").lower():
        raise Refusal(400, "BadRequest", "Upgrade request required")
    if headers.get("Sec-WebSocket-Version") != "13":
        raise Refusal(426, "BadRequest", "Sec-WebSocket-Version 13 required")
    if len(base64.b64decode(headers.get("Sec-WebSocket-Key", ""), validate=False)) != 16:
        raise Refusal(400, "BadRequest", "bad Sec-WebSocket-Key")
    if PROTOCOL not in protocols(headers):
        raise Refusal(400, "BadRequest", f"requested protocol(s) are not supported; supports [{PROTOCOL}]")


def protocols(headers: Mapping[str, str]) -> list[str]:
    return [p.strip() for p in headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


def switching_protocols(key: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
        f"Sec-WebSocket-Protocol: {PROTOCOL}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exec_request(query: str) -> tuple[list[str], str]:
    """The command (repeated `command` parameters, in order) and the container of an exec request."""
    values = parse_qs(query, keep_blank_values=True)
    return values.get("command", []), values.get("container", [""])[0]


def non_loopback(command: list[str]) -> list[str]:
    """Every address or host the command names that is not a loopback one ($variables are not hosts)."""
    text = "\n".join(command)
    hosts = {*_ADDRESS.findall(text), *_URL_HOST.findall(text), *_PROBE_HOST.findall(text)}
    return sorted(h for h in hosts if not h.startswith("$") and not _is_loopback(h))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Session:
    """One upgraded exec: the command's output as channel frames, then its Status, then a close; a close
    from the client ends the command."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO, record: ExecRecord, state: ExecState) -> None:
        self.rfile, self.wfile, self.record, self.state = rfile, wfile, record, state
        self.lock = threading.Lock()
        self.client_closed = threading.Event()
        self.sent_close = False
        self.process: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        threading.Thread(target=self._read_client, daemon=True).start()
        if self.state.answer is not None:
            self._answer(self.state.answer)
            return
        refused = non_loopback(self.record.command)
        if refused:
            self._finish(_internal_error(f"fake api: refusing a command that names {', '.join(refused)}"))
            return
        self.process = process = self._start()
        if self.client_closed.is_set():  # gone before the command started
            _kill(process)
        pumps = [self._pump(process.stdout, STDOUT), self._pump(process.stderr, STDERR)]
        code = self._wait(process)
        for pump in pumps:
            pump.join()
        self.state.processes.discard(process)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        self.record.exit_code = code
        if not self.client_closed.is_set():
            self._finish(_status(code, self.record.command))

    def _answer(self, answer: Callable[[ExecRecord], str]) -> None:
        try:
            output = answer(self.record)
        except Exception as error:  # the stand-in's own failure is the exec's, as a kubelet's would be
            self._finish(_internal_error(f"fake api: {type(error).__name__}: {error}"))
            return
        self._send(OP_BINARY, bytes([STDOUT]) + output.encode())
        self.record.exit_code = 0
        self._finish(_status(0, self.record.command))

    def _start(self) -> subprocess.Popen[bytes]:
        # No proxy from this environment (wget honours http_proxy), HOME and cwd in a scratch directory, and a
        # session of its own so that a kill reaches sh's children (wget, sleep) too.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "HOME": self.state.workdir,
            "no_proxy": "127.0.0.1,localhost",
        }
        process = subprocess.Popen(
            self.record.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.state.workdir,
            env=env,
            start_new_session=True,
        )
        self.state.processes.add(process)
        return process

    def _wait(self, process: subprocess.Popen[bytes]) -> int:
        try:
            return process.wait(timeout=self.state.max_seconds)
        except subprocess.TimeoutExpired:
            self.record.killed = True
            _kill(process)
            return process.wait()

    def _pump(self, pipe: Any, channel: int) -> threading.Thread:
        def copy() -> None:
            while chunk := os.read(pipe.fileno(), CHUNK):
                self._send(OP_BINARY, bytes([channel]) + chunk)

        thread = threading.Thread(target=copy, daemon=True)
        thread.start()
        return thread

    def _read_client(self) -> None:
        """Client frames until its close (or the end of the stream): stdin is off, so data is ignored."""
        while (found := _safe_read(self.rfile)) is not None:
            opcode, payload = found
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                break
        self.client_closed.set()
        if self.process is not None and self.process.poll() is None:
            self.record.killed = True
            _kill(self.process)
        self._close(CLOSE_NORMAL)

    def _finish(self, status: dict[str, Any]) -> None:
        self._send(OP_BINARY, bytes([ERROR]) + json.dumps(status).encode())
        self._close(CLOSE_NORMAL)
        self.client_closed.wait(timeout=2)  # the client's close in reply, before the socket goes

    def _close(self, code: int) -> None:
        with self.lock:
            if self.sent_close:
                return
            self.sent_close = True
        self._send(OP_CLOSE, code.to_bytes(2, "big"), after_close=True)

    def _send(self, opcode: int, payload: bytes, *, after_close: bool = False) -> None:
        with self.lock:
            if self.sent_close and not after_close:
                return
            try:
                self.wfile.write(frame(opcode, payload))
                self.wfile.flush()
            except OSError:
                self.client_closed.set()


def _safe_read(stream: BinaryIO) -> tuple[int, bytes] | None:
    try:
        return read_frame(stream)
    except (OSError, ValueError):
        return None


def _status(code: int, command: list[str]) -> dict[str, Any]:
    """What the kubelet writes on the error channel (kubelet/pkg/cri/streaming/remotecommand/exec.go):
    Success, NonZeroExitCode with an ExitCode cause, or an InternalError when no exit code exists."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    if code < 0:
        return _internal_error(f"error executing command in container: killed by signal {-code}")
    return {
        "metadata": {},
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "message": f"command terminated with non-zero exit code: error executing command {command}, exit code {code}",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _internal_error(message: str) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "reason": "InternalError",
        "code": 500,
        "message": message,
        "details": {"causes": [{"message": message}]},
    }


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
