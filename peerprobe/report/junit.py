"""JUnit XML for CI: a test suite per phase and a test case per cell; a drifted cell is a failure, a tolerated
timeout a pass marked as tolerated."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from peerprobe import outputs
from peerprobe.compare import TOLERATED
from peerprobe.report.document import PhaseReport, Report, Tally, expected_text, observed_text, status, target_label
from peerprobe.vocabulary import Cell

PREDICTED = "predicted only"


def render(report: Report) -> str:
    root = ET.Element("testsuites", {"name": f"peerprobe {report.experiment}", **_counts(report.tally())})
    for phase in report.phases:
        root.append(_suite(phase))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write(report: Report, path: str | Path) -> Path:
    return outputs.write_text(Path(path), render(report))


def testcase_name(cell: Cell) -> str:
    """``node-port@ip-172-16-96-16 172.16.96.16:32227``: unique within a vantage of a phase."""
    return f"{target_label(cell)} {cell.address}"


def _counts(tally: Tally) -> dict[str, str]:
    counts = {"tests": tally.cells, "failures": tally.drift, "errors": 0, "skipped": tally.predicted}
    return {key: str(value) for key, value in counts.items()}


def _suite(phase: PhaseReport) -> ET.Element:
    suite = ET.Element("testsuite", {"name": phase.name, **_counts(Tally.of(phase.cells))})
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="snat", value=phase.snat_settings())
    # JUnit has no count for a pass with a reservation; CI views show suite properties.
    ET.SubElement(properties, "property", name="tolerated", value=str(Tally.of(phase.cells).tolerated))
    suite.extend(_case(phase.name, cell) for cell in phase.cells)
    return suite


def _case(phase: str, cell: Cell) -> ET.Element:
    case = ET.Element("testcase", classname=f"peerprobe.{phase}.{cell.vantage}", name=testcase_name(cell))
    verdict = status(cell)
    if verdict == "predicted":
        ET.SubElement(case, "skipped", message=PREDICTED)
    elif verdict == "drift":
        _failure(case, cell)
    elif verdict == "tolerated":
        _tolerated(case, cell)
    return case


def _tolerated(case: ET.Element, cell: Cell) -> None:
    """A pass, marked: a `verdict` property (as pytest's record_property writes one per test case) and a note."""
    ET.SubElement(ET.SubElement(case, "properties"), "property", name="verdict", value="tolerated")
    ET.SubElement(case, "system-out").text = f"{TOLERATED}; observed {observed_text(cell, detail=True)}"


def _failure(case: ET.Element, cell: Cell) -> None:
    headline = cell.explanation[0] if cell.explanation else "drift"
    failure = ET.SubElement(case, "failure", message=headline, type="drift")
    seen = [f"expected: {expected_text(cell)}", f"observed: {observed_text(cell, detail=True)}"]
    failure.text = "\n".join([*cell.explanation, *seen])
