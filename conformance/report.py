"""Compatibility reports: merge the run records of many runs into `COMPATIBILITY.md` and `index.html`.

Records come from the pytest plugin's `--report-dir` (see `conformance.pytest_plugin`): per run a
`run-<run_id>.json` (environment, expected (check, target) pairs, start, end) and per worker a
`records-<worker>.jsonl` (one record per check and target). `load` reads every such file under a folder
(`reports/records/<impl>-<version>/` for each env), `merge` builds the matrix, `markdown` and
`conformance.html_report.html` render it, `write_reports` writes both files.

Merging: runs are applied oldest first; each run marks its expected pairs `missing`, then its records replace
those marks. So the newest run that expected a (version, check, target) decides its cell, and an expected pair
that no worker recorded (a crashed or killed worker) stays `missing`.
"""

import glob
import json
import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from packaging.version import InvalidVersion, Version
from tabulate import tabulate

OUTCOMES = ("pass", "explained", "fail", "error", "not_applicable", "skipped", "missing")
SEVERITY = ("fail", "error", "missing", "skipped", "not_applicable", "explained", "pass")  # worst first
PROBLEMS = ("fail", "error", "missing", "not_applicable", "skipped")  # outcomes that get a details entry
LEGACY_OUTCOMES = {"passed": "pass", "failed": "fail"}  # records written before the outcome vocabulary
ORDER = {"device": ("cpu", "cuda", "mps"), "dtype": ("float64", "float32", "bfloat16"), "attn": ("eager", "sdpa")}
CHANGED = "Δ"
WIDE_TABLE_COLUMNS = 8  # more (version x target) columns than this: compact per-version tables instead


@dataclass(frozen=True, order=True)
class Column:
    """One column of the matrix: an implementation version and a target (device-dtype-attention)."""

    impl: str
    version: str
    target: str

    @property
    def device(self):
        return self.target.split("-")[0]

    @property
    def dtype(self):
        return self.target.split("-")[1]

    @property
    def attn(self):
        return self.target.split("-")[-1]

    def sort_key(self):
        """Versions by packaging.version, then device, dtype and attention (known ones in a fixed order)."""
        def ordered(kind, value):
            known = ORDER[kind]
            return (known.index(value), "") if value in known else (len(known), value)

        return (self.impl, version_key(self.version), ordered("device", self.device), ordered("dtype", self.dtype),
                ordered("attn", self.attn))


@dataclass
class Cell:
    """The outcome of one check on one column, with the record behind it (None for `missing`)."""

    check: str
    area: str
    column: Column
    outcome: str
    record: Optional[dict] = None
    run_id: Optional[str] = None
    previous: Optional[Tuple[str, str]] = None  # (version, outcome) of the previous version, when it differs

    @property
    def changed(self):
        return self.previous is not None

    @property
    def ratio(self):
        """The largest error/tolerance: of the failing comparison for a failure, else the largest seen."""
        if not self.record:
            return None
        value = self.record.get("failure_ratio") if self.outcome == "fail" else None
        value = self.record.get("max_error_ratio") if value is None else value
        return None if value is None else float(value)  # "inf" / "nan" are stored as strings


@dataclass
class Matrix:
    """The merged result of many runs: columns in report order, checks (id -> area) in registry order, cells by
    (check, column), the environment of each (impl, version), and the runs."""

    columns: List[Column]
    checks: Dict[str, str]
    cells: Dict[Tuple[str, Column], Cell]
    envs: Dict[Tuple[str, str], dict]
    runs: List[dict] = field(default_factory=list)

    @property
    def versions(self):
        """(impl, version) pairs in column order."""
        return list(dict.fromkeys((c.impl, c.version) for c in self.columns))

    @property
    def areas(self):
        return list(dict.fromkeys(self.checks.values()))

    def row(self, check):
        """The cells of one check, in column order (None where it was not run)."""
        return [self.cells.get((check, c)) for c in self.columns]

    def differs(self, check):
        """Whether the check's outcome on some target changed from one version to the next."""
        return any(cell is not None and cell.changed for cell in self.row(check))

    def problems(self):
        """Every cell that is neither pass nor explained, in row and column order."""
        return [cell for check in self.checks for cell in self.row(check) if cell and cell.outcome in PROBLEMS]


def version_key(version):
    """Sort key for version strings: PEP 440 order, anything unparsable after, alphabetically."""
    try:
        return (0, Version(version), "")
    except InvalidVersion:
        return (1, Version("0"), version)


