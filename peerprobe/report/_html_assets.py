"""The HTML report's inline style and script (kept in Python so the package needs no data files)."""

from __future__ import annotations

STYLE = """
:root { --match: #15803d; --match-bg: #dcfce7; --drift: #b91c1c; --drift-bg: #fee2e2; --tol: #a16207;
  --tol-bg: #fef3c7; --pred: #475569; --pred-bg: #e2e8f0; --ink: #0f172a; --muted: #64748b; --line: #e2e8f0;
  --accent: #2563eb; --hl: #f97316; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--ink); background: #f8fafc; }
code { font: 12.5px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 0 0 8px; }
header.top { padding: 16px 24px 10px; background: #fff; border-bottom: 1px solid var(--line); }
.experiment { color: var(--accent); }
.meta { color: var(--muted); margin: 2px 0; }
.hint { color: var(--muted); margin: 6px 0 0; font-size: 13px; }
.notice { background: #fff7ed; border: 1px solid #fdba74; border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.diff { background: #fef2f2; border: 1px solid #fca5a5; border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.diff ul { margin: 4px 0 0; padding-left: 20px; }
.chip { display: inline-block; border-radius: 999px; padding: 1px 10px; margin-right: 6px; font-size: 12.5px;
  font-weight: 600; white-space: nowrap; }
.chip.match { background: var(--match-bg); color: var(--match); }
.chip.drift { background: var(--drift-bg); color: var(--drift); }
.chip.tolerated { background: var(--tol-bg); color: var(--tol); }
.chip.predicted { background: #dbeafe; color: #1e3a8a; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; padding: 16px 24px; }
@media (min-width: 1400px) {
  .layout { grid-template-columns: minmax(0, 3fr) minmax(0, 7fr); align-items: start; }
  aside.topology { position: sticky; top: 12px; max-height: calc(100vh - 24px); overflow: auto; }
  .diagram svg { width: 100%; }
}
aside.topology, section.phase, section.claims { background: #fff; border: 1px solid var(--line);
  border-radius: 10px; padding: 14px 16px; }
section.phase, section.claims { margin-bottom: 16px; }
.diagram svg { max-width: 100%; height: auto; display: block; margin: 0 auto; }
.diagram .place.on polygon, .diagram .place.on path, .diagram .place.on ellipse { stroke: var(--hl);
  stroke-width: 3px; }
.diagram .badge circle { fill: var(--hl); }
.diagram .badge text { fill: #fff; font: bold 11px system-ui, sans-serif; }
.diagram .way { fill: none; stroke: var(--hl); stroke-width: 2.5px; stroke-dasharray: 6 3; opacity: 0.85; }
.diagram .way-head { fill: var(--hl); }
h3 code { word-break: break-all; font-weight: 400; color: var(--muted); }
.matrix-wrap { overflow-x: auto; }
table.matrix { border-collapse: separate; border-spacing: 3px; width: 100%; }
table.matrix th { font-size: 12px; font-weight: 600; color: var(--muted); text-align: center; padding: 2px 4px;
  vertical-align: bottom; }
table.matrix th .node { font-weight: 400; font-size: 11px; }
table.matrix tbody th { text-align: left; white-space: nowrap; color: var(--ink); vertical-align: middle; }
table.matrix td { border-radius: 6px; padding: 0; text-align: center; min-width: 72px; }
table.matrix td a { display: block; padding: 6px 4px; color: inherit; text-decoration: none; border-radius: 6px;
  border: 2px solid transparent; }
table.matrix td a:hover, table.matrix td a:focus { border-color: var(--ink); outline: none; }
table.matrix td.sel a { border-color: var(--hl); }
table.matrix td .st { font-weight: 700; }
table.matrix td .what { font-size: 12px; }
table.matrix td.match { background: var(--match-bg); color: var(--match); }
table.matrix td.drift { background: var(--drift-bg); color: var(--drift); }
table.matrix td.tolerated { background: var(--tol-bg); color: var(--tol); }
table.matrix td.predicted { background: #dbeafe; color: #1e3a8a; }
table.matrix td.predicted.blocked { background: var(--pred-bg); color: var(--pred); }
table.matrix td.match.blocked { background: #ecfdf5; }
table.matrix td.none { color: #cbd5e1; background: #f8fafc; }
.wbadge { display: block; width: max-content; margin: 3px auto 0; font-size: 10.5px; font-weight: 700;
  color: #fff; background: #7c3aed; border-radius: 4px; padding: 0 5px; white-space: nowrap; }
.paths { margin-top: 12px; }
.paths .empty { color: var(--muted); margin: 4px 0; }
.paths:has(article.path:target) .empty { display: none; }
article.path { display: none; border-top: 1px solid var(--line); padding-top: 12px; }
article.path:target { display: block; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.workshop { border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.workshop.wrong { background: #f5f3ff; border: 1px solid #a78bfa; }
.workshop.ok { background: #f8fafc; border: 1px solid var(--line); color: var(--muted); }
.pathsvg { overflow-x: auto; margin: 8px 0; }
.pathsvg svg { max-width: 100%; height: auto; }
table.hops { border-collapse: collapse; width: 100%; font-size: 13px; }
table.hops th { text-align: left; color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line);
  padding: 4px 6px; }
table.hops td { border-bottom: 1px solid var(--line); padding: 4px 6px; vertical-align: top; }
table.hops td ul { margin: 0; padding-left: 16px; }
table.hops tr.rewritten td { background: #fffbeb; }
table.hops tr.stopped td { background: #fef2f2; }
table.hops li.rewrite { font-weight: 600; color: #92400e; }
table.hops li.kept { color: var(--match); }
table.hops li.blocked { font-weight: 600; color: var(--drift); }
.addr { color: var(--muted); font-size: 12px; }
details.explanation { margin-top: 8px; color: var(--muted); }
section.claims li { margin: 4px 0; }
.observed { margin-top: 8px; background: #f0f9ff; border: 1px solid #7dd3fc; border-radius: 6px; padding: 6px 10px; }
.observed h4 { margin: 0 0 4px; font-size: 13px; }
.observed ol { margin: 0; padding-left: 20px; font: 12.5px ui-monospace, Menlo, Consolas, monospace; }
p.observed { margin: 8px 0 4px; padding: 4px 10px; }
p.observed.none { background: #f8fafc; border-color: var(--line); color: var(--muted); }
table.hops p.ct { margin: 0 0 2px; font: 12px ui-monospace, Menlo, Consolas, monospace; }
table.hops p.ct.nat { font-weight: 600; color: #075985; }
table.hops p.ct.agree { color: var(--match); font-family: inherit; }
table.hops p.ct.none { color: var(--muted); font-family: inherit; }
table.hops p.ct.disagree, .observed b.disagree { color: var(--drift); font-weight: 600; font-family: inherit; }
table.hops tr.disagree td { background: #fef2f2; }
table.hops tr.extra td { background: #f8fafc; color: var(--muted); }
ul.plain { padding-left: 18px; }
.hint .wbadge.inline { display: inline-block; margin: 0; }
"""

