"""The document's shared queries: status (tolerated apart), tally, drifted cells, workshop errors, cell texts."""

from __future__ import annotations

import json
from pathlib import Path

from peerprobe.report.document import (
    Report,
    Summary,
    expected_text,
    observed_text,
    status,
    target_label,
    why,
    write,
)
from tests.report.conftest import DRIFT_AT, TOLERATED_AT, cell_at


def test_a_predicted_cell_has_status_predicted(predicted: Report) -> None:
    assert {status(cell) for phase in predicted.phases for cell in phase.cells} == {"predicted"}


def test_an_allowed_timeout_is_tolerated_not_plain_match(observed: Report) -> None:
    cell = cell_at(observed, TOLERATED_AT)
    assert cell.verdict == "match" and status(cell) == "tolerated"


def test_a_drifted_cell_has_status_drift(observed: Report) -> None:
    assert status(cell_at(observed, DRIFT_AT)) == "drift"


def test_tally_counts_tolerated_apart_from_match(observed: Report) -> None:
    tally = observed.tally()
    assert (tally.drift, tally.tolerated, tally.match) == (1, 1, tally.cells - 2)


def test_tally_line_leads_with_cells_match_drift(observed: Report) -> None:
    assert observed.tally().line() == "105 cells: 103 match, 1 tolerated timeout, 1 drift"


def test_tally_line_names_predicted_cells(predicted: Report) -> None:
    assert predicted.tally().line() == "105 cells predicted (the model only: nothing was probed)"


def test_drifted_lists_each_drifted_cell_with_its_phase(observed: Report) -> None:
    assert [(phase, (c.vantage, c.target)) for phase, c in observed.drifted()] == [("baseline", DRIFT_AT)]


def test_workshop_errors_are_the_claims_that_do_not_hold(predicted: Report) -> None:
    errors = predicted.workshop_errors()
    assert errors and all(cell.workshop and not cell.workshop.agrees for _, cell in errors)


def test_snat_settings_name_what_each_cluster_has(predicted: Report) -> None:
    assert predicted.phases[0].snat_settings() == "vpc1: defaults; vpc2: defaults"
    assert predicted.phases[2].snat_settings() == (
        "vpc1: EXCLUDE_SNAT_CIDRS=192.168.0.0/16; vpc2: EXCLUDE_SNAT_CIDRS=172.16.0.0/16"
    )


def test_target_label_adds_the_short_node_name(predicted: Report) -> None:
    labels = [target_label(cell) for cell in predicted.phases[0].cells if cell.target == "node-port"]
    assert labels[0] == "node-port@ip-172-16-96-16"


def test_expected_text_says_may_time_out(observed: Report) -> None:
    assert expected_text(cell_at(observed, TOLERATED_AT)) == "ok, vpc1-node, may time out"


def test_observed_text_gives_address_role_and_resolved_names(observed: Report) -> None:
    text = observed_text(cell_at(observed, ("vpc1-pod", "headless")))
    assert text == "ok from 172.16.160.19 (client-pod), resolved 172.16.96.18"


def test_observed_text_of_a_predicted_cell_is_a_dash(predicted: Report) -> None:
    assert observed_text(predicted.phases[0].cells[0]) == "-"


def test_why_skips_the_drift_headline(observed: Report) -> None:
    cell = cell_at(observed, DRIFT_AT)
    assert cell.explanation[0].startswith("drift: ") and why(cell) == cell.explanation[1]


def test_json_summary_counts_tolerated_apart_from_match(observed: Report) -> None:
    summary = json.loads(observed.to_json())["summary"]
    assert summary == {"cells": 105, "match": 103, "tolerated": 1, "drift": 1, "predicted": 0}


def test_every_cell_is_counted_once(observed: Report, predicted: Report) -> None:
    for report in (observed, predicted):
        summary = report.summary
        assert summary.cells == summary.match + summary.tolerated + summary.drift + summary.predicted


def test_write_renders_a_fresh_summary(observed: Report, tmp_path: Path) -> None:
    stale = observed.model_copy(update={"summary": Summary()})
    path = write(stale, tmp_path / "report.json")
    assert json.loads(path.read_text())["summary"]["tolerated"] == 1 and list(tmp_path.iterdir()) == [path]


def test_observed_text_gives_the_probe_detail_only_when_asked(observed: Report) -> None:
    cell = cell_at(observed, TOLERATED_AT)
    assert observed_text(cell) == "timeout"
    assert observed_text(cell, detail=True) == "timeout (timed out after 3s)"