# --- reading and merging ---------------------------------------------------------------------------------------


def load(directory):
    """Every run record (`run-*.json`) and check record (`*.jsonl` lines) under `directory`, recursively."""
    runs, records = [], []
    for path in sorted(glob.glob(os.path.join(directory, "**", "run-*.json"), recursive=True)):
        with open(path) as f:
            runs.append(json.load(f))
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.jsonl"), recursive=True)):
        with open(path) as f:
            for line in f:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut short by a killed worker
                        continue
    return runs, records


def _registry():
    """The registry's checks (for row order and known differences) and its drift catalog, oldest change first."""
    from . import registry

    return registry.CHECKS, sorted(getattr(registry, "CHANGES", []), key=lambda c: version_key(c.since))


def merge(runs, records):
    """The matrix of the newest outcome per (implementation, version, check, target).

    Records of runs without a run file (older records) come first, oldest first; then each run, oldest first,
    marks its expected pairs `missing` and its records replace those marks. A cell is marked changed when its
    outcome differs from the same check and target in the previous version that has one (`missing` cells are
    neither marked nor compared: they say nothing about the version).
    """
    known_runs = {r["run_id"]: r for r in runs}
    cells, envs = {}, {}

    def put(record):
        env = record.get("env") or {}
        column = Column(env.get("implementation", "?"), env.get("version", "?"), record["target"])
        outcome = LEGACY_OUTCOMES.get(record.get("outcome"), record.get("outcome"))
        cells[record["check"], column] = Cell(record["check"], record.get("area", record["check"].split(".")[0]),
                                              column, outcome, record, record.get("run_id"))
        envs.setdefault((column.impl, column.version), env)

    for record in records:  # older records carry no target id
        record.setdefault("target", f"{record.get('device')}-{record.get('dtype')}-{record.get('attn')}")
    by_run = {}
    for record in sorted(records, key=lambda r: r.get("time") or 0):
        by_run.setdefault(record.get("run_id") if record.get("run_id") in known_runs else None, []).append(record)
    for record in by_run.pop(None, []):
        put(record)
    for run in sorted(runs, key=lambda r: r.get("start") or 0):
        env = run.get("env") or {}
        envs[env.get("implementation", "?"), env.get("version", "?")] = env
        for pair in run.get("expected") or []:
            column = Column(env.get("implementation", "?"), env.get("version", "?"), pair["target"])
            cells[pair["check"], column] = Cell(pair["check"], pair["area"], column, "missing", None, run["run_id"])
        for record in by_run.get(run["run_id"], []):
            put(record)

    registry_checks, _ = _registry()
    order = {c.id: i for i, c in enumerate(registry_checks)}
    area_order = list(dict.fromkeys(c.area for c in registry_checks))
    areas = {check: cell.area for (check, _), cell in cells.items()}
    area_key = {a: (area_order.index(a) if a in area_order else len(area_order), a) for a in areas.values()}
    checks = {c: areas[c] for c in sorted(areas, key=lambda c: (area_key[areas[c]], order.get(c, len(order)), c))}
    columns = sorted({column for (_, column) in cells}, key=Column.sort_key)
    _mark_changes(cells, columns, checks)
    return Matrix(columns, checks, cells, envs, sorted(runs, key=lambda r: r.get("start") or 0))


def _mark_changes(cells, columns, checks):
    """Set `previous` on every cell whose outcome differs from the previous version's on the same target."""
    for check in checks:
        last = {}  # (impl, target) -> the newest earlier cell
        for column in columns:
            cell = cells.get((check, column))
            if cell is None or cell.outcome == "missing":
                continue
            before = last.get((column.impl, column.target))
            if before is not None and before.outcome != cell.outcome:
                cell.previous = (before.column.version, before.outcome)
            last[column.impl, column.target] = cell


# --- text helpers shared by the markdown and HTML reports -----------------------------------------------------------


def ratio_text(ratio):
    """The error/tolerance ratio in two significant digits ("" when unknown or 0: exact, or nothing numeric)."""
    if not ratio:
        return ""
    if math.isinf(ratio) or math.isnan(ratio):
        return str(ratio)
    return f"{ratio:.2g}"


def cell_text(cell):
    """A cell as text: change mark, outcome and error/tolerance ratio, e.g. "Δ fail 3.4e+02", "pass 0.15"."""
    if cell is None:
        return "—"
    parts = [CHANGED] if cell.changed else []
    parts.append(cell.outcome)
    if cell.outcome in ("pass", "explained", "fail"):
        parts.append(ratio_text(cell.ratio))
    return " ".join(p for p in parts if p)


