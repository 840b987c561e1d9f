"""The drift check on the lab, against the session's Prefect test server: a kept experiment records the
baseline; a clean check completes; aws-node changed behind peerprobe's back (`lab set-env`) makes the next
check end Drifted, name the setting and the cell, and emit `peerprobe.drift.detected`; setting it back makes
the next check clean; a second check of the same environment waits for the lock or is refused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import get_client

from flows.drift import DRIFTED, drift_check
from flows.experiment import experiment
from peerprobe import config, drift, ownership
from peerprobe.backends.aws import _state as aws_state
from peerprobe.backends.lab import environment as lab
from peerprobe.params import RunParameters
from peerprobe.report.document import Report
from tasks import drift as drift_tasks
from tests.lock_holder import start_holder

pytestmark = pytest.mark.lab
NAME = "drift6"


def drift6_config(name: str = NAME) -> config.ExperimentConfig:
    return config.from_mapping(
        {
            "name": name,
            "clusters": {"vpc1": {"name": f"{name}-one"}, "vpc2": {"name": f"{name}-two"}},
            # 2 s, not less: on a loaded 2-core CI machine a shorter timeout turns slow answers into timeouts.
            "probe": {"timeout_seconds": 2},
            "phases": [{"name": "baseline"}],
        }
    )


@pytest.fixture(scope="module")
def kept(prefect_server: None) -> Iterator[RunParameters]:
    """A kept environment with its baseline recorded, as `peerprobe run --keep` leaves it."""
    params = RunParameters(config=drift6_config(), keep=True, cleanup_on_failure=True)
    try:
        report = experiment(parameters=params)
        assert report.summary.drift == 0
        yield RunParameters(config=params.config)
    finally:
        lab.down(params.config)
        drift.remove_baseline(lab.env_key(params.config))


def check(params: RunParameters) -> tuple[Any, Report]:
    state = drift_check(parameters=params, return_state=True)
    result = state.result(raise_on_failure=False)
    assert isinstance(result, Report), f"{state.name}: {state.message}"
    return state, result


def drift_events(since: float) -> list[Any]:
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
    from prefect.types._datetime import from_timestamp

    query = EventFilter(
        event=EventNameFilter(name=[drift_tasks.EVENT]),
        occurred=EventOccurredFilter(since=from_timestamp(since), until=from_timestamp(since + 3600)),
    )
    deadline = time.monotonic() + 20
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=query, limit=50).events
        if events or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_the_baseline_records_the_configuration(kept: RunParameters) -> None:
    baseline = drift.read_baseline(lab.env_key(kept.config))
    assert baseline is not None and baseline.snapshot is not None
    assert [phase.name for phase in baseline.report.phases] == ["baseline"]
    assert (
        "tcp/8080 from 192.168.0.0/16 (peerprobe probes from the peer)"
        in baseline.snapshot.security_groups["vpc1-nodes"]
    )
    assert baseline.snapshot.peering is not None and baseline.snapshot.peering.status == "active"


def test_a_clean_check_completes_with_an_empty_diff(kept: RunParameters) -> None:
    state, report = check(kept)
    assert state.is_completed(), state.message
    assert [phase.name for phase in report.phases] == ["live"]
    assert report.summary.drift == 0 and report.config_diff == []


def test_set_env_behind_our_back_drifts_names_the_setting_and_emits_the_event(kept: RunParameters) -> None:
    started = time.time()
    lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT=true"])
    try:
        state, report = check(kept)
    finally:
        lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT-"])
    assert state.is_failed() and state.name == DRIFTED
    assert "vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true" in str(state.message)
    assert "vpc2-pod -> pod-ip now shows the client pod instead of its node" in str(state.message)
    assert report.config_diff == [
        {
            "path": "clusters.vpc2.aws_node.AWS_VPC_K8S_CNI_EXTERNALSNAT",
            "baseline": None,
            "live": "true",
            "text": "vpc2 aws-node now has AWS_VPC_K8S_CNI_EXTERNALSNAT=true",
        }
    ]
    assert report.phases[0].snat.vpc2.external_snat is True
    events = drift_events(started)
    assert events, "peerprobe.drift.detected reached the server"
    event = events[0]
    assert event.resource.id == f"peerprobe.environment.{lab.env_key(kept.config)}"
    assert event.payload["config_diff"] == report.config_diff
    assert any("vpc2-pod -> pod-ip" in line for line in event.payload["changed_cells"])
    assert "testing" not in event.model_dump_json(), "no credentials in the event"


def test_the_example_automation_calls_its_webhook_on_drift(kept: RunParameters) -> None:
    """deployments/drift-automation.yaml installed by flows.drift_automation, then a drift: the server's
    automation calls the webhook (a local HTTP server here) with the changed setting."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from flows.drift_automation import install

    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_address[1]}/drift"
    automation = install(url, allow_private_urls=True)
    try:
        assert install(url, allow_private_urls=True) == automation, "idempotent: one automation"
        lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT=true"])
        try:
            state, _ = check(kept)
        finally:
            lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT-"])
        assert state.name == DRIFTED
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        with get_client(sync_client=True) as client:  # later drifts must not call a webhook nobody serves
            client.delete_automation(automation)
        hook.shutdown()
        hook.server_close()
    assert received, "the automation called the webhook within 30 s of the drift event"
    assert b"AWS_VPC_K8S_CNI_EXTERNALSNAT=true" in received[0]


