"""The state directory: env var, XDG default, atomic JSON files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from peerprobe import statedir
from peerprobe.errors import UnreadableStateError


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path / "s"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert statedir.state_dir() == tmp_path / "s"
    assert (tmp_path / "s").is_dir()


def test_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(statedir.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert statedir.state_dir() == tmp_path / "xdg" / "peerprobe"
    monkeypatch.setenv("XDG_STATE_HOME", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert statedir.state_dir() == tmp_path / "home" / ".local" / "state" / "peerprobe"


def test_json_round_trip_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    assert statedir.read_json("x.json") is None
    statedir.write_json("x.json", {"pid": 1})
    statedir.write_json("x.json", {"pid": 2})
    assert statedir.read_json("x.json") == {"pid": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    (tmp_path / "bad.json").write_text("{not json")
    assert statedir.read_json("bad.json") is None
    statedir.remove("x.json")
    statedir.remove("x.json")
    assert statedir.read_json("x.json") is None


def test_state_files_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    path = statedir.write_json("x.json", {"token": "t"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_planted_in_the_state_directory_is_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, outside = tmp_path / "state", tmp_path / "outside.json"
    state.mkdir()
    monkeypatch.setenv(statedir.ENV_VAR, str(state))
    outside.write_text('{"planted": true}')
    (state / "x.json").symlink_to(outside)
    assert statedir.read_json("x.json") is None  # not read through the link
    statedir.write_json("x.json", {"pid": 1})  # nor written through it: the link itself is replaced
    assert outside.read_text() == '{"planted": true}' and not (state / "x.json").is_symlink()
    assert statedir.read_json("x.json") == {"pid": 1}


def test_a_fifo_planted_in_the_state_directory_reads_as_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    os.mkfifo(tmp_path / "x.json")
    assert statedir.read_json("x.json") is None  # at once: opening it does not wait for a writer


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "empty (truncated)"),
        (b'{"env_key": "lab:x:y", "run', "not JSON (truncated or garbage"),
        (b"\xff\xfe garbage", "not UTF-8 text"),
        (b"[1, 2]", "a JSON list, not an object"),
    ],
)
def test_an_unusable_state_file_is_reported_with_its_path_and_what_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, problem: str
) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    (tmp_path / "x.json").write_bytes(content)
    with pytest.raises(UnreadableStateError) as unreadable:
        statedir.read_state("x.json")
    assert unreadable.value.path == str(tmp_path / "x.json") and unreadable.value.problem.startswith(problem)
    assert str(unreadable.value).startswith(f"state file {tmp_path / 'x.json'} is unreadable: {problem}")
    assert statedir.read_json("x.json") is None, "the lenient reader still takes it as absent"
    assert statedir.read_state("absent.json") is None


def test_a_symlink_or_fifo_is_reported_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    (tmp_path / "target.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "target.json")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(UnreadableStateError, match="a symlink, not a state file"):
        statedir.read_state("link.json")
    with pytest.raises(UnreadableStateError, match="not a regular file"):
        statedir.read_state("fifo.json")


def test_discard_quarantines_an_unreadable_file_and_removes_a_good_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(statedir.ENV_VAR, str(tmp_path))
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "bad.json").write_text('{"trunc')
    (tmp_path / "outside.json").write_text("{}")
    (tmp_path / "env" / "link.json").symlink_to(tmp_path / "outside.json")
    statedir.write_json("env/good.json", {"a": 1})
    moved = statedir.discard("env/bad.json")
    assert moved is not None and moved.parent == tmp_path / "quarantine" and moved.read_text() == '{"trunc'
    assert stat.S_IMODE(moved.parent.stat().st_mode) == 0o700
    link = statedir.discard("env/link.json")
    assert link is not None and link.is_symlink() and (tmp_path / "outside.json").exists(), "the link itself moved"
    assert statedir.discard("env/good.json") is None and not (tmp_path / "env" / "good.json").exists()
    assert statedir.discard("env/absent.json") is None
    assert sorted(p.name for p in (tmp_path / "env").iterdir()) == []


def test_the_read_modify_write_lock_never_follows_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, outside = tmp_path / "state", tmp_path / "outside"
    state.mkdir()
    outside.write_text("keep")
    monkeypatch.setenv(statedir.ENV_VAR, str(state))
    (state / ".x.json.lock").symlink_to(outside)
    with statedir.locked("x.json"):
        statedir.write_json("x.json", {"n": 1})
    lock = state / ".x.json.lock"
    assert not lock.is_symlink() and stat.S_IMODE(lock.stat().st_mode) == 0o600 and outside.read_text() == "keep"
