"""The compatibility report as one self-contained HTML file (inline CSS, JS, SVG and JSON; no external resource).

The page: a lead line (checks, versions, newest run, commit, mutation score), a fixed bar of filters and section
links, the summary, the legend, the compare and "what changed" panels, the heat map, the matrix (rows: checks
grouped by area; columns: version x target, or one per version), the drift catalog with its learning-rate curves,
the explained differences, a detail per cell (rendered here for cells that are neither pass nor explained, built by
the script from the data block for the others) and the mutation self-check. Filters act on every element of class
`filterable` through its data attributes `data-check`, `data-area`, `data-outcomes` (space-separated) and
`data-differs` ("1" or "0"). Views: `html_views`; pictures: `svg`; style and script: `html_assets`.
"""

import math
from html import escape

from ..records import OUTCOMES
from .html_assets import CSS, JS
from .html_views import (compare_section, curve_plots, cell_list, data_block, heat_section, legend,
                         mutation_section, report_data)
from .matrix import catalog
from .svg import scale_bounds
from .text import (CHANGED, cell_text, change_example, column_label, explained_differences, newest_run_end,
                   ratio_text, summary_text, time_text, unfinished_runs, version_counts, version_note, worst)


def _e(text):
    """`text` as HTML-escaped text (quotes too, so it may go into an attribute)."""
    return escape(str(text), quote=True)


def _attrs(check, area, outcomes, differs):
    """The data attributes the filters read: `data-check`, `data-area`, `data-outcomes`, `data-differs`."""
    return (f'data-check="{_e(check)}" data-area="{_e(area)}" data-outcomes="{_e(" ".join(sorted(set(outcomes))))}" '
            f'data-differs="{1 if differs else 0}"')


def grade(ratio):
    """The shade step of a cell's ratio, one per decade: 0 for no ratio (exact, or nothing numeric), 1 below
    1e-5, then 2..5 for the decades up to 0.1, 6 from 0.1 on."""
    if not ratio:
        return 0
    if not math.isfinite(ratio):
        return 6
    return min(6, max(1, math.floor(math.log10(ratio)) + 7))


def _cell(cell, index):
    """One matrix cell: coloured by outcome and shaded by its ratio, with the change mark; it links to its detail
    `c-<index>`."""
    if cell is None:
        return '<td class="full none">—</td>'
    changed = " changed" if cell.changed else ""
    shade = f" g{grade(cell.ratio)}" if cell.outcome in ("pass", "explained") else ""
    return (f'<td class="full o-{_e(cell.outcome)}{changed}{shade}"><a href="#c-{index[id(cell)]}">'
            f"{_e(cell_text(cell))}</a></td>")


def _lead(matrix, score):
    """The lines under the title: what the report covers, the newest run, the commits, the mutation score."""
    end = newest_run_end(matrix)
    commits = sorted({str(env["commit"])[:12] for env in matrix.envs.values() if env.get("commit")})
    parts = [f"{len(matrix.checks)} checks on {len(matrix.versions)} versions "
             f"({', '.join(_e(f'{i} {v}') for i, v in matrix.versions)})"]
    if end:
        parts.append(f"newest run ended {time_text(end)}")
    parts.append(f"commit {', '.join(_e(c) for c in commits)}" if commits else "commit not recorded")
    if score:
        parts.append(f'<a href="#mutants">mutation score {_e(score)}</a>')
    return f'<p class="lead">{"; ".join(parts)}.</p>'


