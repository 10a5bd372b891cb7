"""Views of the HTML report beyond the matrix: the embedded data (one JSON block), the legend, the compare and
"what changed" panels (filled by the page's script from the data), the heat map, the learning-rate curves of the
schedule drift entries and the mutation self-check.

Every cell of the matrix has an index (its position in `cell_list`); its anchor is `c-<index>`, and the data block
holds one short row per cell under the same index.
"""

import json
import math
import os
from html import escape

from reference import ReferenceInputError, schedules

from ..get_scheduler import get_scheduler_arguments
from ..mutants.render import AREA_HEADERS, PATH_HEADERS, area_rows, path_rows
from ..records import OUTCOMES
from .matrix import catalog, version_key
from .svg import color_legend, curve_plot, heat_map
from .text import CHANGED, cell_reason, change_example, known_descriptions, ratio_text, worst

OUTCOME_MEANING = {
    "pass": "every comparison within the dtype's own tolerance",
    "explained": "differs from the reference by a documented known difference (the reason is in the detail)",
    "known_bug": "fails exactly as a recorded bug of this release predicts (the bug and its counterexample are in "
                 "the detail); not a failure of the run",
    "fail": "a comparison did not hold",
    "error": "an unexpected exception in the implementation, the adapter or the harness",
    "not_applicable": "the version lacks the feature",
    "skipped": "the target cannot run it",
    "missing": "expected, but no result was recorded: a crashed or killed worker",
}

# schedule drift entries whose two rules give learning-rate curves: change id -> (schedule, the parameters a user
# means, steps, how the rule is chosen: a get_scheduler_arguments flag, or the schedule's own rule keyword)
CURVES = {
    "inverse-sqrt-default-timescale": ("inverse_sqrt", {"num_warmup_steps": 0}, 20000,
                                       ("rules", {"default_timescale_10000": False})),
    "get-scheduler-specific-kwargs": ("cosine", {"num_warmup_steps": 2, "num_training_steps": 20,
                                                 "num_cycles": 1.5}, 20, ("flag", "specific_kwargs")),
    "get-scheduler-wsd-branch": ("warmup_stable_decay", {"num_warmup_steps": 3, "num_stable_steps": 5,
                                                         "num_decay_steps": 8}, 20, ("flag", "wsd_branch")),
    "wsd-warmup-from-min-lr": ("warmup_stable_decay", {"num_warmup_steps": 5, "num_stable_steps": 5,
                                                       "num_decay_steps": 8, "min_lr_ratio": 0.3}, 20,
                               ("rules", {"warmup_from_min_lr": False})),
    "get-scheduler-wsd-training-steps": ("warmup_stable_decay", {"num_warmup_steps": 3, "num_training_steps": 16,
                                                                 "num_decay_steps": 8}, 20,
                                         ("flag", "wsd_training_steps")),
    "get-scheduler-inverse-sqrt-kwargs": ("inverse_sqrt", {"num_warmup_steps": 0, "timescale": 2}, 40,
                                          ("flag", "inverse_sqrt_kwargs")),
}


def _e(text):
    return escape(str(text), quote=True)


def cell_list(matrix):
    """Every cell, in row order then column order: the index of a cell here is its anchor `c-<index>`."""
    return [cell for check in matrix.checks for cell in matrix.row(check) if cell is not None]


def _number(x):
    if x is None:
        return None
    return float(f"{x:.3g}") if math.isfinite(x) else str(x)


def report_data(matrix, cells):
    """The data the page's script reads, as a dict: versions [impl, version], targets, checks [id, area], changes
    (drift entries with their example and the index of the first version of each implementation with the new
    rule), reasons and tolerances (shared strings), and one row per cell:
    [check, version, target, outcome, ratio, examples, reason, tolerance, previous cell or -1]."""
    versions = matrix.versions
    targets = sorted({c.target for c in matrix.columns})
    checks = list(matrix.checks)
    reasons, tolerances = {"": 0}, {"": 0}
    descriptions = known_descriptions()
    by_key = {(c.check, c.column.impl, c.column.version, c.column.target): i for i, c in enumerate(cells)}
    previous = {id(c): by_key.get((c.check, c.column.impl, c.previous[0], c.column.target), -1)
                for c in cells if c.previous}  # the cell a changed cell's outcome differs from
    rows = []
    for cell in cells:
        record = cell.record or {}
        tol = record.get("tolerance") or {}
        tol_text = f"rtol {tol['rtol']:g}, atol {tol['atol']:g}" if tol.get("rtol") is not None else ""
        rows.append([checks.index(cell.check), versions.index((cell.column.impl, cell.column.version)),
                     targets.index(cell.column.target), OUTCOMES.index(cell.outcome), _number(cell.ratio),
                     record.get("examples"), reasons.setdefault(cell_reason(cell, descriptions), len(reasons)),
                     tolerances.setdefault(tol_text, len(tolerances)), previous.get(id(cell), -1)])
    changes = []
    for change in catalog().changes:
        at = {}
        for i, (impl, version) in enumerate(versions):
            if version_key(version) >= version_key(change.since):
                at.setdefault(impl, i)
        changes.append({"id": change.id, "since": change.since, "title": change.title, "old": change.old,
                        "new": change.new, "checks": list(change.checks), "example": change_example(change),
                        "at": at})
    return {"outcomes": list(OUTCOMES), "versions": [list(v) for v in versions], "targets": targets,
            "checks": [[c, matrix.checks[c]] for c in checks], "changes": changes, "reasons": list(reasons),
            "tolerances": list(tolerances), "cells": rows}


