"""Verdicts: outcome and role decide; host/request_uri count where stated; may_timeout tolerates a timeout."""

from __future__ import annotations

from peerprobe.compare import judged, verdict
from peerprobe.vocabulary import Cell, Expected, Observed

OK = Expected(outcome="ok", client_address_role="client-node", host="h:8080", request_uri="http://h:8080/")


def seen(**fields: object) -> Observed:
    base = {
        "outcome": "ok",
        "client_address": "192.168.96.16",
        "client_address_role": "client-node",
        "host": "h:8080",
        "request_uri": "http://h:8080/",
    }
    return Observed.model_validate(base | fields)


def test_same_outcome_role_host_and_uri_match() -> None:
    assert verdict(OK, seen()) == ("match", None)


def test_other_role_drifts_and_says_so() -> None:
    result, note = verdict(OK, seen(client_address_role="client-pod"))
    assert result == "drift" and note == "client_address_role: expected client-node, observed client-pod"


def test_other_request_uri_drifts() -> None:
    assert verdict(OK, seen(request_uri="http://h:80/"))[0] == "drift"


def test_timeout_where_ok_expected_drifts() -> None:
    assert verdict(OK, Observed(outcome="timeout"))[0] == "drift"


def test_tolerated_timeout_matches() -> None:
    result, note = verdict(OK.model_copy(update={"may_timeout": True}), Observed(outcome="timeout"))
    assert result == "match" and note and "tolerated" in note


def test_expected_timeout_observed_timeout_matches() -> None:
    assert verdict(Expected(outcome="timeout"), Observed(outcome="timeout")) == ("match", None)


def test_reachability_only_cells_ignore_the_role() -> None:
    assert verdict(Expected(outcome="ok"), seen(client_address_role="other"))[0] == "match"


def test_judged_drift_leads_the_explanation() -> None:
    cell = Cell(vantage="vpc2-pod", target="pod-ip", address="h:8080", expected=OK, explanation=["why"])
    out = judged(cell, seen(client_address_role="client-pod"))
    assert out.verdict == "drift" and out.explanation[0].startswith("drift: ") and out.explanation[1] == "why"
