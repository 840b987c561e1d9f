"""Files peerprobe writes: report paths checked before anything starts, and one writer for every format and for
the state directory (a regular file is replaced atomically from its own directory; anything else is written
through)."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from dataclasses import dataclass, fields
from pathlib import Path

from peerprobe.errors import ConfigError

REPORT_MODE = 0o666  # before the umask, as any program's new file: node_exporter may read it as another user
PRIVATE_MODE = 0o600  # state files name pids, ports and tokens
_SHOWN_CHARS = 200  # of a path quoted in a message
_TEMP_NAME_CHARS = 100  # of the target's name in the temporary's; the rest is ours, within NAME_MAX (255)


@dataclass(frozen=True)
class ReportPaths:
    """Where each report format goes (None: not asked for); the field name is the option without its dashes."""

    json: Path | None = None
    junit: Path | None = None
    markdown: Path | None = None
    metrics: Path | None = None
    html: Path | None = None

    @classmethod
    def checked(cls, **options: str | None) -> ReportPaths:
        """Each given path checked as `checked_path` does, and no two options naming one file (exit 2)."""
        paths = {name: checked_path(f"--{name}", value) for name, value in options.items()}
        _refuse_shared_files({f"--{name}": path for name, path in paths.items() if path is not None})
        return cls(**paths)

    def requested(self) -> list[tuple[str, Path]]:
        """``(option, path)`` of each format asked for, in the order of the fields."""
        chosen = ((f"--{field.name}", getattr(self, field.name)) for field in fields(self))
        return [(option, path) for option, path in chosen if path is not None]


# --- checking a path before anything starts -----------------------------------------------------------------


def checked_path(option: str, value: str | os.PathLike[str] | None) -> Path | None:
    """The path of a report option, or a ConfigError (exit 2) naming the option and the path when the report
    could not be written there: empty, a directory, a missing or unwritable directory, a socket."""
    if value is None:
        return None
    text = os.fspath(value)
    if not text.strip():
        raise ConfigError(f"{option}: the path is empty; give the file to write the report to")
    problem = _problem(text)
    if problem:
        raise ConfigError(f"{option}: {_shown(text)}: {problem}")
    return Path(text)


def _shown(text: str) -> str:
    """The path as a message quotes it: control characters visible, and a hostile length cut."""
    printable = text if text.isprintable() else repr(text)[1:-1]
    return printable if len(printable) <= _SHOWN_CHARS else f"{printable[:_SHOWN_CHARS]}... ({len(text)} characters)"


def _problem(text: str) -> str | None:
    if text.endswith(("/", "/.", "/..")) or text in (".", ".."):
        return "names a directory, not a file"
    try:
        found = os.lstat(text)
    except FileNotFoundError:
        return _directory_problem(Path(text).parent)
    except (OSError, ValueError) as error:
        return _reason(error)
    if stat.S_ISLNK(found.st_mode):
        return _link_problem(text)
    return _existing_problem(text, found.st_mode) or (
        _directory_problem(Path(text).parent) if stat.S_ISREG(found.st_mode) else None
    )


def _link_problem(text: str) -> str | None:
    """A symlink is written through: what it points to must be a file (or a device) that can be written, or
    missing in a directory that exists. stat(2) follows the link itself, so /proc's links to a pipe (what
    /dev/stdout is under `| less`) resolve, where a path spelt out from them would not."""
    shown = _shown(os.path.realpath(text))
    try:
        mode = os.stat(text).st_mode
    except FileNotFoundError:
        problem = _directory_problem(Path(os.path.realpath(text)).parent)
        return f"links to {shown}, and {problem}" if problem else None
    except OSError as error:
        return f"links to {shown}, which {_reason(error)}"
    problem = _existing_problem(text, mode)
    return f"links to {shown}, which {problem}" if problem else None


def _existing_problem(path: str, mode: int) -> str | None:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file or a device"
    if not os.access(path, os.W_OK):
        return "is not writable"
    return None


def _directory_problem(directory: Path) -> str | None:
    """Whether a new file can be made in `directory`: it exists, is a directory, and a file made there (with a
    name of ours, removed at once) really appears; access(2) alone would pass root anywhere, /proc included."""
    try:
        if not directory.is_dir():
            shown = _shown(str(directory))
            return f"{shown} is not a directory" if directory.exists() else f"directory {shown} does not exist"
        fd, probe = _create_temporary(directory, "probe", PRIVATE_MODE)
        os.close(fd)
        probe.unlink()
    except OSError as error:
        return f"no file can be created in {_shown(str(directory))} ({_reason(error)})"
    return None


def _refuse_shared_files(paths: dict[str, Path]) -> None:
    """Two formats in one regular file would leave only the last; a device (/dev/null) may take several."""
    seen: dict[str, str] = {}
    for option, path in paths.items():
        if _is_special(path):
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise ConfigError(
                f"{option}: {_shown(str(path))}: is also the path of {seen[key]}; give each report its own file"
            )
        seen[key] = option


def _is_special(path: Path) -> bool:
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error)


# --- writing -----------------------------------------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    """Write a report: a regular file (or none yet) is replaced atomically, so a reader (a CI job, node_exporter)
    never sees half of it; a symlink, a device or a FIFO is opened and written through, never replaced."""
    data = text.encode("utf-8")
    try:
        special = not stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        special = False
    if special:
        _write_through(path, data)
    else:
        replace_atomically(path, data, mode=REPORT_MODE)
    return path


def replace_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to a new file beside `path` (created exclusively, never through a symlink), flush it to the
    disk, then rename it over `path`: whatever `path` was (a symlink planted there included) is replaced, never
    followed. Nothing is left beside `path` when this fails."""
    fd, temporary = _create_temporary(path.parent, path.name, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            _ensure_owner_access(out.fileno())
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def _create_temporary(directory: Path, name: str, mode: int) -> tuple[int, Path]:
    """A new file ``.<name>.<random>.tmp`` in `directory`; O_EXCL, so an existing file or symlink is an error."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(16):
        candidate = directory / f".{name[:_TEMP_NAME_CHARS]}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(candidate, flags, mode), candidate
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(directory))


def _ensure_owner_access(fd: int) -> None:
    """The umask decides what others may do; the owner always reads and writes its own report."""
    current = stat.S_IMODE(os.fstat(fd).st_mode)
    if current & 0o600 != 0o600:
        os.fchmod(fd, current | 0o600)


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable (fsync(2): syncing a file does not sync its directory entry)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the data itself is already on disk
    finally:
        os.close(fd)


def _write_through(path: Path, data: bytes) -> None:
    """Open what `path` names (following a symlink) and write into it: a device or FIFO stays what it is, and a
    symlinked file keeps its inode, its links and its place. When that file is this process's own stdout or
    stderr (``--json /dev/stdout > out``), the report is appended, so the text already printed there stays."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, REPORT_MODE)
    try:
        found = os.fstat(fd)
        regular = stat.S_ISREG(found.st_mode)
        if regular and _is_own_output(found):
            os.lseek(fd, 0, os.SEEK_END)
        elif regular:
            os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if regular:
            os.fsync(fd)
    finally:
        os.close(fd)


def _is_own_output(found: os.stat_result) -> bool:
    for stream in (1, 2):
        try:
            own = os.fstat(stream)
        except OSError:
            continue
        if (own.st_dev, own.st_ino) == (found.st_dev, found.st_ino):
            return True
    return False
