"""Graphviz for the HTML report: DOT text in, inline SVG out (Debian's `dot`, one process for every drawing).

Every label is an HTML-like label built from `html.escape`d text, so no outside text reaches DOT's syntax; the
SVG `dot` writes is XML-escaped by Graphviz itself (https://graphviz.org/doc/info/shapes.html#html)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

DOT_SECONDS = 60.0
_SVG_START = re.compile(r"<svg\b")
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Drawn:
    """What `dot` made of each source, in order; ``svgs`` is empty and ``problem`` says why when it could not."""

    svgs: tuple[str, ...] = ()
    problem: str = ""


def dot_executable() -> str | None:
    return shutil.which("dot")


def render(sources: Sequence[str]) -> Drawn:
    """Run `dot -Tsvg` once over every graph (dot lays out each graph of its input in turn)."""
    if not sources:
        return Drawn()
    executable = dot_executable()
    if executable is None:
        return Drawn(problem="Graphviz's dot is not installed (Debian: apt-get install graphviz)")
    try:
        done = subprocess.run(
            [executable, "-Tsvg"],
            input="\n".join(sources),
            capture_output=True,
            text=True,
            timeout=DOT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Drawn(problem=f"dot failed: {error}")
    svgs = split_svgs(done.stdout)
    if done.returncode != 0 or len(svgs) != len(sources):
        log.warning("report.dot_failed", returncode=done.returncode, stderr=done.stderr[-500:])
        return Drawn(problem=f"dot failed (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return Drawn(svgs=tuple(svgs))


def split_svgs(output: str) -> list[str]:
    """The `<svg>…</svg>` documents of dot's output, without their XML prologue and comments."""
    starts = [match.start() for match in _SVG_START.finditer(output)]
    pieces = [output[start : output.find("</svg>", start) + len("</svg>")] for start in starts]
    return [piece for piece in pieces if piece.endswith("</svg>")]


def label(rows: Sequence[tuple[str, str]], *, bold_first: bool = True) -> str:
    """An HTML-like label: one table row per (text, background colour); the text is escaped here."""
    cells = []
    for index, (text, background) in enumerate(rows):
        content = "<br/>".join(html.escape(line) for line in text.split("\n"))
        content = f"<b>{content}</b>" if index == 0 and bold_first else content
        colour = f' bgcolor="{background}"' if background else ""
        cells.append(f'<tr><td{colour} align="center">{content}</td></tr>')
    return '<<table border="0" cellborder="0" cellspacing="0" cellpadding="3">' + "".join(cells) + "</table>>"


def quoted(text: str) -> str:
    """A DOT quoted string (attribute values that are not labels: ids, tooltips)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
