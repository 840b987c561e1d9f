"""The Markdown report: title and summary, a section and table per phase, drifted cells, workshop errors."""

from __future__ import annotations

from peerprobe.report import markdown
from peerprobe.report.document import PhaseReport, Report
from tests.report.conftest import DRIFT_AT, cell_at


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def test_title_names_experiment_backend_and_run(observed: Report) -> None:
    assert markdown.render(observed).startswith("# peerprobe: workshop on lab, run `run-0001`\n")


def test_title_is_followed_by_the_summary(observed: Report) -> None:
    assert "**105 cells: 104 match, 1 drift (1 tolerated timeout)**" in markdown.render(observed)


def test_each_phase_has_a_section_with_its_snat_settings_as_read_back(observed: Report) -> None:
    text = markdown.render(observed)
    assert "## Phase `external-snat`\n\nSNAT (as read back from aws-node): vpc1: EXTERNALSNAT=true;" in text


def test_a_predicted_phase_says_its_settings_are_as_configured(predicted: Report) -> None:
    assert "SNAT (as configured): vpc1: defaults; vpc2: defaults" in markdown.render(predicted)


def test_one_table_row_per_cell_plus_headers(observed: Report) -> None:
    cells = sum(len(phase.cells) for phase in observed.phases)
    assert len(table_rows(markdown.render(observed))) == cells + len(observed.phases)


def test_a_matching_row_shows_expected_observed_and_a_tick(observed: Report) -> None:
    row = markdown.row(cell_at(observed, ("vpc1-pod", "pod-ip")))
    assert (row["expected"], row["observed"], row["verdict"]) == (
        "ok, client-pod",
        "ok from 172.16.160.19 (client-pod)",
        "✅ match",
    )


def test_a_drifted_row_is_marked_with_a_cross(observed: Report) -> None:
    assert markdown.row(cell_at(observed, DRIFT_AT))["verdict"] == "❌ drift"


def test_a_tolerated_row_says_tolerated(observed: Report) -> None:
    assert markdown.row(cell_at(observed, ("vpc1-pod", "internal-nlb")))["verdict"] == "tolerated"


def test_node_port_rows_name_the_node(observed: Report) -> None:
    assert markdown.row(cell_at(observed, ("vpc1-pod", "node-port")))["target (node)"] == "node-port@ip-172-16-96-16"


def test_predicted_rows_have_no_observation(predicted: Report) -> None:
    row = markdown.row(predicted.phases[0].cells[0])
    assert (row["observed"], row["verdict"]) == ("-", "predicted")


def test_drifted_cells_give_the_headline_then_every_reason(observed: Report) -> None:
    cell = cell_at(observed, DRIFT_AT)
    section = markdown.render(observed).split("## Drifted cells\n\n")[1].split("\n## ")[0]
    assert section.startswith(f"- **baseline · vpc2-pod → pod-ip** (172.16.96.18:8080): {cell.explanation[0]}\n")
    assert all(f"  - {reason}" in section for reason in cell.explanation[1:])


def test_no_drift_says_none(predicted: Report) -> None:
    assert "## Drifted cells\n\nNone: nothing was observed (predicted only)." in markdown.render(predicted)


def test_workshop_claims_that_do_not_hold_give_claim_ref_expected_and_why(predicted: Report) -> None:
    section = markdown.render(predicted).split("## Workshop claims that do not hold\n\n")[1]
    assert section.startswith(
        "- **baseline · vpc1-pod → headless**: claims “busybox host IP” (workshop 12.4); expected ok, client-pod, "
        "because vpc1 CNI keeps the pod IP"
    )


def test_pipes_are_escaped_in_table_cells(predicted: Report) -> None:
    phase = predicted.phases[0]
    piped = phase.cells[0].model_copy(update={"address": "a|b:80"})
    text = markdown.render(
        predicted.model_copy(update={"phases": [PhaseReport(name="p", snat=phase.snat, cells=[piped])]})
    )
    row = table_rows(text)[1]
    assert "a\\|b:80" in row and row.count(" | ") == 5
