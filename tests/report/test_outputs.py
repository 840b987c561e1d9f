"""Report paths: each class of bad path refused before anything starts (nothing created); the one writer replaces a
regular file atomically from its own directory and writes through a symlink, a device or a FIFO."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerprobe import outputs
from peerprobe.errors import ConfigError
from peerprobe.outputs import ReportPaths, checked_path


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def refusal(value: str) -> str:
    with pytest.raises(ConfigError) as raised:
        checked_path("--json", value)
    assert raised.value.exit_code == 2
    return str(raised.value)


# --- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_path_is_refused_naming_the_option(value: str) -> None:
    assert refusal(value).startswith("--json: the path is empty")


def test_a_directory_is_refused_naming_option_and_path(tmp_path: Path) -> None:
    assert refusal(str(tmp_path)) == f"--json: {tmp_path}: is a directory"


@pytest.mark.parametrize("suffix", ["/", "/.", "/.."])
def test_a_path_that_names_a_directory_is_refused_even_when_missing(tmp_path: Path, suffix: str) -> None:
    assert "names a directory" in refusal(f"{tmp_path}/new{suffix}")


def test_the_current_directory_is_refused() -> None:
    assert "names a directory" in refusal(".")


def test_a_missing_parent_is_refused_and_not_created(tmp_path: Path) -> None:
    message = refusal(str(tmp_path / "nope" / "report.json"))
    assert f"directory {tmp_path / 'nope'} does not exist" in message
    assert not (tmp_path / "nope").exists()


def test_a_parent_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert "not a directory" in refusal(str(tmp_path / "file" / "report.json"))


def test_a_place_where_no_file_can_be_created_is_refused() -> None:
    # root passes access(2) almost anywhere; /proc accepts no new file, so the real creation test must refuse it
    assert "no file can be created in /proc" in refusal("/proc/peerprobe-report.json")


def test_an_existing_file_in_such_a_place_is_refused() -> None:
    assert "no file can be created in /proc" in refusal("/proc/version")


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[Path]:
    """A directory root may not change either (chattr +i), holding one file."""
    folder = tmp_path / "frozen"
    folder.mkdir()
    (folder / "old.json").write_text("{}")
    if subprocess.run(["chattr", "+i", str(folder), str(folder / "old.json")], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")
    yield folder
    subprocess.run(["chattr", "-i", str(folder), str(folder / "old.json")], check=True)


def test_a_new_file_in_an_immutable_directory_is_refused(immutable: Path) -> None:
    assert f"no file can be created in {immutable} (operation not permitted)" in refusal(str(immutable / "r.json"))


def test_an_immutable_file_is_refused(immutable: Path) -> None:
    assert refusal(str(immutable / "old.json")).endswith("old.json: is not writable")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert "is a socket" in refusal(str(path))


def test_a_symlink_to_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path)
    assert f"links to {tmp_path}, which is a directory" in refusal(str(tmp_path / "link"))


def test_a_dangling_symlink_into_a_missing_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone" / "report.json")
    assert "does not exist" in refusal(str(tmp_path / "link"))


def test_checking_creates_nothing(tmp_path: Path) -> None:
    assert checked_path("--json", str(tmp_path / "report.json")) == tmp_path / "report.json"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["/dev/null", "/dev/stdout"])
def test_a_device_is_accepted(value: str) -> None:
    assert checked_path("--junit", value) == Path(value)


def test_no_option_no_path() -> None:
    assert checked_path("--json", None) is None


def test_two_formats_in_one_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--junit: .*: is also the path of --json"):
        ReportPaths.checked(json=str(tmp_path / "r"), junit=f"{tmp_path}/./r")


def test_several_formats_may_go_to_dev_null() -> None:
    paths = ReportPaths.checked(json="/dev/null", junit="/dev/null", metrics=None)
    assert paths.requested() == [("--json", Path("/dev/null")), ("--junit", Path("/dev/null"))]


# --- writing -------------------------------------------------------------------------------------------------


def test_a_new_report_is_written_readable_with_nothing_beside_it(tmp_path: Path, umask_022: None) -> None:
    path = outputs.write_text(tmp_path / "r.json", "{}\n")
    assert path.read_text() == "{}\n" and list(tmp_path.iterdir()) == [path]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # as any new file under the umask: node_exporter reads it


def test_the_owner_can_always_read_its_report(tmp_path: Path) -> None:
    previous = os.umask(0o277)
    try:
        path = outputs.write_text(tmp_path / "r.json", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_regular_file_is_replaced_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")
    with path.open() as reader:  # a reader that opened the old report keeps reading the whole old report
        outputs.write_text(path, "new")
        assert reader.read() == "old"
    assert path.read_text() == "new" and list(tmp_path.iterdir()) == [path]


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    target, link = tmp_path / "real.xml", tmp_path / "link.xml"
    target.write_text("old, and longer than the new text")
    inode = target.stat().st_ino
    link.symlink_to(target)
    outputs.write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new" and target.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.xml", "real.xml"]


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "real.json")
    outputs.write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "real.json").read_text() == "x"


def test_dev_null_takes_a_report_and_stays_a_device() -> None:
    outputs.write_text(Path("/dev/null"), "x" * 100_000)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    outputs.write_text(fifo, "report\n")
    reader.join(timeout=10)
    assert received == [b"report\n"] and stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_failed_write_leaves_the_old_report_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")

    def broken_replace(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", broken_replace)
    with pytest.raises(OSError):
        outputs.write_text(path, "new")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]


def test_replacing_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    (tmp_path / "state.json").symlink_to(elsewhere)
    outputs.replace_atomically(tmp_path / "state.json", b"{}", mode=outputs.PRIVATE_MODE)
    assert elsewhere.read_text() == "untouched" and not (tmp_path / "state.json").is_symlink()
    assert stat.S_IMODE((tmp_path / "state.json").stat().st_mode) == 0o600