def data_block(data):
    """The data as a `<script type="application/json">` block (`<` escaped, so no text can close it)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="report-data">{text}</script>'


def legend(bounds):
    """The legend: what each outcome means, how a matrix cell reads, the colour scale of the ratio."""
    items = "".join(f'<li><span class="swatch o-{o}">{o}</span> {_e(m)}</li>' for o, m in OUTCOME_MEANING.items())
    grades = "".join(f'<span class="swatch o-pass g{g}">{label}</span>'
                     for g, label in enumerate(("0", "<1e-5", "1e-5", "1e-4", "1e-3", "1e-2", "0.1–1")))
    return ('<section id="legend"><h2>Legend</h2><ul class="outcomes">' + items + "</ul>"
            "<p>A matrix cell reads: outcome, then the largest error/tolerance ratio seen (over 1 fails; none: exact "
            "agreement, or nothing numeric compared). Its shade grows with the ratio, a step per decade: "
            f"{grades} (pass shown; explained in blue tones the same way). <b>{CHANGED}</b> and a purple frame: the "
            "outcome differs from the same target in the previous version. —: not run on that target. Every cell "
            "links to its detail.</p><p>The heat map uses one colour scale for the ratio:</p>"
            f"{color_legend(bounds)}</section>")


def compare_section(matrix):
    """The compare panel (two selects over every implementation version) and the "what changed in" panel; the
    page's script fills `#compare-result` and `#changed-result` from the data."""
    options = "".join(f'<option value="{i}">{_e(impl)} {_e(version)}</option>'
                      for i, (impl, version) in enumerate(matrix.versions))
    return ('<section id="compare"><h2>Compare two versions</h2><p class="controls">'
            f'<label>A <select id="compare-a">{options}</select></label> '
            f'<label>B <select id="compare-b">{options}</select></label> '
            '<span id="compare-count"></span></p><div id="compare-result"></div></section>'
            '<section id="changed"><h2>What changed in a version</h2><p class="controls">'
            f'<label>version <select id="changed-version">{options}</select></label> '
            '<span id="changed-count"></span></p><div id="changed-result"></div></section>'
            '<noscript><p>The compare views need JavaScript.</p></noscript>')


def heat_section(matrix, cells, bounds):
    """The heat map section: the largest ratio of each check in each version (over its targets), linked to the
    worst cell's detail, with the drift boundaries marked."""
    index = {id(cell): i for i, cell in enumerate(cells)}
    rows = [(check, f"#row-{check}") for check in matrix.checks]
    versions = matrix.versions
    single = len({impl for impl, _ in versions}) == 1
    columns = [version if single else f"{impl} {version}" for impl, version in versions]
    # column heads stay short: the version, behind the initials of an implementation other than the main one
    main = max({impl for impl, _ in versions}, key=lambda i: sum(impl == i for impl, _ in versions))
    heads = [version if impl == main else "".join(w[0] for w in impl.split("-")) + " " + version
             for impl, version in versions]
    values = {}
    for i, check in enumerate(matrix.checks):
        row = [c for c in matrix.row(check) if c is not None]
        for j, version in enumerate(versions):
            mine = [c for c in row if (c.column.impl, c.column.version) == version]
            if not mine:
                continue
            outcome = worst(mine)
            numeric = [c for c in mine if c.ratio is not None and c.outcome in ("pass", "explained", "fail")]
            top = max(numeric, key=lambda c: c.ratio if math.isfinite(c.ratio) else math.inf, default=None)
            chosen = next(c for c in mine if c.outcome == outcome) if outcome not in ("pass", "explained") or \
                top is None else top
            ratio = top.ratio if top is not None and outcome in ("pass", "explained", "fail") else None
            title = f"{check} · {columns[j]}: {outcome}" + (f", error/tolerance {ratio_text(ratio)}"
                                                            if ratio_text(ratio) else "")
            values[i, j] = (ratio, outcome, f"#c-{index[id(chosen)]}", title)
    boundaries, row_of = [], {check: i for i, check in enumerate(matrix.checks)}
    by_column = {}
    for change in catalog().changes:
        first = next((j for j, (impl, v) in enumerate(versions) if version_key(v) >= version_key(change.since)), None)
        if first is None or first == 0 or versions[first - 1][0] != versions[first][0]:
            continue  # the rule holds in every version shown, or in none
        by_column.setdefault(first, []).append(change)
    for n, (column, changes) in enumerate(sorted(by_column.items()), 1):
        title = "; ".join(f"{c.id} (since {c.since}): {c.title}" for c in changes)
        marked = sorted({row_of[ch] for c in changes for ch in c.checks if ch in row_of})
        boundaries.append((column, str(n), title, marked))
    key = "".join(f"<li><b>{n}</b> before {_e(columns[column])}: "
                  + ", ".join(f'<a href="#change-{_e(c.id)}">{_e(c.id)}</a> (since {_e(c.since)})'
                              for c in by_column[column]) + "</li>"
                  for n, column in enumerate(sorted(by_column), 1))
    return ('<section id="heat"><h2>Heat map: largest error/tolerance by check and version</h2>'
            "<p>One square per check and version: the largest error/tolerance ratio over its targets, on the log "
            "scale of the legend (white: no ratio; grey: not applicable or skipped; yellow: missing; black frame: "
            "a fail or error). Dashed purple lines, numbered below: drift boundaries, before the first version with a "
            "new rule; a purple mark on a row: the check observes that change. Each square links to its cell's "
            "detail.</p>"
            f'{color_legend(bounds)}<div class="hscroll">{heat_map(rows, heads, values, boundaries, bounds)}</div>'
            f'<ol class="boundaries">{key}</ol></section>')


