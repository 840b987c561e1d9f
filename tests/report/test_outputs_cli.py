"""Report options on the command line: a bad path exits 2 naming the option and the path, before anything starts;
`drift` takes every report option `run` takes; `finish` writes every format asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from typer.testing import CliRunner

from peerprobe.cli import app
from peerprobe.outputs import ReportPaths
from peerprobe.params import RunParameters
from peerprobe.report.document import Report
from peerprobe.run import RunOutcome, finish

runner = CliRunner()


def outcome(report: Report) -> RunOutcome:
    return RunOutcome(
        state="Completed",
        flow_run_id="f",
        run_url="http://ui/run",
        api_url="http://api",
        parameters=RunParameters(),
        report=report,
    )


def test_predict_into_a_directory_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    before = sorted(tmp_path.parent.iterdir())
    result = runner.invoke(app, ["predict", "--json", str(tmp_path)])
    assert result.exit_code == 2
    assert f"--json: {tmp_path}: is a directory" in " ".join(result.output.split())
    assert sorted(tmp_path.parent.iterdir()) == before and list(tmp_path.iterdir()) == []


def test_predict_with_an_empty_path_exits_2() -> None:
    result = runner.invoke(app, ["predict", "--json", ""])
    assert result.exit_code == 2 and "--json: the path is empty" in result.output


def test_predict_into_dev_null_succeeds() -> None:
    assert runner.invoke(app, ["predict", "--json", "/dev/null"]).exit_code == 0


def test_run_with_a_missing_directory_exits_2_before_anything_starts(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "junit.xml"
    code = (
        "import sys\n"
        "from peerprobe.cli import main\n"
        f"sys.argv = ['peerprobe', 'run', '--junit', {str(target)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n"
        "    print('prefect' in sys.modules, file=sys.stderr); raise\n"
    )
    env = {"PEERPROBE_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stderr
    assert f"--junit: {target}: directory {target.parent} does not exist" in " ".join(result.stderr.split())
    assert result.stderr.strip().endswith("False"), "Prefect must not be imported before the paths are checked"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no state directory, no report directory


@pytest.mark.parametrize("option", ["--json", "--junit", "--markdown", "--metrics"])
def test_drift_checks_each_report_option_first(option: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["drift", option, str(tmp_path)])
    assert result.exit_code == 2 and f"{option}: {tmp_path}: is a directory" in " ".join(result.output.split())


def test_finish_writes_every_format_asked_for(observed: Report, tmp_path: Path) -> None:
    reports = ReportPaths(
        json=tmp_path / "r.json", junit=tmp_path / "j.xml", markdown=tmp_path / "r.md", metrics=tmp_path / "m.prom"
    )
    assert finish(outcome(observed), reports=reports, console=Console(quiet=True)) == 1
    assert '"tolerated": 1' in (tmp_path / "r.json").read_text()
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"
    assert (tmp_path / "r.md").read_text().startswith("#")
    families = {f.name for f in text_string_to_metric_families((tmp_path / "m.prom").read_text())}
    assert "peerprobe_cell_match" in families
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.xml", "m.prom", "r.json", "r.md"]


def test_a_report_that_cannot_be_written_exits_3_and_the_others_are_written(
    observed: Report, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gone = tmp_path / "gone"  # checked while it existed, removed during the run
    reports = ReportPaths(json=gone / "r.json", junit=tmp_path / "j.xml")
    assert finish(outcome(observed), reports=reports, console=Console(quiet=True)) == 3
    assert (tmp_path / "j.xml").is_file()
    assert f"error: --json: {gone / 'r.json'}: the report could not be written" in capsys.readouterr().err


def test_predict_to_dev_stdout_into_a_pipe_and_into_a_file(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "peerprobe.cli", "predict", "--json", "/dev/stdout"]
    piped = subprocess.run(command, capture_output=True, text=True)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.rstrip().endswith("}") and '"schema": "peerprobe.report/v1"' in piped.stdout
    with (tmp_path / "out.txt").open("w") as out:  # `> out.txt`: the report follows the table, nothing lost
        assert subprocess.run(command, stdout=out, stderr=subprocess.DEVNULL).returncode == 0
    text = (tmp_path / "out.txt").read_text()
    assert text.startswith("Before/after (expected)") and text.rstrip().endswith("}") and "\0" not in text
