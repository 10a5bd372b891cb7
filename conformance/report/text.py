"""Text shared by the markdown and HTML reports: how a cell, a check's cells in one version, a column, a version's
environment and an unfinished run read, and which known differences and drift examples to show."""

import datetime
import math

from ..records import OUTCOMES
from .matrix import catalog, version_key

SEVERITY = ("fail", "error", "missing", "known_bug", "skipped", "not_applicable", "explained", "pass")  # worst first
CHANGED = "Δ"  # marks a cell whose outcome differs from the same target in the previous version


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
    """The known differences that explained some cell: [(KnownDifference, check id, versions)], in registry
    order."""
    used = {}
    for cell in matrix.cells.values():
        for known in (cell.record or {}).get("explained") or []:
            used.setdefault((known, cell.check), set()).add(cell.column.version)
    out = []
    for check in catalog().checks:
        for known in check.known:
            if (known.id, check.id) in used:
                out.append((known, check.id, sorted(used[known.id, check.id], key=version_key)))
    return out


def known_descriptions():
    """{known difference id: its description} over the registry's checks."""
    return {known.id: known.description for check in catalog().checks for known in check.known}


def cell_reason(cell, descriptions):
    """Why a cell has its outcome, in one line ("" for a pass): the known differences that explained it (by
    `descriptions`, {id: text}), the reason a check did not apply or was skipped, the first line of a failure's or
    error's message, or why a result is missing."""
    record = cell.record or {}
    if cell.outcome == "explained":
        return " ".join(descriptions.get(k, k) for k in record.get("explained") or []) or "a known difference"
    if cell.outcome == "missing":
        return f"expected by run {cell.run_id}, never recorded: its worker crashed or was killed"
    if cell.outcome in ("not_applicable", "skipped", "fail", "error", "known_bug"):
        return (record.get("message") or "").strip().split("\n")[0]
    return ""


def time_text(t):
    """A Unix time as "YYYY-MM-DD HH:MM UTC"."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def newest_run_end(matrix):
    """The end (else the start) of the newest run, as a Unix time, or None without runs."""
    times = [r.get("end") or r.get("start") for r in matrix.runs if r.get("end") or r.get("start")]
    return max(times) if times else None
