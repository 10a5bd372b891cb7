"""The compatibility report as GitHub-flavoured markdown: `COMPATIBILITY.md` and one page per version.

`COMPATIBILITY.md` (kept short enough to read: `MAX_MAIN_BYTES`): summary, the outcome matrix per area (or, with
many columns, an outcome-by-version table per area), drift catalog, explained differences, details of every cell
that is neither pass nor explained, and the mutation self-check's score when `reports/mutants.json` exists.
`versions/<impl>-<version>.md` (`version_pages`): that version's environment and its full matrix by target.
"""

import datetime
import glob
import os

from ..mutants import markdown_section
from ..records import OUTCOMES
from .archive import file_name
from .matrix import catalog
from .text import (CHANGED, cell_text, change_example, column_label, explained_differences, ratio_text, summary_text,
                   unfinished_runs, version_counts, version_note)

WIDE_TABLE_COLUMNS = 8  # more (version x target) columns than this: compact per-version tables instead
MAX_MAIN_BYTES = 128_000  # COMPATIBILITY.md's budget (154 checks, 18 implementations and releases, 5 dtypes); tests hold the committed report to it
VERSIONS_DIR = "versions"  # the per-version pages, next to COMPATIBILITY.md


def markdown(matrix, mutants_dir="reports"):
    """The compatibility report as GitHub-flavoured markdown: summary, outcome matrix per area, drift catalog,
    explained differences and a details section for every cell that is neither pass nor explained."""
    out = ["# Compatibility report", ""]
    if not matrix.columns:
        return "\n".join(out + ["No records found.", ""])
    out += _summary(matrix) + _matrix(matrix) + _drift() + _explained(matrix) + _details(matrix)
    out += _mutants(mutants_dir)
    return "\n".join(out).rstrip() + "\n"


def _table(rows, headers):
    """A GitHub-flavoured table without alignment padding (it renders the same and is a third of the size); `|`
    and line breaks inside cells are escaped."""
    def line(values):
        return "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in values) + " |"

    return "\n".join([line(headers), "|" + "---|" * len(headers)] + [line(row) for row in rows])


def version_page_name(impl, version):
    """The per-version page's path relative to COMPATIBILITY.md."""
    return f"{VERSIONS_DIR}/{file_name(impl, version)[:-len('.json')]}.md"


def version_pages(matrix):
    """{path relative to COMPATIBILITY.md: markdown} of each version: its environment and its matrix by target."""
    pages = {}
    for impl, version in matrix.versions:
        columns = [c for c in matrix.columns if (c.impl, c.version) == (impl, version)]
        rows = [[a, c] + [cell_text(matrix.cells.get((c, col))) for col in columns] for c, a in matrix.checks.items()]
        pages[version_page_name(impl, version)] = "\n".join(
            [f"# {impl} {version}", "", "Back to the [compatibility report](../COMPATIBILITY.md).", "",
             version_note(matrix, impl, version), "", _table(rows, ["area", "check"] + [c.target for c in columns]),
             ""])
    return pages


def _fence(text, lang=""):
    """A fenced code block that survives backticks inside `text`."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _time(t):
    """A Unix time as "YYYY-MM-DD HH:MM UTC"."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _mutant_files(directory):
    """reports/mutants.json and the runs against other releases (reports/mutants-*.json); None without the first."""
    path = os.path.join(directory, "mutants.json")
    return (path, sorted(glob.glob(os.path.join(directory, "mutants-*.json")))) if os.path.exists(path) else None


def mutants_page(directory="reports"):
    """The mutation self-check in full (every mutant), for `mutants.md`; None without reports/mutants.json."""
    files = _mutant_files(directory)
    return None if files is None else markdown_section(files[0], heading="#", others=files[1]).rstrip() + "\n"


def _mutants(directory="reports"):
    """The mutation self-check's score and summary tables (`bert-conformance mutants` writes reports/mutants.json),
    without the list of every mutant, which `mutants.md` has; nothing without it."""
    files = _mutant_files(directory)
    if files is None:
        return []
    summary = markdown_section(files[0], heading="##", others=files[1]).split("\n### Every mutant")[0]
    return ["", summary.rstrip(), "", "Every mutant, with the check that killed it: [mutants.md](mutants.md).", ""]


