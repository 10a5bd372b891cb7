"""The run records and the compatibility report generator.

Record format: real runs of the suite through the plugin (one without xdist against the installed transformers;
one under xdist against an adapter with a broken schedule, a schedule that kills its worker and a missing one).
Generator: synthetic records of two versions (`write_synthetic_records`, also used by the browser test).
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conformance import drift
from conformance.adapters.transformers import TransformersAdapter
from conformance.report import html, load_tree as load, markdown, merge, version_pages, write_reports

pytestmark = pytest.mark.harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# subprocesses import this checkout (and this module, for its adapter), wherever the package was installed from
# the subprocess runs are runs of their own: not workers of an outer `pytest -n` (whose PYTEST_XDIST_* they inherit)
ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
ENV["PYTHONPATH"] = os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])
OLD, NEW = "5.3.0", "5.24.0"  # string order would put 5.24.0 first
T64, T32 = "cpu-float64-eager", "cpu-float32-eager"
COUNTEREXAMPLE = '{"config":{"hidden_size":4},"head":"BertForMaskedLM","weights_seed":7}'
REPRODUCE = f"python -m conformance repro head.masked_lm {T64} '{COUNTEREXAMPLE}'"
MESSAGE = "check head.masked_lm on cpu-float64-eager: logits: mismatched elements 1/12 <b>&'x'\n" + REPRODUCE
NA_REASON = "not applicable: transformers 5.24.0 has no transformers.AdamW"

# check -> (area, {version: {target: outcome}}); a pair listed but "missing" is expected with no record
SYNTHETIC = {
    "encoder.bidirectional": ("encoder", {OLD: {T64: "pass", T32: "pass"}, NEW: {T64: "pass", T32: "pass"}}),
    "head.masked_lm": ("head", {OLD: {T64: "pass", T32: "pass"}, NEW: {T64: "fail", T32: "pass"}}),
    "loss.sequence_classification.int32_labels": ("loss", {OLD: {T64: "explained"}, NEW: {T64: "explained"}}),
    "schedule.linear": ("schedule", {OLD: {T64: "pass"}, NEW: {T64: "missing"}}),
    "optim.transformers.AdamW": ("optim", {OLD: {T64: "pass"}, NEW: {T64: "not_applicable"}}),
}
DIFFERING = {"head.masked_lm", "optim.transformers.AdamW"}


def env(version):
    return {"implementation": "transformers", "version": version, "torch": "2.13.0+cpu", "numpy": "2.4.6",
            "python": "3.11.7", "platform": "Linux", "devices": {"cpu": "x86_64"}, "hypothesis_profile": "ci",
            "hypothesis_seed": "derandomized", "max_examples": 20}


def synthetic_record(check, area, version, target, outcome, run_id, time):
    """A check record as the plugin writes it."""
    device, dtype, attn = target.split("-")
    record = {"type": "check", "schema": 1, "run_id": run_id, "worker": "gw0", "check": check, "area": area,
              "head": "BertModel", "target": target, "device": device, "dtype": dtype, "attn": attn,
              "outcome": outcome, "examples": 20, "max_error_ratio": 0.0123, "failure_ratio": None,
              "tolerance": {"rtol": 1e-12, "atol": 1e-12}, "explained": [], "duration_s": 0.5, "message": None,
              "traceback": None, "counterexample": None, "reproduce": None, "env": env(version), "time": time}
    if outcome == "fail":
        record.update(failure_ratio=340.0, message=MESSAGE, counterexample=COUNTEREXAMPLE, reproduce=REPRODUCE)
    if outcome == "explained":
        record.update(explained=["int32-class-labels-refused"], max_error_ratio=0.0)
    if outcome == "not_applicable":
        record.update(message=NA_REASON, examples=None, max_error_ratio=None)
    return record


def write_synthetic_records(root):
    """Two versions' records under `root`/transformers-<version>/, as two runs with xdist workers would leave
    them; the newer run's worker died before recording schedule.linear."""
    for i, version in enumerate((OLD, NEW)):
        folder = os.path.join(root, f"transformers-{version}")
        os.makedirs(folder)
        run_id = f"run-{version}"
        expected = [{"check": c, "area": area, "target": t}
                    for c, (area, outcomes) in SYNTHETIC.items() for t in outcomes[version]]
        with open(os.path.join(folder, f"run-{run_id}.json"), "w") as f:
            json.dump({"type": "run", "schema": 1, "run_id": run_id, "env": env(version), "args": [],
                       "start": 1000.0 * (i + 1), "end": 1000.0 * (i + 1) + 60, "exitstatus": 1,
                       "expected": expected}, f)
        n = 0
        for check, (area, outcomes) in SYNTHETIC.items():
            for target, outcome in outcomes[version].items():
                if outcome == "missing":
                    continue
                n += 1
                with open(os.path.join(folder, f"records-gw{n % 2}.jsonl"), "a") as f:
                    record = synthetic_record(check, area, version, target, outcome, run_id, 1000.0 * (i + 1) + n)
                    f.write(json.dumps(record) + "\n")
    return root


