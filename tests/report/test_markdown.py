"""The Markdown report: a title naming the config and its non-default keys, the before/after view and the summary,
the drifted cells, the workshop claims that hold not (for the workshop's topology only), the full tables."""

from __future__ import annotations

import pytest

from peerprobe import config
from peerprobe.report import markdown
from peerprobe.report.document import PhaseReport, Report
from peerprobe.run import predicted_report
from tests.report.conftest import DRIFT_AT, cell_at

LOCAL = {"name": "local-ip", "services": {"external_traffic_policy": "Local", "internal_nlb": {"target_type": "ip"}}}


def table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")]


def headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def test_title_names_experiment_backend_and_run(observed: Report) -> None:
    assert markdown.render(observed, config.load()).startswith("# peerprobe: workshop on lab, run `run-0001`\n")


def test_a_default_config_says_every_key_is_at_its_default(observed: Report) -> None:
    assert "Config `workshop`: every key at its default (the workshop topology)." in markdown.render(
        observed, config.load()
    )


def test_title_names_the_non_default_keys_and_the_config_lists_them() -> None:
    local = config.from_mapping(LOCAL)
    text = markdown.render(predicted_report(local), local)
    keys = r"services.external\_traffic\_policy: Local; services.internal\_nlb.target\_type: ip"
    assert text.splitlines()[0] == f"# peerprobe: local-ip on lab (predicted, no run) — {keys}"
    assert r"- services.internal\_nlb.target\_type: ip" in text


def test_without_the_config_the_report_says_it_was_not_recorded(observed: Report) -> None:
    assert "Config `workshop`: not recorded in this report." in markdown.render(observed)


def test_sections_come_in_order(observed: Report) -> None:
    found = [line for line in headings(markdown.render(observed, config.load())) if line.startswith("## ")]
    assert found == [
        "## Before/after",
        "## Drifted cells",
        "## Workshop claims that do not hold",
        "## Phase `baseline`",
        "## Phase `external-snat`",
        "## Phase `exclude-snat`",
        "## Load balancers",
    ]


def test_the_summary_counts_tolerated_timeouts_apart(observed: Report) -> None:
    text = markdown.render(observed)
    assert text.index("**105 cells: 103 match, 1 tolerated timeout, 1 drift**") < text.index("## Before/after")


def test_the_before_after_table_has_a_column_per_phase_and_marks_changes(predicted: Report) -> None:
    text = markdown.render(predicted).split("## Before/after")[1].split("## Drifted")[0]
    rows = table_rows(text)
    assert rows[0] == "| vantage | target | baseline | external-snat | exclude-snat |"
    assert "| vpc2-pod | pod-ip | client-node | **\\*client-pod** | client-pod |" in rows
    assert len(rows) == 1 + len({(c.vantage, c.target) for c in predicted.phases[0].cells})


def test_each_change_gives_its_mechanism(predicted: Report) -> None:
    section = markdown.render(predicted).split("### What changed, and why\n\n")[1]
    assert section.startswith(
        "- **baseline → external-snat**, vpc1-pod → peer-host: client-node → client-pod. vpc1 CNI"
    )


def test_full_rows_have_a_mechanism_and_short_load_balancer_names(observed: Report) -> None:
    row = markdown.row(cell_at(observed, ("vpc1-pod", "load-balancer")))
    assert row["address"].endswith("…:80") and len(row["address"]) < 20
    assert row["mechanism"] == cell_at(observed, ("vpc1-pod", "load-balancer")).explanation[0]


def test_load_balancers_are_listed_in_full_once(observed: Report) -> None:
    text = markdown.render(observed)
    names = observed.topology.vpc1.load_balancers.values()
    assert all(text.count(name) == 1 for name in names) and text.index("## Load balancers") > text.index("## Phase")


def test_one_full_table_row_per_cell(observed: Report) -> None:
    full = markdown.render(observed).split("## Phase `baseline`")[1]
    cells = sum(len(phase.cells) for phase in observed.phases)
    assert len(table_rows(full)) == cells + len(observed.phases)


def test_a_tolerated_row_says_tolerated(observed: Report) -> None:
    assert markdown.row(cell_at(observed, ("vpc1-pod", "internal-nlb")))["verdict"] == "tolerated"


def test_a_drifted_row_is_marked_with_a_cross(observed: Report) -> None:
    assert markdown.row(cell_at(observed, DRIFT_AT))["verdict"] == "❌ drift"


def test_drifted_cells_give_the_headline_then_every_reason(observed: Report) -> None:
    cell = cell_at(observed, DRIFT_AT)
    section = markdown.render(observed).split("## Drifted cells\n\n")[1].split("\n## ")[0]
    assert section.startswith(r"- **baseline · vpc2-pod → pod-ip** (172.16.96.18:8080): drift: client\_address\_role")
    assert section.count("\n  - ") == len(cell.explanation)


def test_workshop_claims_are_listed_for_the_workshops_topology(predicted: Report) -> None:
    section = markdown.render(predicted, config.load()).split("## Workshop claims that do not hold\n\n")[1]
    assert section.split("\n## ")[0].count("\n- ") + 1 == 5
    assert section.startswith("- **baseline · vpc1-pod → headless**: claims “busybox host IP” (workshop 12.4)")


def test_workshop_claims_for_another_topology_are_left_out() -> None:
    local = config.from_mapping(LOCAL)
    report = predicted_report(local)
    section = markdown.render(report, local).split("## Workshop claims that do not hold\n\n")[1].split("\n## ")[0]
    assert len(report.workshop_errors()) > 5 and section.count("\n- ") == 0  # the model attaches 14; one applies
    assert "vpc1-pod → headless" in section


@pytest.mark.parametrize(
    ("hostile", "escaped"),
    [
        ("a|b", "a\\|b"),
        ("[x](http://e)", "\\[x](http://e)"),
        ("<script>", "&lt;script>"),
        ("`c`", "\\`c\\`"),
        ("*em*", "\\*em\\*"),
        ("line\nbreak", "line break"),
    ],
)
def test_outside_text_never_becomes_markup(predicted: Report, hostile: str, escaped: str) -> None:
    phase = predicted.phases[0]
    cell = phase.cells[0].model_copy(update={"address": hostile, "explanation": [hostile]})
    report = predicted.model_copy(update={"phases": [PhaseReport(name="p", snat=phase.snat, cells=[cell])]})
    full = markdown.render(report).split("## Phase `p`")[1]
    row = next(line for line in table_rows(full) if line.startswith("| vpc1-pod | pod-ip |"))
    assert row.count(" | ") == 6 and row.count(escaped) == 2


def test_escape_keeps_its_meaning_for_the_other_views() -> None:
    assert markdown.escape("a|b\nc_d*") == "a\\|b c_d*"
