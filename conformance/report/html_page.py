"""The compatibility report as one self-contained HTML file (inline CSS and JS; no external resource at all).

The page: a summary, the matrix (rows: checks grouped by area; columns: version x device x dtype x attention, or
one per version), the drift catalog, the explained differences and a `<details>` entry per cell that is neither
pass nor explained. Filters (area, outcome, "only rows that differ across versions", text search on the check
id) act on every element of class `filterable` through its data attributes: `data-check`, `data-area`,
`data-outcomes` (space-separated) and `data-differs` ("1" or "0").
"""

from html import escape

from ..records import OUTCOMES
from .matrix import catalog
from .text import (CHANGED, cell_text, change_example, column_label, explained_differences, ratio_text, summary_text,
                   unfinished_runs, version_counts, version_note, worst)

CSS = """
:root { --pass: #d8f0d8; --explained: #d6e8fa; --fail: #f8c8c8; --error: #f6d2a8; --not_applicable: #ececec;
        --skipped: #f4f4f4; --missing: #fff3b0; --border: #ccc; font-family: system-ui, sans-serif; font-size: 14px; }
body { margin: 0 1.5em 2em; color: #222; }
h1 { margin: .6em 0 .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid var(--border); }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--border); padding: 2px 6px; text-align: left; vertical-align: top; }
.summary td:nth-child(n+3) { text-align: right; }
#filters { position: sticky; top: 0; z-index: 5; background: #fafafa; border-bottom: 1px solid var(--border);
           padding: .4em 0; display: flex; flex-wrap: wrap; gap: .4em 1.2em; align-items: center; }
#filters fieldset { border: 1px solid var(--border); padding: 0 .5em .2em; margin: 0; }
#filters label { white-space: nowrap; margin-right: .4em; }
#shown { font-weight: bold; }
.scroll { overflow: auto; max-height: 80vh; border: 1px solid var(--border); }
#matrix { font-size: 12px; }
#matrix thead th { position: sticky; top: 0; z-index: 3; background: #eee; white-space: nowrap; }
#matrix th.check { position: sticky; left: 0; z-index: 2; background: #fff; white-space: nowrap; font-weight: normal; }
#matrix thead th.check { z-index: 4; background: #eee; }
#matrix tr.area-row th { background: #e4e4f4; text-align: left; position: sticky; left: 0; }
#matrix td { white-space: nowrap; }
td.o-pass { background: var(--pass); } td.o-explained { background: var(--explained); }
td.o-fail { background: var(--fail); font-weight: bold; } td.o-error { background: var(--error); font-weight: bold; }
td.o-not_applicable { background: var(--not_applicable); color: #666; }
td.o-skipped { background: var(--skipped); color: #888; }
td.o-missing { background: var(--missing); }
td.changed { box-shadow: inset 0 0 0 2px #7b2ff7; }
.compact { display: none; }
body.by-version .compact { display: table-cell; }
body.by-version .full { display: none; }
[hidden] { display: none !important; }
pre { background: #f6f6f6; border: 1px solid var(--border); padding: .5em; overflow: auto; max-height: 30em;
      white-space: pre-wrap; word-break: break-all; }
details { margin: .3em 0; } summary { cursor: pointer; }
details.problem > summary { font-family: monospace; }
.legend span { padding: 0 .4em; margin-right: .3em; border: 1px solid var(--border); }
"""

