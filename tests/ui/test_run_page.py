"""The Prefect UI shows the run: `peerprobe drift --html` (a fresh command) runs against a real Prefect server with
its UI, and headless Chromium shows the run's page with its task graph, the phase's table artifact with its
verdict column on screen, the link artifact to the HTML report, and that report itself without console errors.
Screenshots go to out/ui/. Skipped where Chromium is not installed, except in CI (tests/ui/conftest.py)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from peerprobe import config
from peerprobe.backends.lab import environment as lab
from tests.ui.cdp import Page, browser

pytestmark = pytest.mark.lab
NAME = "drift6u"
START_SECONDS = 90.0
UI_SECONDS = 45.0  # bounded waits for the JS app: the page, its tab, its data
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TAB = "[...document.querySelectorAll('li.p-tab, [role=tab]')].find(e => e.textContent.trim() === '{}')"
LEAVES = "[...document.querySelectorAll('*')].filter(e => e.children.length === 0)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(api_url: str) -> bool:
    try:
        with _OPENER.open(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` with a database of its own; the UI talks to this server's API."""
    home, port = tmp_path_factory.mktemp("prefect-home"), _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    prefect = str(Path(sys.executable).with_name("prefect"))
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _healthy(api_url):
            assert process.poll() is None and time.monotonic() < deadline, (home / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        yield api_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@pytest.fixture(scope="module")
def config_file(lab_state_dir: Path) -> Iterator[Path]:
    data = {
        "name": NAME,
        "clusters": {"vpc1": {"name": f"{NAME}-one"}, "vpc2": {"name": f"{NAME}-two"}},
        "probe": {"timeout_seconds": 2},
        "phases": [{"name": "baseline"}],
    }
    path = lab_state_dir / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = config.load(path)
    try:
        lab.up(cfg)
        yield path
    finally:
        lab.down(cfg)


@pytest.fixture(scope="module")
def drift_run(ui_server: str, config_file: Path, lab_state_dir: Path, screenshots: Path) -> tuple[str, Path]:
    """`peerprobe drift --html`: the URL of its run's page, and the HTML report it wrote."""
    report = screenshots / "drift-report.html"
    env = {**os.environ, "PREFECT_API_URL": ui_server, "PEERPROBE_STATE_DIR": str(lab_state_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "peerprobe.cli", "drift", "--config", str(config_file), "--html", str(report)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    match = re.search(r"run: (http://\S+/runs/flow-run/[0-9a-f-]+)", done.stdout)
    assert match, done.stdout[-1000:]
    return match.group(1), report


@pytest.fixture(scope="module")
def page(chromium_path: str) -> Iterator[Page]:
    with browser("about:blank", executable=chromium_path) as opened:
        opened.viewport(1600, 1000)
        yield opened


def open_tab(page: Page, name: str) -> None:
    tab = TAB.format(name)
    assert page.wait_for(f"!!({tab})", timeout=UI_SECONDS), f"the run page shows its {name} tab"
    page.evaluate(f"({tab}).click()")


def test_the_run_page_shows_the_task_graph(drift_run: tuple[str, Path], page: Page, screenshots: Path) -> None:
    page.open(drift_run[0])
    # The run graph is drawn on a canvas once the run's tasks have loaded.
    drawn = page.wait_for(
        "[...document.querySelectorAll('canvas')].some(c => c.width > 200 && c.height > 100)", timeout=UI_SECONDS
    )
    page.settle(2.0)  # the graph's nodes arrive after the canvas
    page.screenshot(screenshots / "run-page.png")
    assert drawn, f"no task graph on the run page: {page.text()[:800]}"
    assert page.wait_for("document.body.innerText.includes('probe')", timeout=UI_SECONDS), page.text()[:800]


def test_the_phase_table_shows_its_verdict_column(drift_run: tuple[str, Path], page: Page, screenshots: Path) -> None:
    page.open(drift_run[0])
    open_tab(page, "Artifacts")
    key = f"{NAME}-phase-live"
    shown = page.wait_for(f"document.body.innerText.includes('{key}')", timeout=UI_SECONDS)
    text = page.text()
    assert shown, f"artifact {key} not on the run page: {text[:800]}"
    assert f"{NAME}-html-report" in text, "the run page links to the HTML report"
    page.evaluate(f"({LEAVES}.find(e => e.textContent.trim() === '{key}')).click()")
    body = "document.body.innerText"
    rows = page.wait_for(f"{body}.includes('vpc2-pod') && {body}.includes('pod-ip')", timeout=UI_SECONDS)
    page.settle(1.0)
    page.screenshot(screenshots / "phase-table.png")
    assert rows, f"the matrix's rows on the artifact page: {page.text()[:800]}"
    header = page.evaluate(
        "(() => { const h = [...document.querySelectorAll('th')].find(e => "
        "e.textContent.trim().toLowerCase() === 'verdict'); if (!h) return null; "
        "const r = h.getBoundingClientRect(); return [r.left, r.right]; })()"
    )
    assert header is not None and header[0] >= 0 and header[1] <= 1600, f"verdict column off screen: {header}"
    assert "match" in page.text()


def test_the_drift_html_report_renders(drift_run: tuple[str, Path], page: Page, screenshots: Path) -> None:
    page.open("about:blank")
    page.settle()  # what the Prefect UI still logs while it goes is not the report's
    page.errors.clear()
    page.open(drift_run[1].as_uri())
    page.settle()
    page.screenshot(screenshots / "drift-report.png")
    assert page.errors == [], page.errors
    assert page.evaluate("document.querySelectorAll('article.path').length") > 20
    assert "phase live" in page.text()