@pytest.fixture
def matrix(tmp_path):
    return merge(*load(write_synthetic_records(tmp_path / "records")))


# --- the generator on synthetic records ---------------------------------------------------------------------------


def test_columns_in_version_order(matrix):
    assert [(c.version, c.target) for c in matrix.columns] == [(OLD, T64), (OLD, T32), (NEW, T64), (NEW, T32)]
    assert list(matrix.checks) == [c for c in SYNTHETIC]  # areas and checks in registry order


def test_outcome_cells(matrix):
    for check, (area, outcomes) in SYNTHETIC.items():
        for version, targets in outcomes.items():
            for target, outcome in targets.items():
                cell = next(c for (ch, col), c in matrix.cells.items()
                            if ch == check and (col.version, col.target) == (version, target))
                assert (cell.area, cell.outcome) == (area, outcome)
    text = markdown(matrix)
    assert "| encoder.bidirectional " in text and "pass 0.012" in text
    assert "Δ fail 3.4e+02" in text


def test_changed_since_previous_version(matrix):
    changed = {(check, col.version, col.target): cell.previous for (check, col), cell in matrix.cells.items()
               if cell.changed}
    assert changed == {("head.masked_lm", NEW, T64): (OLD, "pass"),
                       ("optim.transformers.AdamW", NEW, T64): (OLD, "pass")}
    assert {c for c in matrix.checks if matrix.differs(c)} == DIFFERING  # missing is no change


def test_missing_worker(matrix, tmp_path):
    cells = [c for c in matrix.cells.values() if c.outcome == "missing"]
    assert [(c.check, c.column.version, c.column.target, c.run_id) for c in cells] == [
        ("schedule.linear", NEW, T64, f"run-{NEW}")]
    text = markdown(matrix)
    assert "### Missing results" in text
    assert re.search(r"\| transformers 5\.24\.0 \| schedule\.linear\s+\| cpu-float64-eager \| run-5\.24\.0", text)
    page = html(matrix)
    assert 'class="full o-missing"' in page and "never recorded: its worker crashed or was killed" in page


def test_newest_run_decides(tmp_path):
    root = write_synthetic_records(tmp_path / "records")
    folder = root / f"transformers-{NEW}"
    # a later run of the same version fixes head.masked_lm and is killed before recording encoder.bidirectional
    expected = [{"check": "head.masked_lm", "area": "head", "target": T64},
                {"check": "encoder.bidirectional", "area": "encoder", "target": T64}]
    (folder / "run-later.json").write_text(json.dumps({"type": "run", "schema": 1, "run_id": "later", "env": env(NEW),
                                                       "start": 5000.0, "end": None, "expected": expected}))
    with open(folder / "records-gw1.jsonl", "a") as f:
        f.write(json.dumps(synthetic_record("head.masked_lm", "head", NEW, T64, "pass", "later", 5001.0)) + "\n")
        f.write('{"type": "check", "check": "encoder.bidi')  # a line cut short by the kill
    m = merge(*load(root))
    outcome = {(check, col.version, col.target): cell.outcome for (check, col), cell in m.cells.items()}
    assert outcome["head.masked_lm", NEW, T64] == "pass"
    assert outcome["encoder.bidirectional", NEW, T64] == "missing"
    assert outcome["encoder.bidirectional", NEW, T32] == "pass"  # not expected by the later run: kept
    assert "- run later (transformers 5.24.0) did not finish: it is still running or was killed" in markdown(m)


