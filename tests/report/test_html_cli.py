"""`--html` on the command line: predict writes the page; a bad path is bad input (exit 2) before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from peerprobe.cli import app

runner = CliRunner()


def test_predict_writes_the_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["predict", "--html", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count('<article class="path"') == 105


@pytest.mark.parametrize("command", ["predict", "run", "drift"])
def test_a_directory_is_not_an_html_path(tmp_path: Path, command: str) -> None:
    result = runner.invoke(app, [command, "--html", str(tmp_path)])
    assert result.exit_code == 2 and "--html" in result.output, result.output


def test_an_html_path_under_a_file_is_bad_input(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["predict", "--html", str(blocker / "report.html")])
    assert result.exit_code == 2 and "not a directory" in " ".join(result.output.split()), result.output
    assert blocker.read_text() == "x"