def _summary(matrix):
    """The summary section: counts of checks, versions, columns and runs; outcome counts per version; a line per
    version (environment, examples, test time) and per unfinished run; the legend."""
    rows = []
    for impl, version in matrix.versions:
        counts = version_counts(matrix, impl, version)
        rows.append([impl, version] + [counts[o] or "" for o in OUTCOMES])
    ends = [r.get("end") or r.get("start") for r in matrix.runs if r.get("end") or r.get("start")]
    lines = ["## Summary", "",
             f"{len(matrix.checks)} checks, {len(matrix.versions)} version(s), {len(matrix.columns)} columns "
             f"(version x device x dtype x attention), {len(matrix.runs)} run(s)"
             + (f", the newest ended {_time(max(ends))}" if ends else "") + ".", "",
             _table(rows, ["implementation", "version"] + list(OUTCOMES)), ""]
    for impl, version in matrix.versions:
        lines.append(f"- {impl} {version}: {version_note(matrix, impl, version)}")
    lines += [f"- {line}" for line in unfinished_runs(matrix)]
    lines += ["", "Cells: outcome and the largest error/tolerance ratio seen (over 1 fails). Outcomes: `pass`; "
              "`explained` (a documented known difference); `known_bug` (fails exactly as a recorded bug of that "
              "release predicts: not a failure of the run; the bug and its counterexample are in the details); `fail` (a comparison did not hold); `error` (an "
              "unexpected exception); `not_applicable` (the version lacks the feature); `skipped` (the target "
              "cannot run it); `missing` (expected, but no result was recorded: a crashed or killed worker). No "
              "ratio: exact agreement, or nothing numeric compared. `—`: not run on that target (checks of losses, "
              "relations, errors, schedules and optimizers run under one attention implementation or on one "
              f"target). `{CHANGED}`: the outcome differs from the same target in the previous version.", ""]
    return lines


def _matrix(matrix):
    """The outcome matrix: one table per area with a column per (version, target) when there is one version or at
    most WIDE_TABLE_COLUMNS columns; else a table per area with a summary cell per version and links to the
    version pages, which have the table by target."""
    lines = []
    wide = len(matrix.versions) == 1 or len(matrix.columns) <= WIDE_TABLE_COLUMNS
    if wide:
        lines += ["## Matrix", ""]
        for area in matrix.areas:
            checks = [c for c, a in matrix.checks.items() if a == area]
            rows = [[c] + [cell_text(x) for x in matrix.row(c)] for c in checks]
            lines += [f"### {area}", "", _table(rows, ["check"] + [column_label(c, matrix) for c in matrix.columns]),
                      ""]
        return lines
    lines += ["## Outcome by version", "",
              "Each cell summarises the check's outcomes over the targets of that version (`ok` is pass, `n/a` is "
              "not_applicable).", ""]
    for area in matrix.areas:
        checks = [c for c, a in matrix.checks.items() if a == area]
        rows = [[c] + [_short(summary_text(cell for cell in matrix.row(c) if cell and (cell.column.impl,
                                                                            cell.column.version) == v))
                       for v in matrix.versions] for c in checks]
        headers = [v if len({i for i, _ in matrix.versions}) == 1 else f"{i} {v}" for i, v in matrix.versions]
        lines += [f"### {area}", "", _table(rows, ["check"] + headers), ""]
    lines += ["Each version's full matrix by target: " + ", ".join(
        f"[{v}]({version_page_name(i, v)})" for i, v in matrix.versions) + ".", ""]
    return lines


def _short(text):
    """An outcome summary in the compact table's words: `ok` for pass, `n/a` for not_applicable."""
    return text.replace("not_applicable", "n/a").replace("pass", "ok")


def _drift():
    """The drift catalog section: a table of the registry's behaviour changes, then each with its example."""
    changes = catalog().changes
    lines = ["## Drift catalog", ""]
    if not changes:
        return lines + ["No behaviour changes recorded.", ""]
    rows = [[c.id, c.since, c.area, c.title, ", ".join(c.checks)] for c in changes]
    lines += [_table(rows, ["change", "since", "area", "title", "checks"]), ""]
    for c in changes:
        lines += [f"### {c.id}: {c.title}", "", f"Since {c.since} ({c.area}).", "", f"- before: {c.old}",
                  f"- from {c.since}: {c.new}", ""]
        example = change_example(c)
        if example:
            lines += [_fence("\n".join(f"{k}: {v}" for k, v in example.items())), ""]
    return lines