# Light the selected cell's places on the topology, numbered in path order; the page works without it.
SCRIPT = """
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  function clear() {
    document.querySelectorAll(".diagram .place.on").forEach(function (g) { g.classList.remove("on"); });
    document.querySelectorAll(".diagram .badge").forEach(function (b) { b.remove(); });
    document.querySelectorAll("table.matrix td.sel").forEach(function (td) { td.classList.remove("sel"); });
  }
  function badge(group, number) {
    var box = group.getBBox();
    var mark = document.createElementNS(SVG, "g");
    mark.setAttribute("class", "badge");
    var circle = document.createElementNS(SVG, "circle");
    circle.setAttribute("cx", box.x + 2); circle.setAttribute("cy", box.y + 2); circle.setAttribute("r", 8);
    var text = document.createElementNS(SVG, "text");
    text.setAttribute("x", box.x + 2); text.setAttribute("y", box.y + 6); text.setAttribute("text-anchor", "middle");
    text.textContent = String(number);
    mark.appendChild(circle); mark.appendChild(text); group.appendChild(mark);
  }
  function way(groups) {
    if (groups.length < 2) { return; }
    var root = groups[0].parentNode;
    var points = groups.map(function (g) { var b = g.getBBox(); return [b.x + b.width / 2, b.y + b.height / 2]; });
    var defs = document.createElementNS(SVG, "defs");
    defs.setAttribute("class", "badge");
    defs.innerHTML = '<marker id="way-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" ' +
      'markerHeight="7" orient="auto-start-reverse"><path class="way-head" d="M0,0 L10,5 L0,10 z"/></marker>';
    root.appendChild(defs);
    for (var i = 1; i < points.length; i++) {
      var line = document.createElementNS(SVG, "line");
      line.setAttribute("class", "way badge");
      line.setAttribute("x1", points[i - 1][0]); line.setAttribute("y1", points[i - 1][1]);
      line.setAttribute("x2", points[i][0]); line.setAttribute("y2", points[i][1]);
      line.setAttribute("marker-end", "url(#way-head)");
      root.insertBefore(line, groups[0].parentNode.querySelector(".place"));
    }
  }
  function show() {
    clear();
    var id = decodeURIComponent(location.hash.slice(1));
    var article = id ? document.getElementById(id) : null;
    if (!article || !article.classList.contains("path")) { return; }
    var link = document.querySelector('table.matrix a[href="#' + id + '"]');
    if (link) { link.parentElement.classList.add("sel"); }
    var seen = {}, groups = [];
    (article.getAttribute("data-places") || "").split(" ").forEach(function (place, index) {
      var group = place ? document.getElementById(place) : null;
      if (!group) { return; }
      if (groups[groups.length - 1] !== group) { groups.push(group); }
      if (seen[place]) { return; }
      seen[place] = true;
      group.classList.add("on");
      badge(group, index + 1);
    });
    way(groups);
  }
  window.addEventListener("hashchange", show);
  show();
})();
"""
