"""JUnit XML: valid, a suite per phase with counts, a case per cell; drift fails, predicted skips, tolerated passes."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from peerprobe.compare import TOLERATED
from peerprobe.report import junit
from peerprobe.report.document import Report
from tests.report.conftest import DRIFT_AT, TOLERATED_AT, cell_at


def parsed(report: Report) -> ET.Element:
    return ET.fromstring(junit.render(report).encode())


def case(root: ET.Element, classname: str, name: str) -> ET.Element:
    found = root.find(f".//testcase[@classname='{classname}'][@name='{name}']")
    assert found is not None, f"no testcase {classname} {name}"
    return found


def test_the_output_is_xml_with_testsuites_at_the_root(observed: Report) -> None:
    assert parsed(observed).tag == "testsuites"


def test_one_testsuite_per_phase_named_after_it(observed: Report) -> None:
    names = [suite.get("name") for suite in parsed(observed).iter("testsuite")]
    assert names == [phase.name for phase in observed.phases]


def test_suite_counts_match_its_cases(observed: Report) -> None:
    for suite in parsed(observed).iter("testsuite"):
        cases = suite.findall("testcase")
        assert suite.get("tests") == str(len(cases))
        assert suite.get("failures") == str(sum(1 for c in cases if c.find("failure") is not None))


def test_root_counts_add_up(observed: Report) -> None:
    root = parsed(observed)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("105", "1", "0")


def test_one_testcase_per_cell_with_unique_names(observed: Report) -> None:
    cases = list(parsed(observed).iter("testcase"))
    assert len(cases) == 105 and len({(c.get("classname"), c.get("name")) for c in cases}) == 105


def test_testcase_names_phase_vantage_target_node_and_address(observed: Report) -> None:
    case(parsed(observed), "peerprobe.exclude-snat.vpc2-ec2", "node-port@ip-172-16-128-16 172.16.128.16:32227")


def test_a_drifted_cell_fails_with_its_headline_as_message(observed: Report) -> None:
    failure = case(parsed(observed), "peerprobe.baseline.vpc2-pod", "pod-ip 172.16.96.18:8080").find("failure")
    assert failure is not None and failure.get("message") == cell_at(observed, DRIFT_AT).explanation[0]


def test_a_failure_text_has_every_reason_and_expected_versus_observed(observed: Report) -> None:
    failure = case(parsed(observed), "peerprobe.baseline.vpc2-pod", "pod-ip 172.16.96.18:8080").find("failure")
    assert failure is not None and failure.text is not None
    lines = failure.text.splitlines()
    assert lines[: len(cell_at(observed, DRIFT_AT).explanation)] == cell_at(observed, DRIFT_AT).explanation
    assert lines[-2:] == ["expected: ok, client-node", "observed: ok from 172.16.96.99 (client-pod)"]


def tolerated_case(report: Report) -> ET.Element:
    return case(parsed(report), "peerprobe.baseline.vpc1-pod", f"internal-nlb {cell_at(report, TOLERATED_AT).address}")


def test_a_tolerated_timeout_passes_with_a_note(observed: Report) -> None:
    tolerated = tolerated_case(observed)
    note = tolerated.find("system-out")
    assert tolerated.find("failure") is None and note is not None and TOLERATED in (note.text or "")


def test_a_tolerated_timeout_carries_a_verdict_property(observed: Report) -> None:
    prop = tolerated_case(observed).find("properties/property[@name='verdict']")
    assert prop is not None and prop.get("value") == "tolerated"


def test_the_suite_counts_its_tolerated_timeouts(observed: Report) -> None:
    root = parsed(observed)
    values = [root.find(f"testsuite[@name='{p.name}']/properties/property[@name='tolerated']") for p in observed.phases]
    assert [v.get("value") if v is not None else None for v in values] == ["1", "0", "0"]


def test_a_matching_cell_is_a_bare_passing_case(observed: Report) -> None:
    assert len(case(parsed(observed), "peerprobe.baseline.vpc1-pod", "pod-ip 172.16.96.18:8080")) == 0


def test_a_predicted_cell_is_skipped(predicted: Report) -> None:
    skipped = case(parsed(predicted), "peerprobe.baseline.vpc1-pod", "pod-ip 172.16.96.18:8080").find("skipped")
    assert skipped is not None and skipped.get("message") == "predicted only"


def test_the_suite_carries_the_snat_settings(observed: Report) -> None:
    prop = parsed(observed).find("testsuite[@name='external-snat']/properties/property[@name='snat']")
    assert prop is not None and prop.get("value") == "vpc1: EXTERNALSNAT=true; vpc2: EXTERNALSNAT=true"


def test_write_leaves_only_the_file(observed: Report, tmp_path: Path) -> None:
    path = junit.write(observed, tmp_path / "junit.xml")
    assert ET.parse(path).getroot().get("tests") == "105" and list(path.parent.iterdir()) == [path]
