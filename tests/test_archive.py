"""The committed records (`conformance.report.archive`): compact files that round-trip, runs folded into them,
record trees from several machines merged, `run` keeping every committed version, and the committed report's
shape (a compact file per tox env, COMPATIBILITY.md within its budget)."""

import configparser
import json
import os
import shutil
import subprocess
import sys

import pytest

from conformance.cli import summary
from conformance.report import load_tree, merge, write_reports
from conformance.report.archive import compact, differences, expand, file_name, read, update, write
from conformance.report.markdown_page import MAX_MAIN_BYTES
from test_report import ENV, NEW, OLD, ROOT, T32, T64, synthetic_record, write_synthetic_records

pytestmark = pytest.mark.harness

COMMITTED = os.path.join(ROOT, "reports", "records")


def outcomes(matrix):
    return {(check, column.impl, column.version, column.target): (cell.outcome, cell.ratio)
            for (check, column), cell in matrix.cells.items()}


def compact_tree(matrix, folder):
    for impl, version in matrix.versions:
        write(os.path.join(folder, file_name(impl, version)), compact(matrix, impl, version))
    return folder


def test_round_trip(tmp_path):
    """A matrix written as compact files and read back has the same cells, `missing` ones included."""
    raw = merge(*load_tree(write_synthetic_records(tmp_path / "raw")))
    back = merge(*load_tree(compact_tree(raw, tmp_path / "compact")))
    assert outcomes(back) == outcomes(raw)
    assert ("schedule.linear", "transformers", NEW, T64) in outcomes(back)  # the missing cell stays missing
    assert outcomes(back)["schedule.linear", "transformers", NEW, T64][0] == "missing"
    failing = back.cells["head.masked_lm", next(c for c in back.columns if (c.version, c.target) == (NEW, T64))]
    assert failing.record["reproduce"] and failing.record["counterexample"] and failing.previous == (OLD, "pass")


def test_compact_file_is_one_line_per_cell(tmp_path):
    raw = merge(*load_tree(write_synthetic_records(tmp_path / "raw")))
    path = compact_tree(raw, tmp_path / "compact") / file_name("transformers", NEW)
    lines = path.read_text().splitlines()
    data = read(str(path))
    assert data["implementation"] == "transformers" and data["version"] == NEW and data["env"]["version"] == NEW
    assert len(lines) == len(data["cells"]) + 2 and all(line.startswith("[") for line in lines[1:-1])
    assert read(str(next((tmp_path / "raw").rglob("run-*.json")))) is None  # a raw run file is not compact


def raw_run(folder, version, checks, start, outcome="pass", impl="transformers"):
    """A raw run of `checks` (check -> area) on T64 and T32 of `impl`, as the plugin writes it."""
    os.makedirs(folder)
    run_id = f"run-{start}"
    expected = [{"check": c, "area": a, "target": t} for c, a in checks.items() for t in (T64, T32)]
    env = {"implementation": impl, "version": version}
    with open(os.path.join(folder, f"run-{run_id}.json"), "w") as f:
        json.dump({"type": "run", "schema": 1, "run_id": run_id, "env": env, "args": [], "start": start,
                   "end": start + 1, "exitstatus": 0, "expected": expected}, f)
    with open(os.path.join(folder, "records-main.jsonl"), "w") as f:
        for pair in expected:
            record = synthetic_record(pair["check"], pair["area"], version, pair["target"], outcome, run_id, start)
            f.write(json.dumps(dict(record, env=env)) + "\n")
    return folder


def test_update_folds_a_subset_run(tmp_path):
    """A run of one check replaces only that check's cells of its version; other versions' files are untouched."""
    records = tmp_path / "records"
    checks = {"encoder.bidirectional": "encoder", "head.masked_lm": "head"}
    [(impl, version, before, after)] = update(str(records), str(raw_run(tmp_path / "a", NEW, checks, 100)))
    assert before is None and {cell.outcome for cell in after.cells.values()} == {"pass"}
    other = records / file_name("transformers", OLD)
    update(str(records), str(raw_run(tmp_path / "b", OLD, checks, 150)))
    stamp = other.read_text()
    [(_, _, before, after)] = update(str(records), str(raw_run(tmp_path / "c", NEW, {"head.masked_lm": "head"}, 200,
                                                                 outcome="fail")))
    assert differences(before, after) == [("head.masked_lm", T32, "pass", "fail"), ("head.masked_lm", T64, "pass", "fail")]
    cells = outcomes(merge(*load_tree(str(records))))
    assert cells["encoder.bidirectional", "transformers", NEW, T64][0] == "pass"  # kept from the first run
    assert cells["head.masked_lm", "transformers", NEW, T64][0] == "fail"
    assert other.read_text() == stamp
    assert len(read(str(records / file_name("transformers", NEW)))["runs"]) == 2


def test_a_port_gets_its_own_file(tmp_path):
    """`run --adapter` of another implementation files its records under that implementation's name and version,
    beside transformers' records, which it leaves alone."""
    records = tmp_path / "records"
    update(str(records), str(raw_run(tmp_path / "a", NEW, {"head.masked_lm": "head"}, 100)))
    stamp = (records / file_name("transformers", NEW)).read_text()
    [(impl, version, _, _)] = update(str(records), str(raw_run(tmp_path / "b", "0.6.2", {"head.masked_lm": "head"}, 200,
                                                                impl="my port")))
    assert (impl, version) == ("my port", "0.6.2") and (records / "my_port-0.6.2.json").exists()
    assert (records / file_name("transformers", NEW)).read_text() == stamp
    assert {(c.impl, c.version) for c in merge(*load_tree(str(records))).columns} == {("transformers", NEW),
                                                                                     ("my port", "0.6.2")}