def multipliers(name, params, steps, how, new):
    """The multipliers of steps 0..steps of schedule `name` under the new (or old) rule; None where refused."""
    kind, what = how
    try:
        if kind == "flag":
            forwarded = get_scheduler_arguments(name, params, **{what: new})
            rows = schedules.curve(name, forwarded, [1.0], 1.0, steps)
        else:
            rows = schedules.curve(name, params, [1.0], 1.0, steps, rules=None if new else what)
    except (ReferenceInputError, TypeError):  # refused by get_scheduler or the schedule
        return None
    return [row[0] for row in rows]


def curve_plots():
    """{change id: SVG} for each schedule drift entry whose rules give a curve (by CURVES): the learning-rate
    multiplier under the rule before and after the change, computed by the reference."""
    plots = {}
    for change in catalog().changes:
        if change.area != "schedule" or change.id not in CURVES:
            continue
        name, params, steps, how = CURVES[change.id]
        before, after = (multipliers(name, params, steps, how, new) for new in (False, True))
        if before is None and after is None:
            continue
        stride = max(1, steps // 200)
        ts = list(range(0, steps + 1, stride))
        pick = (lambda c: None if c is None else [c[t] for t in ts])
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        plots[change.id] = (curve_plot(f"{name} from {shown}: multiplier by step, before and after {change.id}",
                                       ts, pick(before), pick(after)), f"{name}({shown})")
    return plots


def mutation_section(directory="reports"):
    """(the mutation self-check section: score and per-area table from `directory`/mutants.json, the score as
    text), or ("", None) without that file."""
    path = os.path.join(directory, "mutants.json")
    if not os.path.exists(path):
        return "", None
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    env, score = data["environment"], data["score"]

    def table(caption, headers, rows):
        head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
        body = "".join("<tr>" + f'<th scope="row">{_e(row[0])}</th>' + "".join(f"<td>{_e(v)}</td>" for v in row[1:])
                       + "</tr>" for row in rows)
        return (f'<table class="numbers"><caption>{caption}</caption><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>") if rows else ""

    ratio = "n/a" if score.get("ratio") is None else f"{100 * score['ratio']:.0f}%"
    facts = [f"{env['max_examples']} examples" if env.get("max_examples") else "",
             f"wall time {data['wall_s']:.0f} s" if data.get("wall_s") is not None else ""]
    facts = ", ".join(f for f in facts if f)
    return ('<section id="mutants"><h2>Mutation self-check</h2>'
            f"<p>Bugs seeded one at a time into a copy of transformers {_e(env.get('transformers', '?'))}; each must "
            f"make a check fail. <b>Mutation score: {score['killed']}/{score['non_equivalent']} ({ratio})</b> of the "
            "applicable non-equivalent mutants killed" + (f" ({_e(facts)})" if facts else "")
            + ". Every mutant is listed in mutants.md, next to this page.</p>"
            + table("Mutants by area", AREA_HEADERS, area_rows(data))
            + table("Mutants by path (the part of the suite that must kill them)", PATH_HEADERS, path_rows(data))
            + "</section>"), f"{score['killed']}/{score['non_equivalent']} ({ratio})"
