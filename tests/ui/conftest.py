"""UI checks: Debian's Chromium headless; a real Prefect server with its UI and the lab for the run page.

Without Chromium they skip, except in CI (`CI=true`), where `make test` installs it: there a missing browser
fails, so the check cannot silently stop running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ui.cdp import chromium

# Screenshots are kept as test artifacts, beside the reports `make run` writes.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "ui"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = chromium()
    if found is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium; `make test` installs it)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
