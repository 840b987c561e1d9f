"""What the command line prints: outside text as text (never Rich markup), `error:` on every line of an error,
help written per option with flags shown as flags, --version, the PEERPROBE_* settings refused before anything
starts, and what `run --keep` says it kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerprobe import cli, drift
from peerprobe.config import load
from peerprobe.errors import ConfigError
from peerprobe.run import predicted_report

runner = CliRunner()


@pytest.mark.parametrize("hostile", ["[/]", "[bold]x[/bold]", "[link=file:///etc/passwd]x", "\\[/]"])
def test_markup_in_user_input_is_printed_as_text(hostile: str) -> None:
    result = runner.invoke(cli.app, ["predict", "--backend", hostile])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit), "no MarkupError"
    assert f"error: --backend: {hostile!r} is not one of lab or aws" in result.output


def test_every_line_of_an_error_carries_the_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cli.typer.Exit) as raised:
        cli.fail(ConfigError("services.externalTrafficPolicy: unknown key\n[/] did you mean external_traffic_policy?"))
    assert raised.value.exit_code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: services.externalTrafficPolicy: unknown key",
        "error: [/] did you mean external_traffic_policy?",
    ]


def test_a_long_error_is_one_line_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(cli.typer.Exit):
        cli.fail(ConfigError("x" * 300))
    assert capsys.readouterr().err == "error: " + "x" * 300 + "\n"


def _help(*command: str) -> str:
    result = runner.invoke(cli.app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def _option_help(text: str, option: str) -> str:
    [line] = [line for line in text.splitlines() if line.strip().startswith(option)]
    return line.split(maxsplit=2)[-1]


def test_each_report_option_has_its_own_help() -> None:
    text = _help("run")
    helps = {option: _option_help(text, option) for option in ("--json", "--junit", "--markdown")}
    assert len(set(helps.values())) == 3, helps
    assert "JUnit" in helps["--junit"] and "Markdown" in helps["--markdown"]


@pytest.mark.parametrize("command", ["run", "cleanup", "drift"])
def test_backend_help_says_what_the_backend_is_for_in_each_command(command: str) -> None:
    assert "predict" not in _option_help(_help(command), "--backend")


@pytest.mark.parametrize("command", [(), ("run",), ("drift",), ("lab", "status"), ("sweep",), ("serve",)])
def test_flags_show_as_flags(command: tuple[str, ...]) -> None:
    text = _help(*command)
    assert "<bool>" not in text
    assert "--help" in text


def test_version() -> None:
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("peerprobe ")
    assert result.output.split()[1][0].isdigit()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PEERPROBE_LAB_LATENCY", "cluster=inf"),
        ("PEERPROBE_RESULT_STORAGE", "nowhere"),
        ("PEERPROBE_LOCK_TIMEOUT", "soon"),
    ],
)
def test_a_bad_setting_exits_2_naming_it_before_prefect_and_creates_nothing(
    name: str, value: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    code = (
        "import sys\n"
        "from peerprobe.cli import main\n"
        "sys.argv = ['peerprobe', 'run']\n"
        "try:\n    main()\nexcept SystemExit:\n"
        "    print('prefect' in sys.modules, file=sys.stderr); raise\n"
    )
    env = os.environ | {name: value, "PEERPROBE_STATE_DIR": str(state)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: {name}")
    assert result.stderr.strip().endswith("False"), "Prefect must not be imported before the settings are checked"
    assert not state.exists(), "nothing was created"


def test_a_state_dir_that_is_a_file_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path / "file"))
    result = runner.invoke(cli.app, ["lab", "status"])
    assert result.exit_code == 2 and "error: PEERPROBE_STATE_DIR" in result.output


def test_run_keep_says_what_it_kept_the_baseline_and_how_to_remove_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PEERPROBE_STATE_DIR", str(tmp_path))
    config = load()
    report = predicted_report(config).model_copy(update={"run_id": "run-1"})
    drift.record_baseline("lab:workshop:cn-northwest-1", report, None)
    cli._explain_kept("lab", config, Path("my env.yaml"))
    out = capsys.readouterr().out
    assert "kept: the lab environment lab:workshop:cn-northwest-1" in out
    assert "baseline: phase baseline of run run-1 is recorded" in out
    assert "peerprobe cleanup --backend lab --config 'my env.yaml'" in out


def test_prefects_analytics_and_their_notice_are_off_in_every_command(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from peerprobe.cli import main\n"
        "sys.argv = ['peerprobe', 'predict']\n"
        "try:\n    main()\nexcept SystemExit:\n"
        "    from prefect._internal.analytics.enabled import is_telemetry_enabled\n"
        "    print('analytics', is_telemetry_enabled(), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "CI")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.stderr.strip().endswith("analytics False"), result.stderr[-500:]
