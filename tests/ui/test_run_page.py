"""The Prefect UI shows the run: `peerprobe drift --html` (a fresh command) runs against a real Prefect server with
its UI, and headless Chromium shows the run's page with its task graph, the phase's table artifact with its
verdict column on screen, the link artifact to the HTML report, and that report itself without console errors.
Screenshots go to out/ui/. Skipped where Chromium is not installed, except in CI (tests/ui/conftest.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from peerprobe import config, daemon, server, statedir
from peerprobe.backends.lab import environment as lab
from tests.flows.run_logs import all_logs
from tests.ui.cdp import Page, browser

pytestmark = pytest.mark.lab
NAME = "drift6u"
START_SECONDS = 90.0
UI_SECONDS = 45.0  # bounded waits for the JS app: the page, its tab, its data
TAB = "[...document.querySelectorAll('li.p-tab, [role=tab]')].find(e => e.textContent.trim() === '{}')"
LEAVES = "[...document.querySelectorAll('*')].filter(e => e.children.length === 0)"


@pytest.fixture(scope="module")
def ui_server(lab_state_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[server.PrefectServer]:
    """peerprobe's own server as `peerprobe run` starts it (closed: the UI asks for the auth string), with a
    database of its own, recorded in the lab's state directory; stopped and forgotten afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
        started = server.start(port=daemon.free_port(), timeout=START_SECONDS)
    try:
        yield started
    finally:
        if started.pid is not None:
            daemon.terminate(started.pid, timeout=20)
        statedir.remove(server.STATE_FILE)


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


@dataclass(frozen=True)
class DriftRun:
    url: str  # of the run's page
    report: Path  # the HTML report
    output: str  # what the command printed


@pytest.fixture(scope="module")
def drift_run(ui_server: server.PrefectServer, config_file: Path, lab_state_dir: Path, screenshots: Path) -> DriftRun:
    """`peerprobe drift --html` against the UI's server (PREFECT_API_URL names it: peerprobe finds its auth
    string in the state directory): its run's page, the HTML report it wrote, and what it printed."""
    report = screenshots / "drift-report.html"
    env = {**os.environ, "PREFECT_API_URL": ui_server.api_url, "PEERPROBE_STATE_DIR": str(lab_state_dir)}
    env.pop("PREFECT_API_AUTH_STRING", None)
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
    return DriftRun(url=match.group(1), report=report, output=done.stdout + done.stderr)


@pytest.fixture(scope="module")
def page(chromium_path: str, ui_server: server.PrefectServer) -> Iterator[Page]:
    with browser("about:blank", executable=chromium_path) as opened:
        opened.viewport(1600, 1000)
        sign_in(opened, ui_server)
        yield opened


def sign_in(page: Page, prefect_server: server.PrefectServer) -> None:
    """What a user does: the UI asks for the auth string, which they paste from the state directory's file."""
    page.open(prefect_server.ui_url)
    field = "document.querySelector('input[type=password]')"
    assert page.wait_for(f"!!{field}", timeout=UI_SECONDS), f"the UI asks for no auth string: {page.text()[:400]}"
    page.evaluate(f"{field}.focus()")
    page.call("Input.insertText", text=(server.auth_path().read_text().strip()))
    page.evaluate("document.querySelector('button[type=submit]').click()")
    assert page.wait_for(f"!{field}", timeout=UI_SECONDS), f"the UI refused the auth string: {page.text()[:400]}"


def open_tab(page: Page, name: str) -> None:
    tab = TAB.format(name)
    assert page.wait_for(f"!!({tab})", timeout=UI_SECONDS), f"the run page shows its {name} tab"
    page.evaluate(f"({tab}).click()")


def test_the_run_page_shows_the_task_graph(drift_run: DriftRun, page: Page, screenshots: Path) -> None:
    page.open(drift_run.url)
    # The run graph is drawn on a canvas once the run's tasks have loaded.
    drawn = page.wait_for(
        "[...document.querySelectorAll('canvas')].some(c => c.width > 200 && c.height > 100)", timeout=UI_SECONDS
    )
    page.settle(2.0)  # the graph's nodes arrive after the canvas
    page.screenshot(screenshots / "run-page.png")
    assert drawn, f"no task graph on the run page: {page.text()[:800]}"
    assert page.wait_for("document.body.innerText.includes('probe')", timeout=UI_SECONDS), page.text()[:800]


def test_the_phase_table_shows_its_verdict_column(drift_run: DriftRun, page: Page, screenshots: Path) -> None:
    page.open(drift_run.url)
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


def test_the_drift_html_report_renders(drift_run: DriftRun, page: Page, screenshots: Path) -> None:
    page.open("about:blank")
    page.settle()  # what the Prefect UI still logs while it goes is not the report's
    page.errors.clear()
    page.open(drift_run.report.as_uri())
    page.settle()
    page.screenshot(screenshots / "drift-report.png")
    assert page.errors == [], page.errors
    assert page.evaluate("document.querySelectorAll('article.path').length") > 20
    assert "phase live" in page.text()


def test_nothing_the_run_printed_wrote_or_logged_carries_the_auth_string(
    drift_run: DriftRun, ui_server: server.PrefectServer, lab_state_dir: Path
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    run_id = UUID(drift_run.url.rsplit("/", 1)[1])
    ours = {PREFECT_API_URL: ui_server.api_url, PREFECT_API_AUTH_STRING: ui_server.auth_string}
    with temporary_settings(updates=ours), get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
        logs = all_logs(client, run_id)
        run = client.read_flow_run(run_id)
    assert found and logs, "the run published artifacts and logs"
    texts = [drift_run.output, drift_run.report.read_text(), run.model_dump_json()]
    texts += [artifact.model_dump_json() for artifact in found] + [log.message for log in logs]
    texts += [path.read_text(errors="replace") for path in lab_state_dir.glob("*.log")]
    assert [text[:200] for text in texts if str(ui_server.auth_string) in text] == []