def summary_text(cells):
    """The cells of one check in one version, across targets: "pass ×4", or "fail 1 · pass 3" (worst first),
    with the change mark if any of them changed."""
    cells = [c for c in cells if c is not None]
    if not cells:
        return "—"
    counts = {o: sum(c.outcome == o for c in cells) for o in SEVERITY}
    present = [o for o in SEVERITY if counts[o]]
    if len(present) == 1:
        text = present[0] if counts[present[0]] == 1 else f"{present[0]} ×{counts[present[0]]}"
    else:
        text = " · ".join(f"{o} {counts[o]}" for o in present)
    return (f"{CHANGED} " if any(c.changed for c in cells) else "") + text


def worst(cells):
    """The most severe outcome among `cells` (None if there are none)."""
    outcomes = {c.outcome for c in cells if c is not None}
    return next((o for o in SEVERITY if o in outcomes), None)


def column_label(column, matrix):
    """A column's header: the target, preceded by the version (and implementation) when there are several."""
    impls = {c.impl for c in matrix.columns}
    parts = ([column.impl] if len(impls) > 1 else []) + ([column.version] if len(matrix.versions) > 1 else [])
    return " ".join(parts + [column.target])


def version_counts(matrix, impl, version):
    """Outcome counts of one version's cells."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for (_, column), cell in matrix.cells.items():
        if (column.impl, column.version) == (impl, version):
            counts[cell.outcome] = counts.get(cell.outcome, 0) + 1
    return counts


def env_text(env):
    """One line describing a version's environment."""
    seed = env.get("hypothesis_seed")
    devices = env.get("devices") or {}
    return (f"torch {env.get('torch', '?')}, numpy {env.get('numpy', '?')}, Python {env.get('python', '?')}; "
            f"Hypothesis profile {env.get('hypothesis_profile', '?')}"
            + (f", seed {seed}" if seed is not None else "")
            + (f", {env['max_examples']} examples per check" if env.get("max_examples") else "")
            + ("; devices: " + ", ".join(f"{k} ({v})" for k, v in devices.items()) if devices else ""))


def version_note(matrix, impl, version):
    """One line about a version: its environment, the examples drawn and the test time its records took."""
    records = [c.record for (_, col), c in matrix.cells.items() if (col.impl, col.version) == (impl, version)
               and c.record]
    examples = sum(r.get("examples") or 0 for r in records)
    seconds = sum(r.get("duration_s") or 0 for r in records)
    peaks = [r["peak_rss_mb"] for r in records if r.get("peak_rss_mb")]
    return (f"{env_text(matrix.envs.get((impl, version), {}))}; {examples} examples drawn in {seconds:.0f} s of "
            "test time" + (f"; peak memory of a test process {max(peaks):.0f} MiB" if peaks else ""))


def unfinished_runs(matrix):
    """Lines naming each run that has no end time: still running, or killed with its controller."""
    return [f"run {r['run_id']} ({(r.get('env') or {}).get('implementation', '?')} "
            f"{(r.get('env') or {}).get('version', '?')}) did not finish: it is still running or was killed"
            for r in matrix.runs if not r.get("end")]


def change_example(change):
    """A Change's example as a dict of strings (input, old, new), or the error computing it."""
    if change.example is None:
        return None
    try:
        return {k: str(v) for k, v in change.example().items()}
    except Exception as exc:  # the catalog must render even if one example breaks
        return {"error": f"{type(exc).__name__}: {exc}"}


def explained_differences(matrix):
    """The known differences that explained some cell: [(KnownDifference, check id, versions)]."""
    registry_checks, _ = _registry()
    used = {}
    for cell in matrix.cells.values():
        for known in (cell.record or {}).get("explained") or []:
            used.setdefault((known, cell.check), set()).add(cell.column.version)
    out = []
    for check in registry_checks:
        for known in check.known:
            if (known.id, check.id) in used:
                out.append((known, check.id, sorted(used[known.id, check.id], key=version_key)))
    return out


# --- markdown ----------------------------------------------------------------------------------------------------


def _table(rows, headers):
    """A GitHub-flavoured table; `|` and line breaks inside cells are escaped."""
    def clean(value):
        return str(value).replace("|", "\\|").replace("\n", " ")

    return tabulate([[clean(v) for v in row] for row in rows], headers=headers, tablefmt="github",
                    disable_numparse=True)