def _summary(matrix, changed):
    """The summary section: counts with units, cells per outcome and version (with the changed cells, linked to
    the "what changed" view), a line per version and per unfinished run."""
    present = [o for o in OUTCOMES if any(c.outcome == o for c in matrix.cells.values())]
    rows = []
    for i, (impl, version) in enumerate(matrix.versions):
        counts = version_counts(matrix, impl, version)
        commit = str(matrix.envs.get((impl, version), {}).get("commit") or "")[:12]
        n = changed.get((impl, version), 0)
        delta = f'<a href="#changed" data-changed="{i}">{n}</a>' if n else ""
        rows.append(f'<tr><th scope="row">{_e(impl)} {_e(version)}</th><td>{_e(commit)}</td>'
                    + "".join(f"<td>{counts[o] or ''}</td>" for o in present) + f"<td>{delta}</td></tr>")
    envs = "".join(f"<li>{_e(impl)} {_e(version)}: {_e(version_note(matrix, impl, version))}</li>"
                   for impl, version in matrix.versions)
    envs += "".join(f"<li>{_e(line)}</li>" for line in unfinished_runs(matrix))
    head = "".join(f'<th scope="col">{o}</th>' for o in present)
    return (f'<section id="summary"><h2>Summary</h2><p>{len(matrix.checks)} checks, {len(matrix.versions)} '
            f"versions, {len(matrix.columns)} columns (version × device × dtype × attention), "
            f"{len(matrix.cells)} cells (a check on one column), {len(matrix.runs)} runs.</p>"
            '<table class="summary numbers"><caption>Cells per outcome and version (a cell: one check on one '
            f'target)</caption><thead><tr><th scope="col">version</th><th scope="col">commit</th>{head}'
            f'<th scope="col">{CHANGED} cells</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"<ul>{envs}</ul></section>")


def _filters(matrix):
    """The fixed bar: section links, area and outcome checkboxes (outcomes present only), "only rows that
    differ", a search on the check id and the column layout (every target, or one per version)."""
    areas = "".join(f'<label><input type="checkbox" name="area" value="{_e(a)}" checked> {_e(a)}</label>'
                    for a in matrix.areas)
    present = {cell.outcome for cell in matrix.cells.values()}
    outcomes = "".join(f'<label><input type="checkbox" name="outcome" value="{o}" checked> {o}</label>'
                       for o in OUTCOMES if o in present)
    jump = "".join(f'<a href="#{i}">{t}</a>' for i, t in (("summary", "summary"), ("compare", "compare"),
                                                          ("changed", "what changed"), ("heat", "heat map"),
                                                          ("matrix-section", "matrix"), ("drift", "drift"),
                                                          ("details", "details")))
    return ('<nav id="filters">'
            f'<span class="jump">{jump}</span>'
            f'<fieldset id="filter-area"><legend>area</legend>{areas}</fieldset>'
            f'<fieldset id="filter-outcome"><legend>rows with outcome</legend>{outcomes}</fieldset>'
            '<label><input type="checkbox" id="only-differs"> only rows that differ across versions</label>'
            '<label>check <input type="search" id="search" placeholder="check id contains"></label>'
            '<label>columns <select id="columns"><option value="targets">every target</option>'
            '<option value="versions">one per version</option></select></label>'
            '<span id="shown"></span></nav>')


def _matrix(matrix, index):
    """The matrix section: a row per check under a row per area, a cell per (version, target) and a compact
    summary cell per version (shown instead when the columns select "one per version")."""
    head = ['<th class="check" scope="col">check</th>']
    head += [f'<th class="full" scope="col">{_e(column_label(c, matrix)).replace(" ", "<br>")}</th>'
             for c in matrix.columns]
    single = len({impl for impl, _ in matrix.versions}) == 1
    head += [f'<th class="compact" scope="col">{_e(version if single else f"{impl} {version}")}</th>'
             for impl, version in matrix.versions]
    width = 1 + len(matrix.columns) + len(matrix.versions)
    descriptions = {c.id: c.description for c in catalog().checks}
    body = []
    for area in matrix.areas:
        body.append(f'<tr class="area-row" data-area="{_e(area)}"><th colspan="{width}" scope="rowgroup">{_e(area)}'
                    "</th></tr>")
        for check in (c for c, a in matrix.checks.items() if a == area):
            cells = matrix.row(check)
            outcomes = [c.outcome for c in cells if c is not None]
            compact = []
            for version in matrix.versions:
                mine = [c for c in cells if c and (c.column.impl, c.column.version) == version]
                top = next((c for c in mine if c.outcome == worst(mine)), None)
                text = _e(summary_text(mine))
                ratios = [c.ratio for c in mine if c.ratio is not None]
                shade = f" g{grade(max(ratios))}" if ratios and worst(mine) in ("pass", "explained") else ""
                compact.append(f'<td class="compact o-{worst(mine) or "none"}{shade}">'
                               + (f'<a href="#c-{index[id(top)]}">{text}</a>' if top else text) + "</td>")
            body.append(f'<tr class="check-row filterable" id="row-{_e(check)}" '
                        f'{_attrs(check, area, outcomes, matrix.differs(check))}>'
                        f'<th class="check" scope="row" title="{_e(descriptions.get(check, ""))}">{_e(check)}</th>'
                        + "".join(_cell(c, index) for c in cells) + "".join(compact) + "</tr>")
    return ('<section id="matrix-section"><h2>Matrix</h2><table id="matrix"><caption>Outcome and error/tolerance of '
            f'each check (rows) on each version and target (columns)</caption><thead><tr>{"".join(head)}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></section>')


def _drift():
    """The drift catalog section: a table of the behaviour changes (checks linked to their rows), then a
    `<details>` per change with its example and, for a schedule change, its learning-rate curves."""
    changes = catalog().changes
    if not changes:
        return '<section id="drift"><h2>Drift catalog</h2><p>No behaviour changes recorded.</p></section>'
    rows = "".join(f'<tr><th scope="row"><a href="#change-{_e(c.id)}">{_e(c.id)}</a></th><td>{_e(c.since)}</td>'
                   f"<td>{_e(c.area)}</td><td>{_e(c.title)}</td><td>"
                   + ", ".join(f'<a href="#row-{_e(check)}">{_e(check)}</a>' for check in c.checks)
                   + "</td></tr>" for c in changes)
    plots = curve_plots()
    figures = "".join(f'<figure class="curve-plot">{plots[c.id][0]}<figcaption><a href="#change-{_e(c.id)}">{_e(c.id)}'
                      f"</a> (first release {_e(c.since)}): the multiplier of {_e(plots[c.id][1])} by step, computed "
                      "by the reference under the rule before (dashed) and after (solid).</figcaption></figure>"
                      for c in changes if c.id in plots)
    entries = []
    for c in changes:
        example = change_example(c)
        pre = f"<pre>{_e(chr(10).join(f'{k}: {v}' for k, v in example.items()))}</pre>" if example else ""
        entries.append(f'<details id="change-{_e(c.id)}"><summary>{_e(c.id)}: {_e(c.title)} (since {_e(c.since)})'
                       f"</summary><p>Before: {_e(c.old)}</p><p>From {_e(c.since)}: {_e(c.new)}</p>{pre}</details>")
    curves = (f'<h3>Learning-rate curves of the schedule changes</h3><div class="curves">{figures}</div>'
              if figures else "")
    return ('<section id="drift"><h2>Drift catalog</h2><table><caption>Behaviour changes between releases, oldest '
            'first</caption><thead><tr><th scope="col">change</th><th scope="col">first release</th>'
            '<th scope="col">area</th><th scope="col">title</th><th scope="col">checks</th></tr></thead>'
            f'<tbody>{rows}</tbody></table>{curves}{"".join(entries)}</section>')


def _explained(matrix):
    """The explained differences section (empty when no known difference explained a cell)."""
    items = "".join(f"<li><code>{_e(k.id)}</code> ({_e(check)}; {_e(', '.join(versions))}): {_e(k.description)}</li>"
                    for k, check, versions in explained_differences(matrix))
    return f'<section id="explained"><h2>Explained differences</h2><ul>{items}</ul></section>' if items else ""


def _details(matrix, index):
    """The details section: a `<details>` per problem cell (id `c-<index>`), with its facts, message,
    counterexample and repro command; the script adds the short details of pass and explained cells to
    `#short-details` when a link asks for one."""
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
            title = "Counterexample of the known bug" if cell.outcome == "known_bug" else "Minimal counterexample"
            body += f'<h4>{title}</h4><pre class="counterexample">{_e(r["counterexample"])}</pre>'
        if r.get("reproduce"):
            body += f'<h4>Reproduce</h4><pre class="reproduce">{_e(r["reproduce"])}</pre>'
        entries.append(f'<details class="problem filterable o-{_e(cell.outcome)}" id="c-{index[id(cell)]}" '
                       f'{_attrs(cell.check, cell.area, [cell.outcome], matrix.differs(cell.check))}>'
                       f"<summary>{_e(cell.outcome)}: {_e(cell.check)} on {_e(cell.column.version)} "
                       f'{_e(cell.column.target)}</summary>{body}<p><a href="#row-{_e(cell.check)}">its row in the '
                       "matrix</a></p></details>")
    text = "".join(entries) or "<p>Every cell is pass or explained.</p>"
    return (f'<section id="details"><h2>Details</h2>{text}<div id="short-details"></div><p>Pass and explained '
            "cells: their short detail opens here from the matrix, the heat map or the compare views.</p></section>")


def html(matrix, mutants_dir="reports"):
    """The whole report page as a string (the mutation self-check from `mutants_dir`/mutants.json, if present)."""
    if not matrix.columns:
        content = "<p>No records found.</p>"
    else:
        cells = cell_list(matrix)
        index = {id(cell): i for i, cell in enumerate(cells)}
        bounds = scale_bounds([c.ratio for c in cells if c.outcome in ("pass", "explained", "fail")])
        changed = {}
        for cell in cells:
            if cell.changed:
                key = (cell.column.impl, cell.column.version)
                changed[key] = changed.get(key, 0) + 1
        mutants, score = mutation_section(mutants_dir)
        content = (_lead(matrix, score) + _filters(matrix) + _summary(matrix, changed) + legend(bounds)
                   + compare_section(matrix) + heat_section(matrix, cells, bounds) + _matrix(matrix, index)
                   + _drift() + _explained(matrix) + _details(matrix, index) + mutants
                   + data_block(report_data(matrix, cells)) + f"<script>{JS}</script>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,"><title>Compatibility report</title>'
            f"<style>{CSS}</style></head><body><h1>Compatibility report</h1>{content}</body></html>\n")