JS = """
(function () {
  "use strict";
  function all(selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); }
  function checked(name) {
    return all('input[name="' + name + '"]:checked').map(function (input) { return input.value; });
  }
  var rows = all("tr.check-row");
  function apply() {
    var areas = checked("area"), outcomes = checked("outcome");
    var onlyDiffers = document.getElementById("only-differs").checked;
    var text = document.getElementById("search").value.trim().toLowerCase();
    all(".filterable").forEach(function (el) {
      var visible = areas.indexOf(el.dataset.area) >= 0 &&
        el.dataset.outcomes.split(" ").some(function (o) { return outcomes.indexOf(o) >= 0; }) &&
        (!onlyDiffers || el.dataset.differs === "1") &&
        el.dataset.check.toLowerCase().indexOf(text) >= 0;
      el.hidden = !visible;
    });
    all("tr.area-row").forEach(function (areaRow) {
      areaRow.hidden = !rows.some(function (r) { return r.dataset.area === areaRow.dataset.area && !r.hidden; });
    });
    var shown = rows.filter(function (r) { return !r.hidden; }).length;
    document.getElementById("shown").textContent = shown + " of " + rows.length + " checks shown";
  }
  function columns() {
    document.body.classList.toggle("by-version", document.getElementById("columns").value === "versions");
  }
  function openTarget() {
    var target = location.hash && document.getElementById(location.hash.slice(1));
    if (target && target.tagName === "DETAILS") { target.open = true; }
  }
  all("#filters input").forEach(function (input) { input.addEventListener("input", apply); });
  all("#filters input[type=checkbox]").forEach(function (input) { input.addEventListener("change", apply); });
  document.getElementById("columns").addEventListener("change", columns);
  window.addEventListener("hashchange", openTarget);
  apply(); columns(); openTarget();
})();
"""


def _e(text):
    """`text` as HTML-escaped text (quotes too, so it may go into an attribute)."""
    return escape(str(text), quote=True)


def _attrs(check, area, outcomes, differs):
    """The data attributes the filters read: `data-check`, `data-area`, `data-outcomes`, `data-differs`."""
    return (f'data-check="{_e(check)}" data-area="{_e(area)}" data-outcomes="{_e(" ".join(sorted(set(outcomes))))}" '
            f'data-differs="{1 if differs else 0}"')


def _cell(cell, anchors):
    """One matrix cell: coloured by outcome, with the ratio, the change mark and a tooltip; problems link to
    their details entry."""
    if cell is None:
        return '<td class="full none">—</td>'
    record = cell.record or {}
    title = [f"{cell.column.version} {cell.column.target}: {cell.outcome}"]
    if ratio_text(cell.ratio):
        title.append(f"error/tolerance {ratio_text(cell.ratio)}")
    if record.get("examples") is not None:
        title.append(f"{record['examples']} examples")
    if cell.previous:
        title.append(f"was {cell.previous[1]} in {cell.previous[0]}")
    if record.get("message") and cell.outcome in ("not_applicable", "skipped"):
        title.append(record["message"])
    text = _e(cell_text(cell))
    if id(cell) in anchors:
        text = f'<a href="#{anchors[id(cell)]}">{text}</a>'
    changed = " changed" if cell.changed else ""
    return (f'<td class="full o-{_e(cell.outcome)}{changed}" data-outcome="{_e(cell.outcome)}" '
            f'title="{_e("; ".join(title))}">{text}</td>')


def _summary(matrix):
    """The summary section: counts, outcome counts per version, a line per version and unfinished run, legend."""
    rows = []
    for impl, version in matrix.versions:
        counts = version_counts(matrix, impl, version)
        rows.append(f"<tr><td>{_e(impl)}</td><td>{_e(version)}</td>"
                    + "".join(f"<td>{counts[o] or ''}</td>" for o in OUTCOMES) + "</tr>")
    envs = "".join(f"<li>{_e(impl)} {_e(version)}: {_e(version_note(matrix, impl, version))}</li>"
                   for impl, version in matrix.versions)
    envs += "".join(f"<li>{_e(line)}</li>" for line in unfinished_runs(matrix))
    legend = "".join(f'<span class="o-{o}" style="background: var(--{o})">{o}</span>' for o in OUTCOMES)
    return (f'<section id="summary"><h2>Summary</h2><p>{len(matrix.checks)} checks, {len(matrix.versions)} '
            f'version(s), {len(matrix.columns)} columns, {len(matrix.runs)} run(s).</p>'
            '<table class="summary"><thead><tr><th>implementation</th><th>version</th>'
            + "".join(f"<th>{o}</th>" for o in OUTCOMES) + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<ul>{envs}</ul><p class=\"legend\">{legend} Each cell: outcome and the largest error/tolerance ratio "
            f"(over 1 fails); {CHANGED} and a purple frame: the outcome differs from the same target in the previous "
            "version; — not run on that target.</p></section>")


