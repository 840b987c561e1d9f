"""Metrics for node_exporter's textfile collector: the Prometheus text format, a gauge per judged cell (1 match or
tolerated, 0 drift), the check's time and counts, every sample labelled with its environment."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from peerprobe.report import metrics
from peerprobe.report.document import Report
from tests.report.conftest import DRIFT_AT, TOLERATED_AT

NOW = 1_767_225_600.0


def samples(report: Report, region: str = "cn-northwest-1") -> dict[str, list[Sample]]:
    text = metrics.render(report, region=region, now=NOW)
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def cell_value(found: dict[str, list[Sample]], at: tuple[str, str], phase: str = "baseline") -> float:
    [value] = [
        s.value
        for s in found["peerprobe_cell_match"]
        if (s.labels["phase"], s.labels["vantage"], s.labels["target"]) == (phase, *at)
    ]
    return value


def test_one_sample_per_cell_with_its_labels(observed: Report) -> None:
    cells = samples(observed)["peerprobe_cell_match"]
    assert len(cells) == 105
    assert set(cells[0].labels) == {"experiment", "backend", "region", "phase", "vantage", "target", "target_node"}
    assert len({tuple(sorted(s.labels.items())) for s in cells}) == 105


def test_a_drifted_cell_is_0_and_a_tolerated_timeout_1(observed: Report) -> None:
    found = samples(observed)
    assert cell_value(found, DRIFT_AT) == 0 and cell_value(found, TOLERATED_AT) == 1
    assert sum(s.value for s in found["peerprobe_cell_match"]) == 104


def test_node_port_cells_name_their_node(observed: Report) -> None:
    cells = samples(observed)["peerprobe_cell_match"]
    nodes = {s.labels["target_node"] for s in cells if s.labels["target"] == "node-port"}
    assert len(nodes) == 3 and "" not in nodes


def test_counts_and_time_of_the_check(observed: Report) -> None:
    found = samples(observed)
    counts = {name: found[name][0].value for name in metrics.COUNTS}
    assert counts == {
        "peerprobe_check_cells": 105,
        "peerprobe_check_match_cells": 103,
        "peerprobe_check_tolerated_cells": 1,
        "peerprobe_check_drift_cells": 1,
    }
    assert found["peerprobe_check_timestamp_seconds"][0].value == NOW


def test_no_sample_carries_a_timestamp(observed: Report) -> None:
    # node_exporter's textfile collector skips a whole file whose samples have timestamps
    assert all(s.timestamp is None for family in samples(observed).values() for s in family)


def test_prometheus_text_format_not_openmetrics(observed: Report) -> None:
    text = metrics.render(observed, region="r", now=NOW)
    assert "# EOF" not in text and text.endswith("\n") and "# TYPE peerprobe_cell_match gauge" in text


def test_predicted_cells_have_no_gauge(predicted: Report) -> None:
    found = samples(predicted)
    assert found["peerprobe_cell_match"] == [] and found["peerprobe_check_cells"][0].value == 105


def test_two_environments_never_share_a_series(observed: Report) -> None:
    # a fleet writes one file per environment into node_exporter's directory: their series must not collide
    def series(region: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {
            (name, tuple(sorted(s.labels.items()))) for name, found in samples(observed, region).items() for s in found
        }

    assert not series("eu-west-1") & series("us-east-1")


def test_label_values_are_escaped(observed: Report) -> None:
    odd = 'we"ird\\name\nline'
    found = samples(observed.model_copy(update={"experiment": odd}))
    assert {s.labels["experiment"] for s in found["peerprobe_cell_match"]} == {odd}


def test_baseline_changes_only_when_the_report_has_a_baseline(observed: Report) -> None:
    assert "peerprobe_check_baseline_changes" not in samples(observed)
    diffed = observed.model_copy(update={"config_diff": [{"text": "vpc1 EXTERNALSNAT"}, {"text": "x"}]})
    assert samples(diffed)["peerprobe_check_baseline_changes"][0].value == 2