def test_failing_check_with_counterexample(matrix):
    text = markdown(matrix)
    details = text[text.index("## Details"):]
    assert "#### fail: head.masked_lm on transformers 5.24.0 cpu-float64-eager" in details
    assert "was pass in 5.3.0" in details
    assert f"```json\n{COUNTEREXAMPLE}\n```" in details
    assert f"```bash\n{REPRODUCE}\n```" in details
    page = html(matrix)
    assert f'<pre class="counterexample">{COUNTEREXAMPLE.replace(chr(34), "&quot;")}</pre>' in page
    assert "python -m conformance repro head.masked_lm cpu-float64-eager &#x27;{&quot;config&quot;" in page
    assert "&lt;b&gt;&amp;&#x27;x&#x27;" in page and "<b>&'x'" not in page  # escaped


def test_not_applicable(matrix):
    text = markdown(matrix)
    assert "| optim.transformers.AdamW " in text and "Δ not_applicable" in text
    assert "### Not applicable and skipped" in text
    # the table groups the versions a reason holds for, the version in the reason read as VERSION
    assert (f"| transformers | not_applicable | 1: optim.transformers.AdamW | {NEW} | "
            + NA_REASON.replace(NEW, "VERSION")) in text
    page = html(matrix)
    assert 'class="full o-not_applicable changed"' in page and NA_REASON in page


def test_summary_and_explained(matrix):
    text = markdown(matrix)
    summary = text[text.index("## Summary"):text.index("## Matrix")]
    # pass, explained, known_bug, fail, error, not_applicable, skipped, missing
    assert re.search(r"\| transformers\s+\| 5\.24\.0\s+\| 3\s+\| 1\s+\|\s+\| 1\s+\|\s+\| 1\s+\|\s+\| 1\s+\|", summary)
    assert "seed derandomized" in summary
    assert "`int32-class-labels-refused` (loss.sequence_classification.int32_labels; 5.3.0, 5.24.0)" in text


def test_drift_catalog(matrix, monkeypatch):
    monkeypatch.setattr(drift, "CHANGES", [])
    assert "No behaviour changes recorded." in markdown(matrix)
    assert "No behaviour changes recorded." in html(matrix)
    change = drift.Change(id="qa-clamp", since="5.24.0", area="head", title="QA positions clamped",
                          old="old rule", new="new rule", checks=("head.question_answering",),
                          example=lambda: {"input": "start_positions=[9]", "old": "loss 1.5", "new": "loss 0.7"})
    monkeypatch.setattr(drift, "CHANGES", [change])
    text = markdown(matrix)
    assert "| qa-clamp | 5.24.0 | head | QA positions clamped | head.question_answering |" in text
    assert "### qa-clamp: QA positions clamped" in text and "input: start_positions=[9]\nold: loss 1.5" in text
    assert 'id="change-qa-clamp"' in html(matrix)


