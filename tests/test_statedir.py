"""The state directory: env var, XDG default, atomic JSON files."""

from __future__ import annotations

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
