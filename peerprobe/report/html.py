"""The HTML report: one self-contained page (inline CSS, SVG and a few lines of JS; nothing fetched when opened)
with the topology drawn, each phase's matrix coloured by verdict, and every cell's path hop by hop."""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from pathlib import Path

from peerprobe.config import ExperimentConfig
from peerprobe.model import places
from peerprobe.model.path import CellPath, Hop
from peerprobe.report import _diagrams, _graph, _html_assets
from peerprobe.report._observed import Row, disagreements, side_by_side, translation_text
from peerprobe.report._paths import Traced, trace_report
from peerprobe.report.document import (
    PhaseReport,
    Report,
    Tally,
    expected_text,
    observed_text,
    status,
    target_label,
    why,
)
from peerprobe.vocabulary import Cell, Translation

STATUS_TEXT = {"match": "✓ match", "drift": "✗ drift", "tolerated": "≈ tolerated", "predicted": "◦ predicted"}
GLYPH = {"match": "✓", "drift": "✗", "tolerated": "≈", "predicted": "◦"}


def e(text: object) -> str:
    """Every piece of text from outside (names, addresses, explanations) goes through here."""
    return html.escape(str(text), quote=True)


def render(report: Report, config: ExperimentConfig | None = None, *, draw: bool = True) -> str:
    """The page for a report; ``config`` is what the model traced the paths with (default: the workshop's).
    Where the backend recorded them (the lab), each cell shows the kernel's translations beside the model's hops."""
    traced = trace_report(report, config or ExperimentConfig())
    paths = [t.path for phase in traced for t in phase if t.path is not None]
    link = places.link((config or ExperimentConfig()).peering.via)
    sources = [
        _diagrams.topology_dot(report.topology, link=link),
        *(_diagrams.path_dot(p, report.topology) for p in paths),
    ]
    drawn = _graph.render(sources) if draw else _graph.Drawn(problem="drawing was turned off")
    svgs = iter(drawn.svgs[1:])
    body = [
        _header(report, drawn),
        '<div class="layout">',
        _topology_section(drawn.svgs[0] if drawn.svgs else "", report),
        '<main class="phases">',
        *(
            _phase_section(index, phase, row, report, svgs)
            for index, (phase, row) in enumerate(zip(report.phases, traced, strict=True))
        ),
        _claims_section(report),
        "</main></div>",
    ]
    return _page(f"peerprobe · {report.experiment}", "\n".join(body))


def write(report: Report, path: str | Path, config: ExperimentConfig | None = None) -> Path:
    """Write the page through the one report writer (atomic beside a regular file; a symlink or a device is
    written through, never replaced: design.md)."""
    from peerprobe import outputs

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_text(target, render(report.summarised(), config))
    return target


def _page(title: str, body: str) -> str:
    style, script = _html_assets.STYLE, _html_assets.SCRIPT
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        # Nothing may be fetched: the page is read offline, and a report must not call home.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "script-src 'unsafe-inline'; img-src data:\">\n"
        f"<title>{e(title)}</title>\n<style>\n{style}</style>\n</head>\n<body>\n{body}\n"
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )


# --- header and topology ----------------------------------------------------------------------------------------


def _header(report: Report, drawn: _graph.Drawn) -> str:
    tally = report.tally()
    chips = [
        ("match", tally.match - tally.tolerated),
        ("tolerated", tally.tolerated),
        ("drift", tally.drift),
        ("predicted", tally.predicted),
    ]
    counts = "".join(
        f'<span class="chip {name}">{e(STATUS_TEXT[name])} {count}</span>' for name, count in chips if count
    )
    run = f" · run <code>{e(report.run_id)}</code>" if report.run_id else ""
    notice = (
        (f'<p class="notice">No drawings in this report: {e(drawn.problem)}. Each path is shown as a list of hops.</p>')
        if drawn.problem
        else ""
    )
    return (
        f'<header class="top"><h1>peerprobe <span class="experiment">{e(report.experiment)}</span></h1>'
        f'<p class="meta">backend <b>{e(report.backend)}</b>{run} · {e(tally.line())}</p>'
        f'<p class="counts">{counts}</p>{_config_diff(report)}{notice}'
        '<p class="hint">Click a cell of a matrix to see the way its packet takes, hop by hop: the addresses at each '
        "hop and what rewrote them; its places light up on the topology. ✓ match · ✗ drift · ≈ tolerated timeout · "
        "◦ predicted; a paler cell: the model expects no connection; "
        '<span class="wbadge inline">✗ workshop</span> a workshop claim that does not hold.</p></header>'
    )


