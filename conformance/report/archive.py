"""The committed, compact form of the records: one file per implementation and version.

`reports/records/<impl>-<version>.json` holds the merged outcome of every (check, target) that version's runs
recorded: the environment, the runs (without their expected pairs) and one line per cell with the fields the report
reads (`FIELDS`), ratios rounded to 4 significant digits. A cell that was expected but never recorded is kept as
`missing`. The file is what `bert-conformance run` and the tox envs update and the repository keeps; the raw
per-worker records of a run (`conformance.records`) are working files under `reports/runs/`, not committed.

`update` folds a run's raw records into the compact file of its version (the newest run that expected a cell decides
it, as in `merge`), so a run of a subset of the checks replaces only those cells, and drops the cells of checks the
registry no longer has; `load_tree` reads compact files and
raw records alike, so `report` merges record trees from any number of machines.
"""

import glob
import json
import os
import re

from ..records import load as load_raw
from .matrix import catalog, merge

COMPACT = "compact"
SCHEMA = 2
FIELDS = ("check", "area", "target", "outcome", "examples", "max_error_ratio", "failure_ratio", "tolerance",
          "explained", "known_bugs", "duration_s", "peak_rss_mb", "message", "traceback", "counterexample",
          "reproduce")
RUN_FIELDS = ("run_id", "args", "start", "end", "exitstatus")
KEPT_RUNS = 10  # the newest runs a compact file lists


def file_name(impl, version):
    """The compact file's name of one implementation and version: `<impl>-<version>.json`, filesystem-safe."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", f"{impl}-{version}") + ".json"


def _significant(x, digits=4):
    """A float rounded to `digits` significant digits (ratios and seconds need no more); anything else as it is."""
    return float(f"{x:.{digits - 1}e}") if isinstance(x, float) and x == x and abs(x) != float("inf") else x


def compact(matrix, impl, version):
    """The compact form of one implementation and version of `matrix`: its environment, runs and cells."""
    cells = sorted((cell for (check, column), cell in matrix.cells.items()
                    if (column.impl, column.version) == (impl, version)), key=lambda c: (c.check, c.column.target))
    runs = []
    for run in matrix.runs:
        env = run.get("env") or {}
        if (env.get("implementation"), env.get("version")) == (impl, version):  # a compact file's run: its runs
            runs += run["runs"] if "runs" in run else [{k: run.get(k) for k in RUN_FIELDS}]
    runs = sorted(runs, key=lambda r: r.get("start") or 0)[-KEPT_RUNS:]
    rows = []
    for cell in cells:
        record = dict(cell.record or {}, check=cell.check, area=cell.area, target=cell.column.target,
                      outcome=cell.outcome)
        rows.append([_significant(record.get(f)) for f in FIELDS])
    return {"type": COMPACT, "schema": SCHEMA, "implementation": impl, "version": version,
            "env": matrix.envs.get((impl, version), {}), "runs": runs, "fields": list(FIELDS), "cells": rows}


def expand(data):
    """The (runs, records) a compact file stands for: one run expecting every cell (so `missing` cells stay
    missing), started when its newest run started, and one record per recorded cell."""
    env = data.get("env") or {}
    runs = data.get("runs") or [{}]
    newest = max(runs, key=lambda r: r.get("start") or 0)
    run_id = f"{COMPACT}:{data['implementation']}-{data['version']}:{newest.get('run_id')}"
    cells = [dict(zip(data["fields"], row)) for row in data["cells"]]
    run = {"type": "run", "schema": data["schema"], "run_id": run_id, "env": env, "args": newest.get("args"),
           "start": newest.get("start") or 0, "end": newest.get("end"), "exitstatus": newest.get("exitstatus"),
           "expected": [{"check": c["check"], "area": c["area"], "target": c["target"]} for c in cells],
           "runs": runs}
    records = [dict(c, type="check", run_id=run_id, env=env, time=newest.get("start") or 0)
               for c in cells if c["outcome"] != "missing"]
    return [run], records


def write(path, data):
    """Write a compact file atomically, one cell per line (so that a diff shows the cells that changed)."""
    head = {k: v for k, v in data.items() if k != "cells"}
    text = json.dumps(head, sort_keys=True)[:-1] + ', "cells": [\n'
    text += ",\n".join(json.dumps(row) for row in data["cells"]) + "\n]}\n"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def read(path):
    """A compact file's data, or None when `path` is not one (a raw run file, say)."""
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError:
            return None
    return data if isinstance(data, dict) and data.get("type") == COMPACT else None


def load_tree(directory):
    """Every run and record under `directory`, recursively: raw records (`run-*.json`, `*.jsonl`) and compact
    files, each expanded, all in one (runs, records) for `merge`."""
    runs, records = load_raw(directory)
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.json"), recursive=True)):
        if not os.path.basename(path).startswith("run-"):
            data = read(path)
            if data is not None:
                more_runs, more_records = expand(data)
                runs += more_runs
                records += more_records
    return runs, records


def update(records_dir, raw_dir):
    """Fold the raw records under `raw_dir` into the compact files under `records_dir`: for each implementation and
    version the raw records name, merge its committed file (if any) with them and rewrite it. Returns
    [(impl, version, before, after)], the two matrices of that version (before is None for a new version)."""
    raw_runs, raw_records = load_raw(raw_dir)
    versions = {((r.get("env") or {}).get("implementation", "?"), (r.get("env") or {}).get("version", "?"))
                for r in raw_runs}
    changes = []
    for impl, version in sorted(versions):
        path = os.path.join(records_dir, file_name(impl, version))
        old = read(path) if os.path.exists(path) else None
        runs, records = expand(old) if old else ([], [])
        before = merge(runs, records) if old else None
        mine = [r for r in raw_runs if ((r.get("env") or {}).get("implementation"),
                                        (r.get("env") or {}).get("version")) == (impl, version)]
        ids = {r["run_id"] for r in mine}
        after = _registered(merge(runs + mine, records + [r for r in raw_records if r.get("run_id") in ids]))
        write(path, compact(after, impl, version))
        changes.append((impl, version, before, after))
    return changes


def _registered(matrix):
    """`matrix` without the cells of checks the registry no longer has (a renamed or removed check)."""
    known = {check.id for check in catalog().checks}
    matrix.cells = {key: cell for key, cell in matrix.cells.items() if key[0] in known}
    matrix.checks = {check: area for check, area in matrix.checks.items() if check in known}
    return matrix


def differences(before, after):
    """The cells whose outcome differs between two matrices of the same version: [(check, target, old, new)], old
    None for a cell the first did not have."""
    old = {(check, column.target): cell.outcome for (check, column), cell in (before.cells.items() if before else ())}
    return sorted((check, column.target, old.get((check, column.target)), cell.outcome)
                  for (check, column), cell in after.cells.items()
                  if old.get((check, column.target)) != cell.outcome)


