"""The outcome matrix: merge the records of many runs into one cell per (implementation, version, check, target).

`merge` applies the runs oldest first; each run marks its expected pairs `missing`, then its records replace those
marks. So the newest run that expected a (version, check, target) decides its cell, and an expected pair that no
worker recorded (a crashed or killed worker) stays `missing`. `catalog` gives the registry's checks (row order,
known differences) and the drift catalog of `conformance.drift`.
"""

from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

from packaging.version import InvalidVersion, Version

from .. import drift, registry
from ..records import LEGACY_OUTCOMES

PROBLEMS = ("fail", "error", "known_bug", "missing", "not_applicable", "skipped")  # outcomes that get a details entry
ORDER = {"device": ("cpu", "cuda", "mps"), "dtype": ("float64", "float32", "bfloat16", "float16", "autocast_bfloat16"), "attn": ("eager", "sdpa")}


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
        """The areas of the checks, in row order."""
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


class Catalog(NamedTuple):
    """What the report shows beside the records: the registry's checks (in registry order) and the drift catalog
    (oldest change first)."""

    checks: list
    changes: list


def catalog():
    """`registry.CHECKS` and `drift.CHANGES` as they are now (read at each call, so a patched list shows)."""
    return Catalog(registry.CHECKS, sorted(drift.CHANGES, key=lambda c: version_key(c.since)))


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

    registry_checks = catalog().checks
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