def _explained(matrix):
    """The explained differences section: each known difference that explained some cell (none: no section)."""
    explained = explained_differences(matrix)
    if not explained:
        return []
    lines = ["## Explained differences", ""]
    for known, check, versions in explained:
        lines.append(f"- `{known.id}` ({check}; {', '.join(versions)}): {known.description}")
    return lines + [""]


def _details(matrix):
    """The details section: each failure and error with its message, counterexample and repro command; a table of
    missing results; a table of not-applicable and skipped cells grouped by version, check, outcome and reason."""
    problems = matrix.problems()
    lines = ["## Details", ""]
    if not problems:
        return lines + ["Every cell is `pass` or `explained`.", ""]
    failures = [c for c in problems if c.outcome in ("fail", "error")]
    if failures:
        lines += ["### Failures and errors", ""]
    for cell in failures:
        r = cell.record or {}
        lines += [f"#### {cell.outcome}: {cell.check} on {cell.column.impl} {cell.column.version} "
                  f"{cell.column.target}", ""]
        facts = [f"examples run: {r.get('examples')}"]
        if ratio_text(cell.ratio):
            facts.append(f"error/tolerance: {ratio_text(cell.ratio)}")
        if r.get("tolerance"):
            facts.append(f"tolerance: rtol {r['tolerance']['rtol']:g}, atol {r['tolerance']['atol']:g}")
        if cell.previous:
            facts.append(f"was {cell.previous[1]} in {cell.previous[0]}")
        lines += ["; ".join(facts) + ".", "", _fence(r.get("message") or "(no message)", "text"), ""]
        if r.get("counterexample"):
            lines += ["Minimal counterexample:", "", _fence(r["counterexample"], "json"), ""]
        if r.get("reproduce"):
            lines += ["Reproduce:", "", _fence(r["reproduce"], "bash"), ""]
    bugs = [c for c in problems if c.outcome == "known_bug"]
    if bugs:
        lines += ["### Known bugs", "", "Cells that fail exactly as a recorded bug of the release predicts "
                  "(`conformance.check.KNOWN_BUGS`); the same check passes where the bug is fixed.", ""]
    shown = {}  # one entry per check and version; its other targets are listed (the same bug, the same message)
    for cell in bugs:
        shown.setdefault((cell.check, cell.column.impl, cell.column.version), []).append(cell)
    for (check, impl, version), cells in shown.items():
        r = cells[0].record or {}
        targets = ", ".join(c.column.target for c in cells)
        lines += [f"#### known_bug: {check} on {impl} {version} ({targets})", "",
                  _fence(r.get("message") or "(no message)", "text"), ""]
        if r.get("counterexample"):
            lines += ["Counterexample:", "", _fence(r["counterexample"], "json"), ""]
        if r.get("reproduce"):
            lines += ["Reproduce (first target):", "", _fence(r["reproduce"], "bash"), ""]
    missing = [c for c in problems if c.outcome == "missing"]
    if missing:
        lines += ["### Missing results", "",
                  "Expected by the run but never recorded: the worker running it crashed or was killed.", "",
                  _table([[f"{c.column.impl} {c.column.version}", c.check, c.column.target, c.run_id]
                          for c in missing], ["version", "check", "target", "run"]), ""]
    skipped = [c for c in problems if c.outcome in ("not_applicable", "skipped")]
    if skipped:
        lines += ["### Not applicable and skipped", "",
                  "One row per implementation, outcome and reason, with the checks it holds for (each check's "
                  "versions and targets are on the version pages, `versions/`).", "",
                  _table(_skipped_summary(skipped), ["implementation", "outcome", "checks", "versions", "reason"]), ""]
    return lines


def _skipped_summary(skipped, shown=4):
    """The not-applicable and skipped cells grouped by implementation, outcome and reason (the version named in a
    reason read as VERSION): the number of checks (the first `shown` named) and the versions."""
    groups = {}
    for c in skipped:
        reason = ((c.record or {}).get("message") or "").replace(f"{c.column.impl} {c.column.version}",
                                                                   f"{c.column.impl} VERSION")
        checks, versions = groups.setdefault((c.column.impl, c.outcome, reason), ({}, {}))
        checks[c.check] = versions[c.column.version] = True
    rows = []
    for (impl, outcome, reason), (checks, versions) in groups.items():
        names = list(checks)
        text = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
        rows.append([impl, outcome, f"{len(names)}: {text}", ", ".join(versions), reason])
    return rows


