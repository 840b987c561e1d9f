"""The example automation of docs/drift-automation.yaml, installed idempotently: a Webhook block holding
the URL (a secret field) and the automation that calls it on `peerprobe.drift.detected`.

    python -m flows.drift_automation https://hooks.example.com/...   (PREFECT_API_URL names the server;
    PREFECT_API_AUTH_STRING its auth string, for peerprobe's own the contents of prefect-auth: docs/ui.md)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import yaml
from prefect import get_client
from prefect.blocks.webhook import Webhook
from prefect.events.schemas.automations import AutomationCore

TEMPLATE = Path(__file__).resolve().parent.parent / "docs" / "drift-automation.yaml"
BLOCK_NAME = "peerprobe-drift"
PLACEHOLDER = "WEBHOOK_BLOCK_ID"


def automation_spec(block_id: UUID, path: Path = TEMPLATE) -> AutomationCore:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    for action in data["actions"]:
        if action.get("block_document_id") == PLACEHOLDER:
            action["block_document_id"] = str(block_id)
    return AutomationCore.model_validate(data)


def install(webhook_url: str, *, block_name: str = BLOCK_NAME, allow_private_urls: bool = False) -> UUID:
    """Save (or overwrite) the Webhook block, then create or update the automation; its id."""
    block = Webhook(url=webhook_url, method="POST", allow_private_urls=allow_private_urls)
    block_id = cast(UUID, block.save(block_name, overwrite=True))
    spec = automation_spec(block_id)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(spec.name)
        if existing:
            client.update_automation(existing[0].id, spec)
            return existing[0].id
        return client.create_automation(spec)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m flows.drift_automation WEBHOOK_URL")
    print(f"automation {install(sys.argv[1])} calls the webhook in block {BLOCK_NAME!r} on peerprobe.drift.detected")
