"""The Prefect UI shows the matrix: `peerprobe drift` (a fresh command) runs against a real Prefect server with
its UI, and headless Chromium, on the run's page, finds the phase's table artifact in the Artifacts tab and the
matrix's rows on the artifact's own page. Skipped, with the reason, where Chromium is not installed
(`scripts/system-deps.sh --with-chromium` installs Debian's)."""

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
from tests.ui.cdp import browser, chromium

pytestmark = pytest.mark.lab
NAME = "drift6u"
START_SECONDS = 90.0
UI_SECONDS = 45.0  # bounded waits for the JS app: the page, its tab, its data
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CHROMIUM = chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (Debian: `apt-get install chromium`, or scripts/system-deps.sh --with-chromium)",
)


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
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_API_URL": api_url,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    prefect = str(Path(sys.executable).with_name("prefect"))
    with open(home / "server.log", "wb") as log:
        process = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # fmt: skip
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
    data = {"name": NAME, "clusters": {"vpc1": {"name": f"{NAME}-one"}, "vpc2": {"name": f"{NAME}-two"}},
            "probe": {"timeout_seconds": 2}, "phases": [{"name": "baseline"}]}  # fmt: skip
    path = lab_state_dir / f"{NAME}.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = config.load(path)
    try:
        lab.up(cfg)
        yield path
    finally:
        lab.down(cfg)


@needs_chromium
def test_the_run_page_shows_the_matrix_artifact(ui_server: str, config_file: Path, lab_state_dir: Path) -> None:
    env = {**os.environ, "PREFECT_API_URL": ui_server, "PEERPROBE_STATE_DIR": str(lab_state_dir)}
    done = subprocess.run([sys.executable, "-m", "peerprobe.cli", "drift", "--config", str(config_file)], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    match = re.search(r"run: (http://\S+/runs/flow-run/[0-9a-f-]+)", done.stdout)
    assert match, done.stdout[-1000:]
    assert CHROMIUM is not None
    with browser(match.group(1), executable=CHROMIUM) as page:
        tab = "[...document.querySelectorAll('li.p-tab, [role=tab]')].find(e => e.textContent.trim() === 'Artifacts')"
        assert page.wait_for(f"!!({tab})", timeout=UI_SECONDS), "the run page rendered its tabs"
        page.evaluate(f"({tab}).click()")
        key = f"{NAME}-phase-live"
        shown = page.wait_for(f"document.body.innerText.includes('{key}')", timeout=UI_SECONDS)
        text = page.text()
        if not shown:
            page.screenshot(lab_state_dir / "ui-run-page.png")
        assert shown, f"artifact {key} not on the run page (screenshot in {lab_state_dir}): {text[:800]}"
        assert "phase live, expected vs observed" in text and "TABLE" in text
        leaves = "[...document.querySelectorAll('*')].filter(e => e.children.length === 0)"
        card = f"{leaves}.find(e => e.textContent.trim() === '{key}')"
        page.evaluate(f"({card}).click()")
        body = "document.body.innerText"
        rows = page.wait_for(f"{body}.includes('vpc2-pod') && {body}.includes('pod-ip')", timeout=UI_SECONDS)
        assert rows, f"the matrix's rows on the artifact page: {page.text()[:800]}"