def _fence(text, lang=""):
    """A fenced code block that survives backticks inside `text`."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def markdown(matrix):
    """The compatibility report as GitHub-flavoured markdown: summary, outcome matrix per area, drift catalog,
    explained differences and a details section for every cell that is neither pass nor explained."""
    out = ["# Compatibility report", ""]
    if not matrix.columns:
        return "\n".join(out + ["No records found.", ""])
    out += _summary_md(matrix) + _matrix_md(matrix) + _drift_md() + _explained_md(matrix) + _details_md(matrix)
    out += _mutants_md()
    return "\n".join(out).rstrip() + "\n"


def _mutants_md(directory="reports"):
    """The mutation self-check's score and per-area table (`bert-conformance mutants` writes reports/mutants.json)."""
    import glob

    from . import mutants

    path = os.path.join(directory, "mutants.json")
    if not os.path.exists(path):
        return []
    others = sorted(glob.glob(os.path.join(directory, "mutants-*.json")))
    return ["", mutants.markdown_section(path, heading="##", others=others), ""]


def _summary_md(matrix):
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
              "`explained` (a documented known difference); `fail` (a comparison did not hold); `error` (an "
              "unexpected exception); `not_applicable` (the version lacks the feature); `skipped` (the target "
              "cannot run it); `missing` (expected, but no result was recorded: a crashed or killed worker). No "
              "ratio: exact agreement, or nothing numeric compared. `—`: not run on that target (checks of losses, "
              "relations, errors, schedules and optimizers run under one attention implementation or on one "
              f"target). `{CHANGED}`: the outcome differs from the same target in the previous version.", ""]
    return lines


def _time(t):
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _matrix_md(matrix):
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
              "Each cell summarises the check's outcomes over the targets of that version.", ""]
    for area in matrix.areas:
        checks = [c for c, a in matrix.checks.items() if a == area]
        rows = [[c] + [summary_text(cell for cell in matrix.row(c) if cell and (cell.column.impl, cell.column.version)
                                    == v) for v in matrix.versions] for c in checks]
        headers = [v if len({i for i, _ in matrix.versions}) == 1 else f"{i} {v}" for i, v in matrix.versions]
        lines += [f"### {area}", "", _table(rows, ["check"] + headers), ""]
    lines += ["## Matrix by version", ""]
    for impl, version in matrix.versions:
        columns = [c for c in matrix.columns if (c.impl, c.version) == (impl, version)]
        rows = [[a, c] + [cell_text(matrix.cells.get((c, col))) for col in columns] for c, a in matrix.checks.items()]
        lines += [f"### {impl} {version}", "", _table(rows, ["area", "check"] + [c.target for c in columns]), ""]
    return lines


def _drift_md():
    _, changes = _registry()
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


def _explained_md(matrix):
    explained = explained_differences(matrix)
    if not explained:
        return []
    lines = ["## Explained differences", ""]
    for known, check, versions in explained:
        lines.append(f"- `{known.id}` ({check}; {', '.join(versions)}): {known.description}")
    return lines + [""]


def _details_md(matrix):
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
    missing = [c for c in problems if c.outcome == "missing"]
    if missing:
        lines += ["### Missing results", "",
                  "Expected by the run but never recorded: the worker running it crashed or was killed.", "",
                  _table([[f"{c.column.impl} {c.column.version}", c.check, c.column.target, c.run_id]
                          for c in missing], ["version", "check", "target", "run"]), ""]
    skipped = [c for c in problems if c.outcome in ("not_applicable", "skipped")]
    if skipped:
        groups = {}
        for c in skipped:
            key = (f"{c.column.impl} {c.column.version}", c.check, c.outcome, (c.record or {}).get("message") or "")
            groups.setdefault(key, []).append(c.column.target)
        lines += ["### Not applicable and skipped", "",
                  _table([[v, check, outcome, ", ".join(targets), reason]
                          for (v, check, outcome, reason), targets in groups.items()],
                         ["version", "check", "outcome", "targets", "reason"]), ""]
    return lines


# --- writing ---------------------------------------------------------------------------------------------------


def write_reports(records_dir, out_dir):
    """Merge every record under `records_dir` and write `out_dir/COMPATIBILITY.md` and `out_dir/index.html`.
    Returns the two paths."""
    from .html_report import html

    matrix = merge(*load(records_dir))
    os.makedirs(out_dir, exist_ok=True)
    paths = os.path.join(out_dir, "COMPATIBILITY.md"), os.path.join(out_dir, "index.html")
    for path, text in zip(paths, (markdown(matrix), html(matrix))):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return paths
