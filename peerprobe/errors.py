"""peerprobe's own small error tree; adapters translate SDK errors into it with ``raise ... from``.

Exit codes (design.md): ConfigError and CredentialsError -> 2, InfrastructureError -> 3.
"""

from __future__ import annotations


class PeerprobeError(Exception):
    """Base of every error peerprobe raises on purpose."""

    exit_code = 3


class ConfigError(PeerprobeError):
    """Bad input: a config file or command line that cannot be used; nothing was created."""

    exit_code = 2


class CredentialsError(PeerprobeError):
    """No usable credentials or region for the aws backend; nothing was created."""

    exit_code = 2


class InfrastructureError(PeerprobeError):
    """A cloud or lab operation failed; the message names the resource, its id and its state."""

    exit_code = 3

    def __init__(self, message: str, *, resource: str = "", resource_id: str = "", state: str = "") -> None:
        super().__init__(message)
        self.resource = resource
        self.resource_id = resource_id
        self.state = state


class TransientError(InfrastructureError):
    """Worth retrying with backoff: throttling, a resource still converging, a timeout on the wire."""


class NotFoundError(InfrastructureError):
    """The named resource does not exist (cleanup treats this as success)."""


class ConflictError(InfrastructureError):
    """The resource exists in a state that blocks the operation (e.g. DependencyViolation)."""


class WaitTimeoutError(InfrastructureError):
    """A bounded wait ran out before the resource reached the wanted state."""


class LabUnavailableError(InfrastructureError):
    """The kernel or the machine lacks what the embedded lab needs (namespaces, iptables, privileges)."""


class UnreadableStateError(InfrastructureError):
    """A file in the state directory is there but cannot be used (truncated, garbage, another schema, a
    symlink); commands that remove an environment say so and fall back on tags and kernel objects."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(
            f"state file {path} is unreadable: {problem}; `peerprobe cleanup` (or `peerprobe lab down`) removes "
            "the environment from its tags and kernel objects and sets the file aside",
            resource="state file",
            resource_id=str(path),
        )
        self.path = str(path)
        self.problem = problem


class EnvironmentBusyError(ConflictError):
    """Another command or flow owns the environment and did not let go within the lock timeout."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so every `finally` on the way runs; exit 130 (design.md)."""
