"""UI checks: a real Prefect server with its UI (the test harness serves the API only), and the lab."""

from __future__ import annotations

from tests.backends.lab.conftest import lab_state_dir

__all__ = ["lab_state_dir"]
