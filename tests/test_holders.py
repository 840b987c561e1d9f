"""Whether a live process holds an environment: a lock file someone has flock-ed, or a holder record naming a
live pid on this host, in any state directory; found by the environment's file name as a whole word."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
from pathlib import Path

from peerprobe import holders

KEY = "lab:x:cn-northwest-1"


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_nothing_recorded_holds_nothing(tmp_path: Path) -> None:
    assert not holders.held(tmp_path, KEY)
    assert not holders.held(tmp_path / "absent", KEY)


def test_a_holder_record_of_a_live_process_holds(tmp_path: Path) -> None:
    record = tmp_path / "locks" / f"{holders.slug(KEY)}.holder.json"
    record.parent.mkdir()
    record.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert holders.held(tmp_path, KEY)


def test_a_holder_record_of_a_dead_process_or_another_host_does_not(tmp_path: Path) -> None:
    record = tmp_path / f"{holders.slug(KEY)}.lock"
    record.write_text(json.dumps({"pid": _dead_pid()}))
    assert not holders.held(tmp_path, KEY)
    record.write_text(json.dumps({"pid": os.getpid(), "host": "another-machine"}))
    assert not holders.held(tmp_path, KEY)


def test_a_lock_file_someone_has_locked_holds_until_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / f".environments_{holders.slug(KEY)}.json.lock"
    with open(path, "a") as handle:
        assert not holders.held(tmp_path, KEY)
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert holders.held(tmp_path, KEY)
        fcntl.flock(handle, fcntl.LOCK_UN)
        assert not holders.held(tmp_path, KEY)


def test_another_environments_record_does_not_count(tmp_path: Path) -> None:
    (tmp_path / f"{holders.slug(KEY)}2.holder.json").write_text(json.dumps({"pid": os.getpid()}))
    (tmp_path / f"{holders.slug(KEY)}.json").write_text(json.dumps({"pid": os.getpid()}))  # a state, not a lock
    assert not holders.held(tmp_path, KEY)


def test_a_symlinked_record_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"pid": os.getpid()}))
    (tmp_path / f"{holders.slug(KEY)}.holder.json").symlink_to(target)
    assert not holders.held(tmp_path, KEY)