def _filters(matrix):
    """The sticky filter bar: area and outcome checkboxes (outcomes present only), "only rows that differ", a
    search on the check id and the column layout (every target, or one per version)."""
    areas = "".join(f'<label><input type="checkbox" name="area" value="{_e(a)}" checked> {_e(a)}</label>'
                    for a in matrix.areas)
    present = {cell.outcome for cell in matrix.cells.values()}
    outcomes = "".join(f'<label><input type="checkbox" name="outcome" value="{o}" checked> {o}</label>'
                       for o in OUTCOMES if o in present)
    return ('<nav id="filters">'
            f'<fieldset id="filter-area"><legend>area</legend>{areas}</fieldset>'
            f'<fieldset id="filter-outcome"><legend>rows with outcome</legend>{outcomes}</fieldset>'
            '<label><input type="checkbox" id="only-differs"> only rows that differ across versions</label>'
            '<label>check <input type="search" id="search" placeholder="check id contains"></label>'
            '<label>columns <select id="columns"><option value="targets">every target</option>'
            '<option value="versions">one per version</option></select></label>'
            '<span id="shown"></span></nav>')


def _matrix(matrix, anchors):
    """The matrix section: a row per check under a row per area, a cell per (version, target) and a compact
    summary cell per version (shown instead when the columns select "one per version")."""
    head = ['<th class="check">check</th>']
    head += [f'<th class="full">{_e(column_label(c, matrix)).replace(" ", "<br>")}</th>' for c in matrix.columns]
    single = len({impl for impl, _ in matrix.versions}) == 1
    head += [f'<th class="compact">{_e(version if single else f"{impl} {version}")}</th>'
             for impl, version in matrix.versions]
    width = 1 + len(matrix.columns) + len(matrix.versions)
    descriptions = {c.id: c.description for c in catalog().checks}
    body = []
    for area in matrix.areas:
        body.append(f'<tr class="area-row" data-area="{_e(area)}"><th colspan="{width}">{_e(area)}</th></tr>')
        for check in (c for c, a in matrix.checks.items() if a == area):
            cells = matrix.row(check)
            outcomes = [c.outcome for c in cells if c is not None]
            compact = []
            for version in matrix.versions:
                mine = [c for c in cells if c and (c.column.impl, c.column.version) == version]
                compact.append(f'<td class="compact o-{worst(mine) or "none"}">{_e(summary_text(mine))}</td>')
            body.append(f'<tr class="check-row filterable" id="row-{_e(check)}" '
                        f'{_attrs(check, area, outcomes, matrix.differs(check))}>'
                        f'<th class="check" title="{_e(descriptions.get(check, ""))}">{_e(check)}</th>'
                        + "".join(_cell(c, anchors) for c in cells) + "".join(compact) + "</tr>")
    return (f'<section id="matrix-section"><h2>Matrix</h2><div class="scroll"><table id="matrix"><thead><tr>'
            f'{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table></div></section>')