def test_many_versions_get_a_compact_matrix(tmp_path):
    root = tmp_path / "records"
    os.makedirs(root)
    for i, version in enumerate(["5.0.0", "5.1.0", "5.2.0"]):
        folder = root / f"transformers-{version}"
        folder.mkdir()
        with open(folder / "records-main.jsonl", "w") as f:
            for j, target in enumerate([T64, T32, "cpu-float64-sdpa"]):
                outcome = "fail" if (version, target) == ("5.2.0", T32) else "pass"
                f.write(json.dumps(synthetic_record("head.masked_lm", "head", version, target, outcome, None,
                                                    i * 10 + j)) + "\n")
    m = merge(*load(root))
    text = markdown(m)
    assert "## Outcome by version" in text and "## Matrix by version" not in text
    assert "| head.masked_lm | ok ×3 | ok ×3 | Δ fail 1 · ok 2 |" in text
    pages = version_pages(m)
    assert sorted(pages) == [f"versions/transformers-{v}.md" for v in ("5.0.0", "5.1.0", "5.2.0")]
    assert all(f"({name})" in text for name in pages)  # the main page links every version page
    assert "| head | head.masked_lm | pass 0.012 | pass 0.012 | Δ fail 3.4e+02 |" in pages["versions/transformers-5.2.0.md"]


def test_html_is_self_contained(matrix):
    page = html(matrix)
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "<script src" not in page and 'rel="stylesheet"' not in page
    assert page.count("<style>") == 1 and page.count("<script>") == 1


def test_empty_records(tmp_path):
    (tmp_path / "records").mkdir()
    md, page = write_reports(tmp_path / "records", tmp_path / "out")
    assert "No records found." in open(md).read() and "No records found." in open(page).read()


