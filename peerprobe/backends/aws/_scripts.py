"""The scripts the aws backend runs elsewhere: one probe batch per vantage (busybox sh + wget in a pod,
python3 on the EC2 host and on this machine), their output read back into ProbeResults, and the EC2 host's
user data that serves echoserver 1.4's response on :80 (rendered by peerprobe/probes/echo.py itself).

Both batch scripts print the same framed sections per probe, so one parser reads either.
"""

from __future__ import annotations

import inspect
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from peerprobe.errors import ConfigError, InfrastructureError
from peerprobe.probes import echo
from peerprobe.probes.batch import ProbeResult, short
from peerprobe.probes.plan import ProbeSpec
from peerprobe.vocabulary import Outcome

BODY_LIMIT = 4096
_SAFE_HOST = re.compile(r"^[A-Za-z0-9.:\-]+$")
_STATUS = re.compile(r"HTTP/1\.\d (\d{3})")


def new_nonce() -> str:
    return secrets.token_hex(6)


def _checked(specs: Sequence[ProbeSpec]) -> None:
    for spec in specs:
        if not _SAFE_HOST.match(spec.host):
            raise ConfigError(f"probe {spec.key}: host {spec.host!r} is not a plain name or address")


def _is_name(host: str) -> bool:
    return any(c.isalpha() for c in host.replace(":", ""))


def busybox_script(specs: Sequence[ProbeSpec], *, timeout_seconds: float, nonce: str) -> str:
    """sh for the busybox pod: for every probe a new wget (a new TCP connection), names looked up with
    nslookup first; bounded by `timeout` so a stuck connect cannot hold the exec."""
    _checked(specs)
    seconds = max(1, round(timeout_seconds))
    lines = [
        f"T={seconds}; N={nonce}",
        "p() {",
        '  echo "==$N begin $1"',
        '  if [ "$4" = 1 ]; then nslookup "$2" 2>/dev/null | sed -n \'/^Name:/,$p\' '
        "| sed -n 's/^Address[^:]*: *\\([0-9.]*\\).*/resolved \\1/p'; fi",
        "  s=$(date +%s)",
        '  timeout $((T + 2)) wget -q -T "$T" -O /tmp/pp.body "http://$2:$3/" 2>/tmp/pp.err; rc=$?',
        '  echo "rc $rc"; echo "elapsed $(( $(date +%s) - s ))"',
        '  echo "==$N err $1"; cat /tmp/pp.err 2>/dev/null',
        f'  echo "==$N body $1"; head -c {BODY_LIMIT} /tmp/pp.body 2>/dev/null; echo',
        '  echo "==$N end $1"; rm -f /tmp/pp.body /tmp/pp.err',
        "}",
    ]
    lines += [f"p {i} '{s.host}' {s.port} {int(_is_name(s.host))}" for i, s in enumerate(specs)]
    return "\n".join(lines) + "\n"


_PYTHON_PROBER = r"""
import json, socket, sys, time, urllib.error, urllib.request
N, T, P, LIMIT = __ARGS__
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def why(reason):
    if isinstance(reason, socket.gaierror): return "bad address"
    if isinstance(reason, ConnectionRefusedError): return "Connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)): return "download timed out"
    return str(reason)
for i, (host, port, is_name) in enumerate(P):
    print("==%s begin %d" % (N, i))
    if is_name:
        try:
            for address in sorted({a[4][0] for a in socket.getaddrinfo(host, port, socket.AF_INET)}):
                print("resolved " + address)
        except OSError:
            pass
    start, rc, err, body = time.monotonic(), 0, "", b""
    try:
        with opener.open("http://%s:%d/" % (host, port), timeout=T) as response:
            body = response.read(LIMIT)
    except urllib.error.HTTPError as error:
        rc, err = 8, "server returned error: HTTP/1.1 %d" % error.code
    except urllib.error.URLError as error:
        rc, err = 1, why(error.reason)
    except (socket.timeout, TimeoutError):
        rc, err = 1, "download timed out"
    except OSError as error:
        rc, err = 1, why(error)
    print("rc %d" % rc)
    print("elapsed %.3f" % (time.monotonic() - start))
    print("==%s err %d" % (N, i))
    print(err)
    print("==%s body %d" % (N, i))
    print(body.decode("utf-8", "replace"))
    print("==%s end %d" % (N, i))
    sys.stdout.flush()
"""


def python_script(specs: Sequence[ProbeSpec], *, timeout_seconds: float, nonce: str) -> str:
    """python3 (stdlib only; Amazon Linux has it) for the EC2 host and for `outside` on this machine."""
    _checked(specs)
    probes = [[s.host, s.port, _is_name(s.host)] for s in specs]
    args = json.dumps([nonce, timeout_seconds, probes, BODY_LIMIT])
    return _PYTHON_PROBER.replace("__ARGS__", f"json.loads({args!r})", 1)


@dataclass
class _Section:
    rc: int = -1
    elapsed: float = 0.0
    resolved: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    complete: bool = False