def _config_diff(report: Report) -> str:
    if report.config_diff is None:
        return ""
    if not report.config_diff:
        return '<p class="meta">configuration unchanged since the baseline</p>'
    items = "".join(f"<li>{e(entry.get('text', entry))}</li>" for entry in report.config_diff)
    return f'<div class="diff"><b>changed since the baseline</b><ul>{items}</ul></div>'


def _topology_section(svg: str, report: Report) -> str:
    figure = f'<div class="diagram" id="topology-diagram">{svg}</div>' if svg else _topology_list(report)
    return f'<aside class="topology"><h2>Topology</h2>{figure}</aside>'


def _topology_list(report: Report) -> str:
    """Without Graphviz: the topology's places as a list."""
    top = report.topology
    lines = [
        f"{key.upper()} {side.cidr}: " + ", ".join(f"{n.name} {n.ip}" for n in side.nodes)
        for key, side in (("vpc1", top.vpc1), ("vpc2", top.vpc2))
    ]
    lines.append(
        f"EC2 host {top.peer_host.private_ip}" + (f" / {top.peer_host.public_ip}" if top.peer_host.public_ip else "")
    )
    lines += [f"{kind}: {name}" for kind, name in top.vpc1.load_balancers.items()]
    if top.outside:
        lines.append(f"outside client {top.outside}")
    return '<ul class="plain">' + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>"


# --- a phase: its matrix and its cells' paths ---------------------------------------------------------------------


def _phase_section(index: int, phase: PhaseReport, traced: list[Traced], report: Report, svgs: Iterator[str]) -> str:
    counts = Tally.of(phase.cells).line()
    articles = [
        _cell_article(_cell_id(index, i), cell, t, report, svgs)
        for i, (cell, t) in enumerate(zip(phase.cells, traced, strict=True))
    ]
    return (
        f'<section class="phase" id="phase-{index}"><h2>phase <span class="name">{e(phase.name)}</span></h2>'
        f'<p class="meta">aws-node SNAT as read back: {e(phase.snat_settings())} · {e(counts)}</p>'
        f"{_matrix(index, phase)}"
        f'<div class="paths"><p class="empty">Choose a cell above to see its path.</p>{"".join(articles)}</div>'
        "</section>"
    )


def _cell_id(phase_index: int, cell_index: int) -> str:
    return f"c{phase_index}-{cell_index}"