def test_update_drops_checks_the_registry_no_longer_has(tmp_path):
    records = tmp_path / "records"
    update(str(records), str(raw_run(tmp_path / "a", NEW, {"head.masked_lm": "head", "gone.check": "gone"}, 100)))
    assert {row[0] for row in read(str(records / file_name("transformers", NEW)))["cells"]} == {"head.masked_lm"}


def test_trees_from_two_machines_merge(tmp_path):
    """CI's fan-out: each job uploads its version's compact file; `report` merges the downloaded trees, and where
    two machines ran the same version the newer run decides."""
    checks = {"head.masked_lm": "head"}
    update(str(tmp_path / "m1"), str(raw_run(tmp_path / "r1", OLD, checks, 100)))
    update(str(tmp_path / "m1"), str(raw_run(tmp_path / "r2", NEW, checks, 110)))
    update(str(tmp_path / "m2"), str(raw_run(tmp_path / "r3", NEW, checks, 300, outcome="fail")))
    shutil.copytree(tmp_path / "m1", tmp_path / "all" / "job-1")
    shutil.copytree(tmp_path / "m2", tmp_path / "all" / "job-2")
    md, _ = write_reports(tmp_path / "all", tmp_path / "out")
    cells = outcomes(merge(*load_tree(str(tmp_path / "all"))))
    assert cells["head.masked_lm", "transformers", OLD, T64][0] == "pass"
    assert cells["head.masked_lm", "transformers", NEW, T64][0] == "fail"
    assert os.path.exists(tmp_path / "out" / "versions" / f"transformers-{OLD}.md")
    proc = subprocess.run([sys.executable, "-m", "conformance", "merge", str(tmp_path / "r3"), "--records",
                           str(tmp_path / "m1")], capture_output=True, text=True, cwd=tmp_path, timeout=120, env=ENV)
    assert proc.returncode == 0 and f"transformers {NEW}: 2 cell(s) changed, 2 in all" in proc.stdout, proc.stderr


def test_run_summary(tmp_path):
    checks = {"head.masked_lm": "head"}
    first = update(str(tmp_path / "records"), str(raw_run(tmp_path / "a", NEW, checks, 100)))
    second = update(str(tmp_path / "records"), str(raw_run(tmp_path / "b", NEW, checks, 200, outcome="fail")))
    assert summary(first, ["r.md"]).splitlines() == [f"transformers {NEW}: 2 pass (cells)",
                                                     "  first records of this version", "report: r.md"]
    text = summary(second, ["r.md"])
    assert f"head.masked_lm [{T64}]: pass -> fail" in text and "2 fail (cells)" in text


def test_run_keeps_every_committed_version(tmp_path):
    """A fresh clone's `bert-conformance run` (here of one check) folds into the committed records: the report
    still has every committed version, and pytest runs without assertion-rewrite warnings."""
    committed = sorted(f for f in os.listdir(COMMITTED) if f.endswith(".json")) if os.path.isdir(COMMITTED) else []
    if not committed:
        pytest.skip("no committed records")
    shutil.copytree(COMMITTED, tmp_path / "records")
    proc = subprocess.run([sys.executable, "-m", "conformance", "run", "--report-dir", str(tmp_path), "--workers",
                           "0", "-k", "schedule.linear", "--max-examples", "3", "-p", "no:randomly"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, env=ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "PytestAssertRewriteWarning" not in proc.stdout + proc.stderr
    assert f"report: {tmp_path / 'COMPATIBILITY.md'}" in proc.stdout
    matrix = merge(*load_tree(str(tmp_path / "records")))
    assert sorted(file_name(i, v) for i, v in matrix.versions) == committed
    text = (tmp_path / "COMPATIBILITY.md").read_text()
    assert all(f"[{v}](versions/" in text for _, v in matrix.versions)


def tox_versions():
    config = configparser.ConfigParser(interpolation=None)
    config.read(os.path.join(ROOT, "tox.ini"))
    return sorted(s.split(":tf-")[1] for s in config.sections() if s.startswith("testenv:tf-"))


def test_committed_records_cover_every_tox_env():
    """The repository keeps a compact record file for every release env of tox.ini."""
    missing = [v for v in tox_versions() if not os.path.exists(os.path.join(COMMITTED, file_name("transformers", v)))]
    assert not missing, f"no committed records for {missing}: run `tox -e " + ",".join(f"tf-{v}" for v in missing) + "`"


def test_committed_report_fits_its_budget():
    """COMPATIBILITY.md stays readable: summary, drift catalog and differences within MAX_MAIN_BYTES; the
    per-version matrices live in reports/versions/."""
    path = os.path.join(ROOT, "reports", "COMPATIBILITY.md")
    size = os.path.getsize(path)
    assert size <= MAX_MAIN_BYTES, f"COMPATIBILITY.md is {size} bytes, over its budget of {MAX_MAIN_BYTES}"
    for version in tox_versions():
        assert os.path.exists(os.path.join(ROOT, "reports", "versions", f"transformers-{version}.md")), version


def test_expand_marks_every_cell_expected():
    data = {"type": "compact", "schema": 2, "implementation": "x", "version": "1", "env": {}, "runs": [],
            "fields": ["check", "area", "target", "outcome"],
            "cells": [["a.b", "a", T64, "pass"], ["a.c", "a", T64, "missing"]]}
    [run], records = expand(data)
    assert [p["check"] for p in run["expected"]] == ["a.b", "a.c"] and [r["check"] for r in records] == ["a.b"]
