"""The state directory: env var, XDG default, atomic JSON files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from peerprobe import statedir


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