def parse_output(text: str, specs: Sequence[ProbeSpec], *, nonce: str) -> list[ProbeResult]:
    """The framed output back into one ProbeResult per spec, in order; a probe with no complete section
    (the script was cut short) raises, naming it, rather than inventing an outcome."""
    sections = _sections(text, nonce)
    results = []
    for index, spec in enumerate(specs):
        section = sections.get(index)
        if section is None or not section.complete:
            raise InfrastructureError(
                f"probe batch: no result for {spec.key} (output cut short?)", resource="probe", resource_id=spec.key
            )
        results.append(_result(spec, section))
    return results


def _sections(text: str, nonce: str) -> dict[int, _Section]:
    marker = re.compile(rf"^=={re.escape(nonce)} (begin|err|body|end) (\d+)$")
    sections: dict[int, _Section] = {}
    current: _Section | None = None
    part = "head"
    for line in text.splitlines():
        found = marker.match(line.strip())
        if found is not None:
            kind, index = found.group(1), int(found.group(2))
            if kind == "begin":
                current, part = sections.setdefault(index, _Section()), "head"
            elif current is not None and kind == "end":
                current.complete, current = True, None
            else:
                part = kind
            continue
        if current is None:
            continue
        _add(current, part, line)
    return sections


def _add(section: _Section, part: str, line: str) -> None:
    if part == "err":
        section.err.append(line)
    elif part == "body":
        section.body.append(line)
    elif line.startswith("resolved "):
        section.resolved.append(line.split(" ", 1)[1].strip())
    elif line.startswith("rc "):
        section.rc = int(line.split()[1])
    elif line.startswith("elapsed "):
        section.elapsed = float(line.split()[1])


def classify(rc: int, err: str) -> Outcome:
    """wget's (and the python prober's) words for what happened, as the report's outcome."""
    lowered = err.lower()
    if rc == 0:
        return "ok"
    if "bad address" in lowered or "name or service not known" in lowered or "resolve" in lowered:
        return "dns-error"
    if "refused" in lowered:
        return "refused"
    if "server returned error" in lowered:
        return "http-error"
    return "timeout"  # "download timed out", a connect that never finished, or killed by `timeout`


def _result(spec: ProbeSpec, section: _Section) -> ProbeResult:
    err = "\n".join(section.err).strip()
    outcome = classify(section.rc, err)
    resolved = tuple(section.resolved) if _is_name(spec.host) else None
    status_match = _STATUS.search(err)
    if outcome != "ok":
        status = int(status_match.group(1)) if status_match else None
        detail = short(err or f"exit status {section.rc}")
        return ProbeResult(
            spec=spec,
            outcome=outcome,
            resolved=resolved,
            http_status=status,
            detail=detail,
            elapsed_seconds=section.elapsed,
        )
    fields = echo.parse("\n".join(section.body))
    return ProbeResult(
        spec=spec,
        outcome="ok",
        client_address=fields.client_address,
        host=fields.host,
        request_uri=fields.request_uri,
        resolved=resolved,
        http_status=200,
        elapsed_seconds=section.elapsed,
    )


# --- the EC2 web host --------------------------------------------------------------------------------------

_ECHO_SERVER = r"""
import http.server, os, socketserver, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 80
HOST = sys.argv[2] if len(sys.argv) > 2 else ""
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx/1.10.0"
    sys_version = ""
    def do_GET(self):
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "host"]
        version = self.request_version.split("/")[-1]
        body = echo.render(self.client_address[0], self.headers.get("Host"), PORT, self.path, self.command,
                           headers, request_version=version).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
Server((HOST, PORT), Handler).serve_forever()
"""

_UNIT = """[Unit]
Description=peerprobe echo server (echoserver 1.4's response) on :80
After=network-online.target
[Service]
ExecStart=/usr/bin/python3 /opt/peerprobe/server.py 80
Restart=always
[Install]
WantedBy=multi-user.target
"""


def echo_server_source() -> str:
    """The python3 http.server script the EC2 host runs (it imports echo.py from its own directory)."""
    return _ECHO_SERVER


def echo_module_source() -> str:
    """peerprobe/probes/echo.py itself, so the host renders exactly the format the parser reads."""
    return inspect.getsource(echo)


def peer_host_user_data() -> str:
    """cloud-init user data (bash) for the Amazon Linux web host: echo.py, the server, a systemd unit."""
    parts = [
        "#!/bin/bash",
        "set -eu",
        "mkdir -p /opt/peerprobe",
        "cat > /opt/peerprobe/echo.py <<'PEERPROBE_ECHO'",
        echo_module_source().rstrip("\n"),
        "PEERPROBE_ECHO",
        "cat > /opt/peerprobe/server.py <<'PEERPROBE_SERVER'",
        echo_server_source().strip("\n"),
        "PEERPROBE_SERVER",
        "cat > /etc/systemd/system/peerprobe-echo.service <<'PEERPROBE_UNIT'",
        _UNIT.rstrip("\n"),
        "PEERPROBE_UNIT",
        "systemctl daemon-reload",
        "systemctl enable --now peerprobe-echo.service",
    ]
    return "\n".join(parts) + "\n"
