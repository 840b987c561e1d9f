"""Batch documents: specs out and back, results out and back, and results as the report's Observed."""

from __future__ import annotations

import json

import pytest

from peerprobe.errors import ConfigError
from peerprobe.probes import batch
from peerprobe.probes.batch import ProbeResult
from peerprobe.probes.plan import ProbeSpec
from peerprobe.vocabulary import Observed

SPECS = (
    ProbeSpec("vpc2-pod", "pod-ip", "172.16.1.10", 8080),
    ProbeSpec("vpc2-pod", "node-port", "172.16.0.5", 30080, "node-1"),
    ProbeSpec("vpc2-pod", "headless", "echo-headless.default.svc.cluster.local", 8080),
)


def test_batch_round_trip() -> None:
    text = batch.dump_batch(SPECS, timeout_seconds=3, hosts={"echo.local": ["10.0.0.1", "10.0.0.2"]})
    loaded = batch.load_batch(text)
    assert loaded.probes == SPECS
    assert loaded.timeout_seconds == 3.0
    assert loaded.hosts == {"echo.local": ("10.0.0.1", "10.0.0.2")}
    assert json.loads(text)["schema"] == batch.BATCH_SCHEMA


def test_batch_without_hosts() -> None:
    document = json.loads(batch.dump_batch(SPECS[:1], timeout_seconds=0.5))
    del document["hosts"]
    assert batch.load_batch(json.dumps(document)).hosts == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "other/v9"}, "schema: expected"),
        ({"timeout_seconds": 0}, "timeout_seconds: must be a positive number"),
        ({"timeout_seconds": True}, "timeout_seconds: must be a positive number"),
        ({"probes": {}}, "probes: must be a list"),
        ({"probes": [{"vantage": "moon", "target": "pod-ip", "host": "h", "port": 1}]}, "probes[0].vantage:"),
        ({"probes": [{"vantage": "vpc1-pod", "target": "x", "host": "h", "port": 1}]}, "probes[0].target:"),
        ({"probes": [{"vantage": "vpc1-pod", "target": "pod-ip", "host": "a b", "port": 1}]}, "probes[0].host:"),
        ({"probes": [{"vantage": "vpc1-pod", "target": "pod-ip", "host": "h", "port": 0}]}, "probes[0].port:"),
        ({"hosts": {"n": "10.0.0.1"}}, "hosts.n: must be a list"),
    ],
)
def test_bad_batches_name_the_key(change: dict[str, object], message: str) -> None:
    document = json.loads(batch.dump_batch(SPECS, timeout_seconds=3))
    document.update(change)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        batch.load_batch(json.dumps(document))


def test_not_json() -> None:
    with pytest.raises(ConfigError, match="batch: not JSON"):
        batch.load_batch("{")


def test_results_round_trip() -> None:
    results = [
        ProbeResult(
            SPECS[0],
            "ok",
            "192.168.3.7",
            "172.16.1.10:8080",
            "http://172.16.1.10:8080/",
            http_status=200,
            elapsed_seconds=0.0123,
        ),
        ProbeResult(SPECS[1], "timeout", detail="no response within 3s", elapsed_seconds=3.0),
        ProbeResult(
            SPECS[2],
            "ok",
            "192.168.3.7",
            "echo-headless.default.svc.cluster.local:8080",
            "http://echo-headless.default.svc.cluster.local:8080/",
            resolved=("172.16.1.10",),
            http_status=200,
        ),
    ]
    loaded = batch.load_results(batch.dump_results(results))
    assert [r.spec for r in loaded] == list(SPECS)
    assert loaded[0] == ProbeResult(
        SPECS[0],
        "ok",
        "192.168.3.7",
        "172.16.1.10:8080",
        "http://172.16.1.10:8080/",
        http_status=200,
        elapsed_seconds=0.012,
    )
    assert loaded[1].outcome == "timeout" and loaded[1].detail == "no response within 3s"
    assert loaded[2].resolved == ("172.16.1.10",)


def test_result_keys_are_the_plan_keys() -> None:
    document = json.loads(batch.dump_results([ProbeResult(SPECS[1], "refused")]))
    assert document["results"][0]["key"] == "vpc2-pod/node-port/node-1"


def test_to_observed() -> None:
    result = ProbeResult(SPECS[2], "ok", "192.168.3.7", "h:8080", "http://h:8080/", resolved=("172.16.1.10",))
    assert batch.to_observed(result) == Observed(
        outcome="ok",
        client_address="192.168.3.7",
        client_address_role=None,
        resolved=["172.16.1.10"],
        host="h:8080",
        request_uri="http://h:8080/",
    )


def test_details_are_cut_short() -> None:
    observed = batch.to_observed(ProbeResult(SPECS[0], "http-error", detail="x" * 5000))
    assert observed.detail is not None and len(observed.detail) == batch.MAX_DETAIL
    assert batch.short(None) is None
