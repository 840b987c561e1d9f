"""The PEERPROBE_* settings: each bad value is refused naming its variable, before anything is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerprobe import environ
from peerprobe.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PEERPROBE_LAB_LATENCY", "cluster"),
        ("PEERPROBE_LAB_LATENCY", "cluster=fast"),
        ("PEERPROBE_LAB_LATENCY", "cluster=inf"),
        ("PEERPROBE_LAB_LATENCY", "cluster=-1"),
        ("PEERPROBE_LAB_LATENCY", "clustr=1"),
        ("PEERPROBE_RESULT_STORAGE", "results"),
        ("PEERPROBE_RESULT_STORAGE", "s3://"),
        ("PEERPROBE_RESULT_STORAGE", "s3://Bad_Bucket/x"),
        ("PEERPROBE_RESULT_STORAGE", "/"),
        ("PEERPROBE_LOCK_TIMEOUT", "soon"),
        ("PEERPROBE_LOCK_TIMEOUT", "nan"),
        ("PEERPROBE_DRIFT_LOCK_TIMEOUT", "-5"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}"):
        environ.check()


def test_good_values_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {
        "PEERPROBE_LAB_LATENCY": "cluster=7,nodegroup=2,load_balancer=0.5",
        "PEERPROBE_RESULT_STORAGE": "s3-bucket/peerprobe-results",
        "PEERPROBE_LOCK_TIMEOUT": "30",
        "PEERPROBE_STATE_DIR": str(tmp_path / "not" / "yet"),
    }.items():
        monkeypatch.setenv(name, value)
    environ.check()
    assert not (tmp_path / "not").exists(), "checking creates nothing"


def test_a_state_dir_that_is_a_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for value in (tmp_path / "file", tmp_path / "file" / "below"):
        monkeypatch.setenv("PEERPROBE_STATE_DIR", str(value))
        with pytest.raises(ConfigError, match=r"^PEERPROBE_STATE_DIR: .*not a directory"):
            environ.check()


def test_a_state_dir_too_long_for_the_labs_owner_record_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / ("d" * 200)))
    with pytest.raises(ConfigError, match=r"^PEERPROBE_STATE_DIR: .*too long for the lab's owner record"):
        environ.check()