def test_setting_it_back_makes_the_next_check_clean(kept: RunParameters) -> None:
    lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT=true"])
    lab.set_env(kept.config, "vpc2", ["AWS_VPC_K8S_CNI_EXTERNALSNAT-"])
    state, report = check(kept)
    assert state.is_completed() and report.summary.drift == 0 and not report.config_diff


def test_a_revoked_peer_rule_shows_in_the_config_diff_and_the_model_follows(kept: RunParameters) -> None:
    """A change through the AWS API (moto) behind peerprobe's back: the snapshot reads it, the model predicts
    for it (the cell now times out, as expected), and the baseline comparison reports both."""
    from peerprobe.backends.ports import IngressRule

    state_before = lab.require_state(kept.config)
    cloud = lab._cloud(kept.config, state_before.env_key, state_before.run_id)
    group = aws_state.load(state_before.env_key).clusters["vpc1"].security_group
    rule = IngressRule("tcp", 8080, 8080, cidr="192.168.0.0/16", description="peerprobe probes from the peer")
    cloud.revoke_ingress(group, rules=[rule])
    lab.refresh(kept.config)
    try:
        state, report = check(kept)
    finally:
        cloud.authorize_ingress(group, rules=[rule])
        lab.refresh(kept.config)
    assert state.name == DRIFTED
    assert any(
        e["text"] == "security group vpc1-nodes lost tcp/8080 from 192.168.0.0/16 (peerprobe probes from the peer)"
        for e in report.config_diff or []
    )
    pod_ip = next(c for c in report.phases[0].cells if (c.vantage, c.target) == ("vpc2-pod", "pod-ip"))
    assert pod_ip.expected.outcome == "timeout" and pod_ip.observed is not None
    assert pod_ip.observed.outcome == "timeout", "the model predicted for the live rules"


def test_a_second_check_of_the_same_environment_is_refused_while_one_holds_the_lock(
    kept: RunParameters, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ownership.TIMEOUT_ENV, "1")
    holder = start_holder(lab.env_key(kept.config), 60, command="peerprobe drift")
    try:
        state = drift_check(parameters=kept, return_state=True)
    finally:
        holder.kill()
        holder.wait()
    assert state.is_failed()
    assert f"is busy: `peerprobe drift` (pid {holder.pid} on " in str(state.message)


def test_a_second_check_waits_for_the_lock_then_runs(kept: RunParameters, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ownership.TIMEOUT_ENV, "60")
    holder = start_holder(lab.env_key(kept.config), 2.0, command="peerprobe drift")
    started = time.monotonic()
    state = drift_check(parameters=kept, return_state=True)
    holder.wait()
    assert state.is_completed(), state.message
    assert time.monotonic() - started >= 1.5, "it queued behind the first check"


def test_a_check_of_an_absent_environment_fails_and_creates_nothing(prefect_server: None) -> None:
    params = RunParameters(config=drift6_config("drift6-absent"))
    state = drift_check(parameters=params, return_state=True)
    assert state.is_failed() and "no lab environment lab:drift6-absent" in str(state.message)
    assert lab.load_state(lab.env_key(params.config)) is None