def _matrix(index: int, phase: PhaseReport) -> str:
    vantages = list(dict.fromkeys(cell.vantage for cell in phase.cells))
    targets = list(dict.fromkeys(target_label(cell) for cell in phase.cells))
    where = {(cell.vantage, target_label(cell)): (i, cell) for i, cell in enumerate(phase.cells)}
    head = "".join(f'<th scope="col">{_target_head(t)}</th>' for t in targets)
    rows = []
    for vantage in vantages:
        cells = [_matrix_cell(index, where.get((vantage, t))) for t in targets]
        rows.append(f'<tr><th scope="row">{e(vantage)}</th>{"".join(cells)}</tr>')
    return (
        f'<div class="matrix-wrap"><table class="matrix"><thead><tr><th>vantage \\ target</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _target_head(label: str) -> str:
    target, _, node = label.partition("@")
    return e(target) + (f'<br><span class="node">{e(node)}</span>' if node else "")


def _matrix_cell(phase_index: int, found: tuple[int, Cell] | None) -> str:
    if found is None:
        return '<td class="none" title="not probed: the topology has no such cell">—</td>'
    cell_index, cell = found
    kind = status(cell)
    claim = cell.workshop is not None and not cell.workshop.agrees
    badge = '<span class="wbadge" title="a workshop claim that does not hold">✗ workshop</span>' if claim else ""
    title = f"{cell.vantage} → {target_label(cell)}: {STATUS_TEXT[kind]}; expected {expected_text(cell)}"
    blocked = " blocked" if cell.expected.outcome != "ok" else ""
    return (
        f'<td class="{kind}{blocked}"><a href="#{_cell_id(phase_index, cell_index)}" title="{e(title)}">'
        f'<span class="st">{GLYPH[kind]}</span> <span class="what">{e(_short(cell))}</span>{badge}</a>'
        "</td>"
    )


def _short(cell: Cell) -> str:
    """What the cell shows in the matrix: the observed role or outcome, else the expected one."""
    seen = cell.observed
    if seen is not None:
        return seen.client_address_role or seen.outcome if seen.outcome == "ok" else seen.outcome
    return cell.expected.client_address_role or cell.expected.outcome


def _cell_article(cell_id: str, cell: Cell, traced: Traced, report: Report, svgs: Iterator[str]) -> str:
    path = traced.path
    seen = cell.observed.translations if cell.observed else None
    place_ids = " ".join(_diagrams.dom_id(hop.at) for hop in path.hops) if path else ""
    drawing = _path_drawing(path, svgs)
    return (
        f'<article class="path" id="{cell_id}" data-places="{e(place_ids)}">'
        f"<h3>{e(cell.vantage)} → {e(target_label(cell))} <code>{e(cell.address)}</code> "
        f'<span class="chip {status(cell)}">{e(STATUS_TEXT[status(cell)])}</span></h3>'
        f"{_facts_table(cell)}{_workshop(cell)}{_path_notes(traced)}{drawing}"
        f"{_observed_head(cell, report, path, seen)}{_hop_table(path, report, seen) if path else ''}"
        f"{_unplaced(path, seen)}{_explanation(cell)}</article>"
    )


def _facts_table(cell: Cell) -> str:
    rows = [("expected", expected_text(cell)), ("observed", observed_text(cell, detail=True)), ("why", why(cell))]
    drift = [line for line in cell.explanation if line.startswith("drift: ")]
    rows += [("drift", line.removeprefix("drift: ")) for line in drift]
    return '<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows) + "</dl>"


def _workshop(cell: Cell) -> str:
    claim = cell.workshop
    if claim is None:
        return ""
    if claim.agrees:
        return f'<p class="workshop ok">workshop {e(claim.ref)} says “{e(claim.claimed)}”: it holds.</p>'
    return (
        f'<p class="workshop wrong"><b>workshop {e(claim.ref)} claims “{e(claim.claimed)}”: this does not hold.'
        f"</b> The model expects {e(expected_text(cell))}: {e(why(cell))}</p>"
    )


def _path_notes(traced: Traced) -> str:
    if traced.path is None:
        return f'<p class="notice">No path: {e(traced.problem)}</p>'
    if traced.differs:
        return (
            '<p class="notice">This path is traced from the configuration this report was written with; the '
            "cell's expectation came from another one (a drift check predicts from the live configuration).</p>"
        )
    return ""


def _path_drawing(path: CellPath | None, svgs: Iterator[str]) -> str:
    if path is None:
        return ""
    svg = next(svgs, "")
    return f'<div class="pathsvg">{svg}</div>' if svg else ""


def _hop_table(path: CellPath, report: Report, seen: Sequence[Translation] | None) -> str:
    """The model's hops; with the kernel's translations, a column of them beside, row by row."""
    if seen is None:
        rows = "".join(_hop_row(index, hop, report) for index, hop in enumerate(path.hops))
        return f'<table class="hops"><thead><tr>{HOP_HEAD}</tr></thead><tbody>{rows}</tbody></table>'
    body, number = [], 0
    for row in side_by_side(path, seen):
        if row.hop is None:
            body.append(_extra_row(row.seen[0], report))
            continue
        body.append(_hop_row(number, row.hop, report, observed=_observed_cell(row)))
        number += 1
    return (
        f'<table class="hops sidebyside"><thead><tr>{HOP_HEAD}<th>observed (conntrack)</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


HOP_HEAD = "<th>#</th><th>where</th><th>source</th><th>destination</th><th>what happens there (the model)</th>"


def _hop_row(index: int, hop: Hop, report: Report, *, observed: tuple[str, str] | None = None) -> str:
    title, address = _diagrams.place_title(hop.at, report.topology)
    where = e(title) + (f'<br><span class="addr">{e(address)}</span>' if address else "")
    changes = [f'<li class="rewrite">{e(_diagrams.rewrite_text(r, between=" — by "))}</li>' for r in hop.rewrites]
    changes += [f'<li class="kept">kept by {e(name)}</li>' for name in hop.kept_by]
    changes += [f'<li class="blocked">stopped here: {e(hop.blocked_by)}</li>'] if hop.blocked_by else []
    changes += [f"<li>{e(event)}</li>" for event in hop.events]
    classes = ["rewritten"] if hop.rewrites else (["stopped"] if hop.blocked_by else [])
    classes += [observed[0]] if observed and observed[0] else []
    cls = f' class="{" ".join(classes)}"' if classes else ""
    seen = f"<td>{observed[1]}</td>" if observed else ""
    return (
        f"<tr{cls}><td>{index + 1}</td><td>{where}</td><td><code>{e(hop.src)}</code></td>"
        f"<td><code>{e(hop.dst)}</code></td><td><ul>{''.join(changes)}</ul></td>{seen}</tr>"
    )


def _observed_cell(row: Row) -> tuple[str, str]:
    """The row's class and the observed column: the entries at the hop's place, then how they compare."""
    entries = "".join(_entry(entry) for entry in row.seen)
    assert row.hop is not None
    if row.agrees is None:
        return "", entries + '<p class="ct none">no entry here</p>'
    if row.agrees:
        return "", entries + '<p class="ct agree">✓ leaves with the model\'s addresses</p>'
    src, dst = row.left_with or ("", "")
    return "disagree", entries + (
        f'<p class="ct disagree">✗ the kernel: {e(src)} → {e(dst)}; the model: {e(row.hop.src)} → {e(row.hop.dst)}</p>'
    )


def _extra_row(entry: Translation, report: Report) -> str:
    title, address = _diagrams.place_title(entry.at, report.topology)
    where = e(title) + (f'<br><span class="addr">{e(address)}</span>' if address else "")
    return (
        f'<tr class="extra"><td></td><td>{where}</td><td colspan="3" class="addr">no place of the model\'s path'
        f"</td><td>{_entry(entry)}</td></tr>"
    )


def _entry(entry: Translation) -> str:
    cls = "ct nat" if entry.snat or entry.dnat or entry.relayed else "ct"
    return f'<p class="{cls}">{e(translation_text(entry))}</p>'


def _observed_head(cell: Cell, report: Report, path: CellPath | None, seen: Sequence[Translation] | None) -> str:
    """One line on the kernel's side of the cell: not collected, nothing found, or how it compares."""
    if cell.observed is None:
        return ""
    if seen is None:
        where = f"on {report.backend}" if report.backend != "lab" else "for this probe"
        return f'<p class="observed none">observed translations (conntrack): not collected {e(where)}</p>'
    if not seen:
        return '<p class="observed none">observed translations (conntrack): no entry found for this probe</p>'
    wrong = disagreements(side_by_side(path, seen)) if path else 0
    verdict = (
        f'<b class="disagree">✗ the kernel and the model disagree at {wrong} hop{"s" if wrong > 1 else ""}</b>'
        if wrong
        else "the kernel left every hop it recorded with the model's addresses"
    )
    return f'<p class="observed">observed translations (conntrack, {len(seen)} entries): {verdict}</p>'


def _unplaced(path: CellPath | None, seen: Sequence[Translation] | None) -> str:
    """Without a model path to sit beside, the kernel's entries as a list."""
    if path is not None or not seen:
        return ""
    items = "".join(f"<li>{e(translation_text(entry))}</li>" for entry in seen)
    return f'<div class="observed"><h4>observed translations (conntrack)</h4><ol>{items}</ol></div>'


def _explanation(cell: Cell) -> str:
    items = "".join(f"<li>{e(line)}</li>" for line in cell.explanation)
    return f'<details class="explanation"><summary>the model\'s explanation</summary><ol>{items}</ol></details>'


def _claims_section(report: Report) -> str:
    items = "".join(
        _claim_item(phase.name, cell, _cell_id(pi, ci))
        for pi, phase in enumerate(report.phases)
        for ci, cell in enumerate(phase.cells)
        if cell.workshop and not cell.workshop.agrees
    )
    if not items:
        return ""
    return f'<section class="claims" id="claims"><h2>Workshop claims that do not hold</h2><ul>{items}</ul></section>'


def _claim_item(phase: str, cell: Cell, cell_id: str) -> str:
    assert cell.workshop is not None
    return (
        f'<li><a href="#{cell_id}">[{e(phase)}] {e(cell.vantage)} → {e(target_label(cell))}</a> '
        f"(workshop {e(cell.workshop.ref)}): claims “{e(cell.workshop.claimed)}”, expected "
        f"{e(expected_text(cell))}: {e(why(cell))}</li>"
    )