def _drift():
    """The drift catalog section: a table of the behaviour changes (checks linked to their rows), then a
    `<details>` per change with its example."""
    changes = catalog().changes
    if not changes:
        return '<section id="drift"><h2>Drift catalog</h2><p>No behaviour changes recorded.</p></section>'
    rows = "".join(f"<tr><td>{_e(c.id)}</td><td>{_e(c.since)}</td><td>{_e(c.area)}</td><td>{_e(c.title)}</td>"
                   "<td>" + ", ".join(f'<a href="#row-{_e(check)}">{_e(check)}</a>' for check in c.checks)
                   + "</td></tr>" for c in changes)
    entries = []
    for c in changes:
        example = change_example(c)
        pre = f"<pre>{_e(chr(10).join(f'{k}: {v}' for k, v in example.items()))}</pre>" if example else ""
        entries.append(f'<details id="change-{_e(c.id)}"><summary>{_e(c.id)}: {_e(c.title)} (since {_e(c.since)})'
                       f"</summary><p>Before: {_e(c.old)}</p><p>From {_e(c.since)}: {_e(c.new)}</p>{pre}</details>")
    return ('<section id="drift"><h2>Drift catalog</h2><table><thead><tr><th>change</th><th>since</th><th>area</th>'
            f'<th>title</th><th>checks</th></tr></thead><tbody>{rows}</tbody></table>{"".join(entries)}</section>')


def _explained(matrix):
    """The explained differences section (empty when no known difference explained a cell)."""
    items = "".join(f"<li><code>{_e(k.id)}</code> ({_e(check)}; {_e(', '.join(versions))}): {_e(k.description)}</li>"
                    for k, check, versions in explained_differences(matrix))
    return f'<section id="explained"><h2>Explained differences</h2><ul>{items}</ul></section>' if items else ""


def _details(matrix, anchors):
    """The details section: a `<details>` per problem cell (anchored by `anchors`), with its facts, message,
    counterexample and repro command."""
    entries = []
    for cell in matrix.problems():
        r = cell.record or {}
        facts = [f"{cell.column.impl} {cell.column.version}, {cell.column.target}"]
        if r.get("examples") is not None:
            facts.append(f"examples run: {r['examples']}")
        if ratio_text(cell.ratio) and cell.outcome == "fail":
            facts.append(f"error/tolerance: {ratio_text(cell.ratio)}")
        if r.get("tolerance"):
            facts.append(f"tolerance: rtol {r['tolerance']['rtol']:g}, atol {r['tolerance']['atol']:g}")
        if cell.previous:
            facts.append(f"was {cell.previous[1]} in {cell.previous[0]}")
        if cell.outcome == "missing":
            facts.append(f"expected by run {cell.run_id}, never recorded: its worker crashed or was killed")
        body = f"<p>{_e('; '.join(facts))}</p>"
        if r.get("message"):
            body += f'<pre class="message">{_e(r["message"])}</pre>'
        if r.get("counterexample"):
            body += f'<h4>Minimal counterexample</h4><pre class="counterexample">{_e(r["counterexample"])}</pre>'
        if r.get("reproduce"):
            body += f'<h4>Reproduce</h4><pre class="reproduce">{_e(r["reproduce"])}</pre>'
        entries.append(f'<details class="problem filterable o-{_e(cell.outcome)}" id="{anchors[id(cell)]}" '
                       f'{_attrs(cell.check, cell.area, [cell.outcome], matrix.differs(cell.check))}>'
                       f"<summary>{_e(cell.outcome)}: {_e(cell.check)} on {_e(cell.column.version)} "
                       f"{_e(cell.column.target)}</summary>{body}</details>")
    text = "".join(entries) or "<p>Every cell is pass or explained.</p>"
    return f'<section id="details"><h2>Details</h2>{text}</section>'


def html(matrix):
    """The whole report page as a string."""
    anchors = {id(cell): f"d-{i}" for i, cell in enumerate(matrix.problems())}
    if not matrix.columns:
        content = "<p>No records found.</p>"
    else:
        content = (_summary(matrix) + _filters(matrix) + _matrix(matrix, anchors) + _drift() + _explained(matrix)
                   + _details(matrix, anchors) + f"<script>{JS}</script>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,"><title>Compatibility report</title>'
            f"<style>{CSS}</style></head><body><h1>Compatibility report</h1>{content}</body></html>\n")
