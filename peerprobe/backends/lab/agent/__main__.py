"""`python -m peerprobe.backends.lab.agent serve|probe`: the agent daemon and the batched probe client."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import structlog

from peerprobe.backends.lab.agent import server, spec
from peerprobe.errors import PeerprobeError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(verbose=args.verbose)
    try:
        return int(args.run(args))
    except PeerprobeError as error:
        structlog.get_logger().error("agent.failed", command=args.command, error=str(error))
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code


def _serve(args: argparse.Namespace) -> int:
    if args.pid_file is not None:
        server.write_pid(args.pid_file)
    try:
        agent_spec = spec.load(args.spec)
    except PeerprobeError as error:
        server.notify(args.ready_fd, f"error: {error}")
        raise
    asyncio.run(server.serve(agent_spec, ready_fd=args.ready_fd, spec_path=args.spec))
    return 0


def _probe(args: argparse.Namespace) -> int:
    # Imported here: the daemon (serve) starts on every lab build, and the client's imports (the probe plan,
    # topology and config models) would add about a quarter of a second to each start.
    from peerprobe.backends.lab.agent import client
    from peerprobe.probes import batch

    text = sys.stdin.read() if args.batch == "-" else Path(args.batch).read_text(encoding="utf-8")
    loaded = batch.load_batch(text)
    results = client.run_batch(args.netns, loaded.probes, timeout_seconds=loaded.timeout_seconds, resolver=loaded.hosts)
    print(batch.dump_results(results))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m peerprobe.backends.lab.agent", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (debug events)")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve every listener of a spec file until SIGTERM; SIGHUP re-reads it")
    serve.add_argument("--spec", type=Path, required=True, help="JSON spec of the listeners (schema agent/v1)")
    serve.add_argument("--ready-fd", type=int, help="inherited pipe fd: gets 'ready' or 'error: ...'")
    serve.add_argument("--pid-file", type=Path, help="write the daemon's pid here")
    serve.set_defaults(run=_serve)
    probe = commands.add_parser("probe", help="run one batch of probes from a namespace; JSON results out")
    probe.add_argument("--netns", required=True, help="the vantage's network namespace")
    probe.add_argument("--batch", default="-", help="batch file (schema batch/v1), '-' for stdin")
    probe.set_defaults(run=_probe)
    return parser


def _configure_logging(*, verbose: bool) -> None:
    # JSON lines on stderr: the daemon's stderr is its log file; the probe command keeps stdout for results.
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG if verbose else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )


if __name__ == "__main__":
    sys.exit(main())