def test_cli_report(tmp_path):
    write_synthetic_records(tmp_path / "records")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "conformance", "report", "--records", str(tmp_path / "records"),
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path, timeout=120, env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == [f"report written to {out / 'COMPATIBILITY.md'}",
                                           f"report written to {out / 'index.html'}"]
    assert "#### fail: head.masked_lm" in (out / "COMPATIBILITY.md").read_text()
    assert "<!DOCTYPE html>" in (out / "index.html").read_text()
    proc = subprocess.run([sys.executable, "-m", "conformance", "report", "--records", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, env=ENV)
    assert proc.returncode != 0 and "no records folder" in proc.stderr


def test_cli_report_without_torch(tmp_path):
    """`bert-conformance report` needs neither torch nor transformers: it reads records, the registry and the
    drift catalog."""
    write_synthetic_records(tmp_path / "records")
    out = tmp_path / "out"
    code = ("import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "
            "from conformance.cli import main; "
            f"sys.exit(main(['report', '--records', {str(tmp_path / 'records')!r}, '--out', {str(out)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "#### fail: head.masked_lm" in (out / "COMPATIBILITY.md").read_text()
    assert "<!DOCTYPE html>" in (out / "index.html").read_text()


# --- records written by real runs ---------------------------------------------------------------------------------


class BrokenSchedules(TransformersAdapter):
    """transformers with three schedule faults: linear's learning rates 1% high (a fail), constant kills its
    worker (missing), polynomial absent (not applicable); constant_with_warmup is left as it is (a pass)."""

    def schedule_names(self):
        return [n for n in super().schedule_names() if n != "polynomial"]

    def lr_curve(self, name, *args, **kwargs):
        if name == "constant":
            os._exit(3)
        curve = super().lr_curve(name, *args, **kwargs)
        return (np.asarray(curve) * 1.01).tolist() if name == "linear" else curve


def run_suite(report_dir, *args):
    """Run the conformance suite in a subprocess from the repository root, writing records to `report_dir`."""
    command = [sys.executable, "-m", "pytest", "conformance/suite", "-q", "-p", "no:cacheprovider",
               "-p", "no:benchmark", "--hypothesis-profile", "ci", "--report-dir", str(report_dir), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=ENV)


def read_run(report_dir):
    runs, records = load(str(report_dir))
    assert len(runs) == 1
    return runs[0], {(r["check"], r["target"]): r for r in records}


RECORD_KEYS = {"type", "schema", "run_id", "worker", "check", "area", "head", "target", "device", "dtype", "attn",
               "outcome", "examples", "max_error_ratio", "failure_ratio", "tolerance", "explained", "known_bugs",
               "duration_s", "message", "traceback", "counterexample", "reproduce", "env", "time", "peak_rss_mb"}
ENV_KEYS = {"implementation", "version", "torch", "numpy", "python", "platform", "devices", "hypothesis_profile",
            "hypothesis_seed", "max_examples", "commit"}


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("plain")
    proc = run_suite(report_dir, "-k", "schedule.linear", "--max-examples", "3")
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]  # 1: this version's schedule fails
    return report_dir


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("broken")
    proc = run_suite(report_dir, "-n", "2", "--max-examples", "10", "--adapter", "test_report:BrokenSchedules",
                     "-k", "schedule.linear or schedule.constant or schedule.polynomial")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "crashed" in proc.stdout, proc.stdout[-3000:]
    return report_dir


def test_record_format(plain_run):
    run, records = read_run(plain_run)
    assert set(os.listdir(plain_run)) == {f"run-{run['run_id']}.json", "records-main.jsonl"}
    assert run["type"] == "run" and run["schema"] == 1
    assert run["start"] <= run["end"] and set(run["env"]) == ENV_KEYS
    assert run["env"]["implementation"] == "transformers" and run["env"]["hypothesis_profile"] == "ci"
    assert run["env"]["hypothesis_seed"] == "derandomized" and run["env"]["max_examples"] == 3
    assert run["expected"] == [{"check": "schedule.linear", "area": "schedule", "target": T64}]
    record = records["schedule.linear", T64]
    assert set(record) == RECORD_KEYS
    assert record["run_id"] == run["run_id"] and record["worker"] == "main" and record["env"] == run["env"]
    assert record["examples"] >= 1 and record["duration_s"] >= 0 and 50 < record["peak_rss_mb"] < 8192
    # the installed version passes (the usual case) or fails it: then with a counterexample and a repro command
    assert record["outcome"] in ("pass", "fail") and run["exitstatus"] == (record["outcome"] == "fail")
    assert (record["counterexample"] is not None) == (record["reproduce"] is not None) == (record["outcome"] == "fail")
    assert record["max_error_ratio"] <= 1 and record["tolerance"] == {"rtol": 1e-12, "atol": 1e-12}


def test_records_under_xdist_with_a_crash(broken_run):
    run, records = read_run(broken_run)
    expected = {(p["check"], p["target"]) for p in run["expected"]}
    assert expected == {(f"schedule.{n}", T64) for n in ("constant", "constant_with_warmup", "linear", "polynomial")}
    assert run["exitstatus"] == 1 and run["end"] is not None
    assert set(records) == expected - {("schedule.constant", T64)}  # the crashed test left no record
    assert {r["worker"] for r in records.values()} <= {"gw0", "gw1", "gw2", "gw3"}
    assert records["schedule.polynomial", T64]["outcome"] == "not_applicable"
    assert records["schedule.polynomial", T64]["message"].startswith("not applicable: transformers")
    assert records["schedule.constant_with_warmup", T64]["outcome"] == "pass"
    cells = {check: cell for (check, _), cell in merge(*load(str(broken_run))).cells.items()}
    assert cells["schedule.constant"].outcome == "missing"


def test_failure_record_reproduces(broken_run):
    _, records = read_run(broken_run)
    record = records["schedule.linear", T64]
    assert record["outcome"] == "fail" and record["failure_ratio"] > 1
    case = json.loads(record["counterexample"])
    assert case["subject"] == "linear"
    assert "lr[step, group]" in record["message"] and "reproduce:" in record["message"]
    prefix = "python -m conformance --adapter test_report:BrokenSchedules repro schedule.linear cpu-float64-eager '"
    assert record["reproduce"] == prefix + record["counterexample"] + "'"
    proc = subprocess.run(record["reproduce"], shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(ENV, PATH=os.path.dirname(sys.executable) + os.pathsep + ENV["PATH"]))
    assert proc.returncode == 1 and "FAIL lr[step, group]" in proc.stdout, proc.stdout + proc.stderr
