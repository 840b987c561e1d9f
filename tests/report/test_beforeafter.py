"""The before/after rows, the changes between phases, the summary line, and a drift cell's baseline value."""

from __future__ import annotations

import pytest

from peerprobe import drift
from peerprobe.report import beforeafter
from peerprobe.report.document import Report
from peerprobe.vocabulary import Observed, Role
from tests.report.conftest import cell_at


def test_one_row_per_vantage_and_target_when_the_nodes_agree(predicted: Report) -> None:
    pairs = {(cell.vantage, cell.target) for cell in predicted.phases[0].cells}
    assert len(beforeafter.rows(predicted)) == len(pairs)


def test_each_row_has_one_value_per_phase(observed: Report) -> None:
    row = beforeafter.rows(observed)[0]
    assert [value.text for value in row.values] == ["172.16.160.19 client-pod"] * 3


def test_the_changes_of_the_workshop_prediction_are_the_external_snat_ones(predicted: Report) -> None:
    changes = beforeafter.changes(predicted, beforeafter.rows(predicted))
    found = [(c.row.vantage, c.row.target, c.before, c.after, c.was, c.now) for c in changes]
    assert found == [
        ("vpc1-pod", "peer-host", "baseline", "external-snat", "client-node", "client-pod"),
        ("vpc2-pod", "pod-ip", "baseline", "external-snat", "client-node", "client-pod"),
    ]
    assert changes[0].why == cell_at(predicted, ("vpc1-pod", "peer-host"), phase=1).explanation[0]


def test_the_summary_counts_tolerated_timeouts_apart(observed: Report) -> None:
    assert beforeafter.summary_line(observed) == "105 cells: 103 match, 1 tolerated timeout, 1 drift"


def test_a_long_load_balancer_name_is_shortened_with_its_port(predicted: Report) -> None:
    cell = cell_at(predicted, ("vpc1-pod", "load-balancer"))
    assert beforeafter.short_address(cell) == cell.address.split(".")[0][:12] + "…:80"


def test_dns_answers_are_summarised() -> None:
    assert (beforeafter.dns_summary(["10.0.0.1"]), beforeafter.dns_summary(["a", "b"])) == (
        "dns: 10.0.0.1",
        "dns: 2 addresses",
    )


ROLES: list[Role] = [
    "client-pod",
    "client-node",
    "client-host",
    "nat-gateway",
    "receiving-node",
    "vpc1-node",
    "load-balancer",
    "other",
]


@pytest.mark.parametrize("role", ROLES)
def test_a_changed_role_reads_back_as_the_baselines_role(predicted: Report, role: Role) -> None:
    """drift.cell_change words the change; the baseline column reads the baseline's role back from it."""
    cell = cell_at(predicted, ("vpc2-pod", "pod-ip"))
    other: Role = "other" if role != "other" else "client-pod"
    before = cell.model_copy(update={"observed": Observed(outcome="ok", client_address_role=role)})
    now = cell.model_copy(update={"observed": Observed(outcome="ok", client_address_role=other)})
    line = f"{drift.SINCE_BASELINE}: {drift.cell_change(before, now)} (configuration: x)"
    assert beforeafter.baseline_value(now.model_copy(update={"explanation": [line]})) == role


def test_a_changed_outcome_reads_back_as_the_baselines_outcome(predicted: Report) -> None:
    cell = cell_at(predicted, ("vpc2-pod", "pod-ip"))
    before = cell.model_copy(update={"observed": Observed(outcome="ok", client_address_role="client-node")})
    now = cell.model_copy(update={"observed": Observed(outcome="refused")})
    line = f"{drift.SINCE_BASELINE}: {drift.cell_change(before, now)} (configuration: x)"
    assert beforeafter.baseline_value(now.model_copy(update={"explanation": [line]})) == "ok"
