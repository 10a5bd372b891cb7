"""The mutation self-check's own tests: the catalog is well-formed and applies to the installed transformers, a
mutant is applied to a copy that is the one imported (never to the installed package), the runner classifies, and
the JSON renders as markdown. The full catalog is run by `bert-conformance mutants`, not here."""

import argparse
import dataclasses
import json
import os
import pathlib
import re
import sys

import pytest
from packaging.specifiers import SpecifierSet

from conformance import mutants
from conformance.mutants import AREAS, MUTANTS, MUTANTS_BY_ID, PATHS, SUBSETS, MutantError, guard, runner
from conformance.mutants.catalog import AREA_PATHS, PATH_TARGETS
from conformance.registry import CHECKS

pytestmark = pytest.mark.harness

# The catalog targets the newest release; on older ones (the tox envs) only some mutants apply.
_INSTALLED = __import__("importlib.metadata").metadata.version("transformers")
NEWEST_ONLY = pytest.mark.skipif(int(_INSTALLED.split(".")[0]) < 5,
                                 reason=f"the mutant catalog is complete for 5.x; transformers {_INSTALLED} is older")

PACKAGE, VERSION = mutants.installed_package()
APPLICABLE = [m for m in MUTANTS if m.applies_to(VERSION)]


# --- the catalog --------------------------------------------------------------------------------------------------


def test_catalog_is_well_formed():
    assert len(MUTANTS) >= 30
    assert len({m.id for m in MUTANTS}) == len(MUTANTS)
    for m in MUTANTS:
        assert m.area in AREAS, m.id
        assert m.id.split(".")[0] == m.area, m.id
        assert m.bug and m.file and m.old and m.checks, m.id
        assert m.old != m.new, m.id
        SpecifierSet(m.versions)  # parses
        assert m.equivalent is None or len(m.equivalent) > 80, f"{m.id}: an equivalence needs its argument"
        assert m.path in PATHS, m.id


def test_every_path_is_covered_and_runs_on_its_targets():
    """Each path has mutants (three at least for the installed release's major version), and the suite command of
    a mutant runs its path's dtype and attention: the sdpa and float32 paths are killed on those targets."""
    assert set(AREA_PATHS) == set(AREAS) and set(AREA_PATHS.values()) <= set(PATHS) and set(PATH_TARGETS) <= set(PATHS)
    for path in PATHS:
        assert len([m for m in MUTANTS if m.path == path]) >= 3, path
    sdpa = [m for m in MUTANTS if m.path == "sdpa"]
    assert all((m.dtype, m.attn) == ("float64", "sdpa") for m in sdpa)
    assert all((m.dtype, m.attn) == ("float32", "eager") for m in MUTANTS if m.path == "float32")
    assert all((m.dtype, m.attn) == ("float64", "eager") for m in MUTANTS if m.path not in PATH_TARGETS)
    cmd = runner.suite_command(sdpa[0].checks, 5, dtype=sdpa[0].dtype, attn=sdpa[0].attn)
    assert cmd[cmd.index("--dtype") + 1] == "float64" and cmd[cmd.index("--attn") + 1] == "sdpa"
    assert MUTANTS_BY_ID["head.qa_clamp"].path == "eager-float64"
    assert MUTANTS_BY_ID["schedule.polynomial_lr_end_check"].path == "error"


def test_path_checks_select_checks_of_their_kind():
    """A mutant of the error, metamorphic or checkpoint path names only checks of that kind."""
    prefix = {"error": ("errors.", "schedule."), "metamorphic": ("metamorphic.",), "checkpoint": ("checkpoint.",)}
    for m in MUTANTS:
        if m.path in prefix:
            words = [w for w in re.split(r"[\s()]+", m.checks) if w and w not in ("or", "and", "not")]
            assert all(w.startswith(prefix[m.path]) for w in words), m.id


def test_every_area_is_covered():
    assert {m.area for m in MUTANTS} == set(AREAS)
    for area in AREAS:
        assert len([m for m in MUTANTS if m.area == area]) >= 3, area


@NEWEST_ONLY
def test_every_area_but_adamw_has_mutants_for_the_installed_release():
    assert {m.area for m in APPLICABLE} >= set(AREAS) - {"adamw"}
    assert {m.path for m in APPLICABLE} == set(PATHS)


def test_checks_select_registry_checks():
    """Each -k word names part of a registry check id, so no mutant selects nothing by a typo."""
    ids = [c.id for c in CHECKS]
    for m in MUTANTS:
        words = [w for w in re.split(r"[\s()]+", m.checks) if w and w not in ("or", "and", "not")]
        for word in words:
            assert any(word in check_id for check_id in ids), f"{m.id}: -k word {word!r} selects no check"


@pytest.mark.parametrize("mutant", APPLICABLE, ids=lambda m: m.id)
def test_applicable_mutant_matches_the_installed_source_once_and_compiles(mutant):
    path = PACKAGE / mutant.file
    source = path.read_text()
    assert source.count(mutant.old) == 1, f"{mutant.id}: {mutant.file} of transformers {VERSION}"
    compile(mutants.mutate_source(mutant, source), str(path), "exec")


def test_mutate_source_refuses_missing_or_ambiguous_text():
    m = dataclasses.replace(MUTANTS[0], old="x = 1\n", new="x = 2\n")
    assert mutants.mutate_source(m, "x = 1\ny = 0\n") == "x = 2\ny = 0\n"
    with pytest.raises(MutantError, match="found 0"):
        mutants.mutate_source(m, "y = 0\n")
    with pytest.raises(MutantError, match="found 2"):
        mutants.mutate_source(m, "x = 1\nx = 1\n")


def test_version_ranges_select():
    m = MUTANTS_BY_ID["adamw.bias_correction_dropped"]
    assert m.applies_to("4.49.0") and m.applies_to("4.4.2") and not m.applies_to("4.50.0")
    assert not MUTANTS_BY_ID["schedule.cosine_dead_code"].applies_to("4.36.0")
    assert MUTANTS_BY_ID["schedule.cosine_full_wave@4.4"].applies_to("4.36.0")


@NEWEST_ONLY
def test_subsets():
    quick = mutants.select(subset="quick")
    assert len(quick) >= 5 and len({m.area for m in quick}) >= 5 and len({m.path for m in quick}) >= 4
    assert all(m.applies_to(VERSION) and not m.equivalent for m in quick)
    assert [m.area for m in mutants.select(area="tying")] == ["tying"] * len(mutants.select(area="tying"))
    assert [m.id for m in mutants.select(only=["head.qa_clamp"])] == ["head.qa_clamp"]
    with pytest.raises(SystemExit):
        mutants.select(only=["no.such.mutant"])
    assert set(SUBSETS["quick"]) <= set(MUTANTS_BY_ID)


# --- applying and verifying the import -------------------------------------------------------------------------


def test_apply_mutates_a_copy_that_is_the_one_imported(tmp_path):
    mutant = MUTANTS_BY_ID["encoder.pooler_no_tanh"]
    root = tmp_path / "site"
    root.mkdir()
    path = mutants.apply(mutant, PACKAGE, root)
    original = PACKAGE / mutant.file
    assert mutant.new in path.read_text() and mutant.old not in path.read_text()
    assert mutant.old in original.read_text(), "the installed package must stay untouched"
    assert os.stat(path).st_ino != os.stat(original).st_ino
    assert not list((path.parent / "__pycache__").glob(f"{path.stem}.*.pyc")), "stale bytecode of the mutated module"

    imported = mutants.verify_import(mutants.mutant_env(root), root, cwd=tmp_path)
    assert imported.startswith(str(root))
    with pytest.raises(MutantError, match="not the transformers imported"):
        mutants.verify_import(mutants.mutant_env(tmp_path / "elsewhere"), root, cwd=tmp_path)


def test_apply_fails_loudly_when_the_text_is_missing(tmp_path):
    mutant = dataclasses.replace(MUTANTS_BY_ID["encoder.pooler_no_tanh"], old="no such source text")
    with pytest.raises(MutantError, match="exactly one occurrence"):
        mutants.apply(mutant, PACKAGE, tmp_path)


def test_guard_refuses_the_pristine_package(tmp_path, monkeypatch):
    """In the suite's process, the guard stops the run unless transformers comes from the mutated copy."""
    report = tmp_path / "guard.json"
    monkeypatch.setenv(mutants.GUARD_ENV, json.dumps({"root": str(tmp_path), "file": "x.py", "new": "y",
                                                      "report": str(report)}))
    with pytest.raises(pytest.UsageError, match="not from the mutated copy"):
        guard.pytest_sessionstart(None)
    assert json.loads(report.read_text())["problem"]


def test_run_mutant_kills_a_cheap_mutant():
    """End to end on one fast mutant: copy, mutate, guard, run one schedule check, classify as killed."""
    mutant = MUTANTS_BY_ID["schedule.constant_warmup_ahead"]
    result = mutants.run_mutant(mutant, PACKAGE, max_examples=5, timeout=120)
    assert result["status"] == "killed", result
    assert result["killed_by"] == "schedule.constant_with_warmup"
    assert "bert-mutant-" in result["imported"]


def test_timeout_kills_the_process_group(tmp_path):
    code, _ = runner.run_in_group([sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ), tmp_path, 1)
    assert code is None


# --- results and rendering -------------------------------------------------------------------------------------------


def _result(id, area, status, equivalent=None, killed_by=None, message=None, seconds=10.0, path=None,
            killed_on=None):
    return {"id": id, "area": area, "path": path or AREA_PATHS[area], "bug": f"bug of {id}", "file": "f.py",
            "checks": "k", "versions": ">=5.0", "equivalent": equivalent, "status": status, "killed_by": killed_by,
            "killed_on": killed_on, "message": message, "seconds": seconds}


def _data(results):
    areas, score = mutants.summarize(results)
    return {"type": "mutants", "schema": 1, "wall_s": 123.4, "mutants": results, "areas": areas,
            "paths": mutants.summarize_paths(results), "score": score,
            "environment": {"transformers": "5.24.0", "torch": "2.13.0", "python": "3.11.7", "max_examples": 100,
                            "dtype": "float64", "attention": "eager", "hypothesis_profile": "ci", "jobs": 1,
                            "cpus": 2, "path_targets": {"sdpa": "float64-sdpa", "float32": "float32-eager"}}}


RESULTS = [
    _result("head.a", "head", "killed", killed_by="head.masked_lm"),
    _result("head.b", "head", "survived", message="2 check(s) passed | 100 examples each"),
    _result("schedule.a", "schedule", "killed", killed_by="schedule.linear"),
    _result("schedule.dead", "schedule", "equivalent", equivalent="the edited function is shadowed " * 4),
    _result("adamw.a", "adamw", "not_applicable", seconds=None),
    _result("masking.a", "masking", "timeout", message="no verdict within 300 s"),
    _result("encoder.s", "encoder", "killed", path="sdpa", killed_by="encoder.bidirectional",
            killed_on="cpu-float64-sdpa"),
    _result("encoder.f", "encoder", "survived", path="float32", message="passed"),
]


def test_summarize_counts_and_ratios():
    areas, score = mutants.summarize(RESULTS)
    assert areas["head"]["kill_ratio"] == 0.5
    assert areas["schedule"]["kill_ratio"] == 1.0 and areas["schedule"]["declared_equivalent"] == 1
    assert areas["adamw"]["kill_ratio"] is None and areas["adamw"]["not_applicable"] == 1
    assert areas["masking"]["kill_ratio"] == 0.0
    assert areas["encoder"]["kill_ratio"] == 0.5
    assert score == {"killed": 3, "non_equivalent": 6, "ratio": 0.5}
    paths = mutants.summarize_paths(RESULTS)
    assert list(paths) == ["eager-float64", "sdpa", "float32", "subject"]
    assert paths["sdpa"]["kill_ratio"] == 1.0 and paths["float32"]["kill_ratio"] == 0.0
    assert paths["subject"]["killed_non_equivalent"] == 1 and paths["subject"]["not_applicable"] == 1
    unpathed = [{k: v for k, v in r.items() if k != "path"} for r in RESULTS[:2]]  # written before paths
    assert mutants.summarize_paths(unpathed) == {"eager-float64": paths["eager-float64"]}  # the area's path


def test_markdown_section_renders_the_json(tmp_path):
    path = tmp_path / "mutants.json"
    path.write_text(json.dumps(_data(RESULTS)))
    md = mutants.markdown_section(path)
    assert md.startswith("## Mutation self-check")
    assert "**Mutation score: 3/6 (50%)**" in md and "123 s" in md
    assert "the sdpa path: float64, sdpa attention" in md
    by_path = md.split("By path")[1].split("###")[0]
    assert "| sdpa " in by_path and "| float32 " in by_path and "| all " in by_path
    assert "100%" in [line for line in by_path.splitlines() if line.startswith("| sdpa ")][0]
    assert "0%" in [line for line in by_path.splitlines() if line.startswith("| float32 ")][0]
    assert "`encoder.bidirectional` (cpu-float64-sdpa)" in md.split("### Every mutant")[1]
    table = [line for line in md.splitlines() if line.startswith("| head ")]
    assert table and "50%" in table[0]
    assert "| adamw " in md and "n/a" in md
    not_killed = md.split("### Not killed")[1].split("###")[0]
    assert "`head.b` (survived)" in not_killed and "`masking.a` (timeout)" in not_killed
    assert "2 check(s) passed \\| 100 examples each" in not_killed  # a pipe must not break the markdown
    assert "`head.a`" not in not_killed and "`schedule.dead`" not in not_killed
    assert "the edited function is shadowed" in md.split("### Equivalent mutants")[1]
    assert "`head.masked_lm`" in md.split("### Every mutant")[1]


def test_markdown_section_without_survivors(tmp_path):
    path = tmp_path / "mutants.json"
    path.write_text(json.dumps(_data(RESULTS[:1])))
    md = mutants.markdown_section(path, heading="###")
    assert md.startswith("### Mutation self-check") and "None." in md and "Equivalent mutants" not in md
    old = _data(RESULTS[:1])
    del old["paths"], old["environment"]["path_targets"]  # results written before paths: no path table
    path.write_text(json.dumps(old))
    assert "By path" not in mutants.markdown_section(path) and "float64, eager attention" in \
        mutants.markdown_section(path)


def test_cli_parser():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    mutants.add_parser(sub)
    args = parser.parse_args(["mutants", "--subset", "quick", "--jobs", "2"])
    assert args.func is mutants.run and args.subset == "quick" and args.jobs == 2
    assert args.max_examples == 100 and args.timeout == 300 and args.out == os.path.join("reports", "mutants.json")


@NEWEST_ONLY
def test_run_writes_results_and_discounts_kills_by_checks_failing_on_the_baseline(tmp_path, monkeypatch, capsys):
    """`run` end to end with the subprocesses faked: a kill by a check that fails on the unmutated package too is
    an error, not a kill; the exit status says whether anything was left unkilled."""
    def fake_mutant(mutant, package_dir, max_examples, timeout, extra=(), keep_log=None):
        r = _result(mutant.id, mutant.area, "killed", killed_by=mutant.checks, killed_on="cpu-float64-eager")
        r.update(file=mutant.file, checks=mutant.checks, versions=mutant.versions, equivalent=mutant.equivalent)
        return r

    monkeypatch.setattr(runner, "run_mutant", fake_mutant)
    monkeypatch.setattr(runner, "run_baseline", lambda *a, **k: {
        "status": "fail", "checks": "...", "passed": 3, "failed": ["schedule.linear[cpu-float64-eager]"], "skipped": 0,
        "seconds": 1.0, "message": "..."})
    parser = mutants.add_arguments(argparse.ArgumentParser())
    out = tmp_path / "m.json"
    args = parser.parse_args(["--only", "head.qa_clamp", "schedule.linear_off_by_one", "--out", str(out)])
    assert mutants.run(args) == 1
    data = json.loads(out.read_text())
    status = {r["id"]: r["status"] for r in data["mutants"]}
    assert status == {"head.qa_clamp": "killed", "schedule.linear_off_by_one": "error"}
    assert data["score"] == {"killed": 1, "non_equivalent": 2, "ratio": 0.5}
    assert data["environment"]["transformers"] == str(VERSION)
    assert data["baseline"]["failed"] == ["schedule.linear[cpu-float64-eager]"]
    assert data["paths"]["eager-float64"]["killed_non_equivalent"] == 1 and data["paths"]["subject"]["error"] == 1
    assert "fails on the unmutated package" in capsys.readouterr().out
    assert "failing on the unmutated package: `schedule.linear[cpu-float64-eager]`" in mutants.markdown_section(out)


def test_baseline_runs_each_path_target_once_and_names_failures_by_target(tmp_path, monkeypatch):
    """One baseline pytest per (dtype, attention) of the selected mutants, each with its own -k; a failure is
    named check[target], so it spoils kills on that target only."""
    calls = []

    def fake_run(cmd, env, cwd, timeout):
        calls.append(cmd)
        dtype, attn = cmd[cmd.index("--dtype") + 1], cmd[cmd.index("--attn") + 1]
        failure = (f'<testcase name="test_check[encoder.bidirectional[cpu-{dtype}-{attn}]]"><failure message="x"/>'
                   f'</testcase>') if attn == "sdpa" else ""
        junit = cmd[cmd.index("--junitxml") + 1]
        pathlib.Path(junit).write_text(f'<testsuite><testcase name="test_check[a[cpu-{dtype}-{attn}]]"/>{failure}'
                                       "</testsuite>")
        return (1 if failure else 0), "output"

    monkeypatch.setattr(runner, "run_in_group", fake_run)
    chosen = [MUTANTS_BY_ID[i] for i in ("head.qa_clamp", "encoder.sdpa_mask_convention",
                                         "encoder.self_output_layernorm_eps", "schedule.linear_off_by_one")]
    baseline = runner.run_baseline(chosen, PACKAGE, max_examples=3)
    targets = sorted((c[c.index("--dtype") + 1], c[c.index("--attn") + 1]) for c in calls)
    assert targets == [("float32", "eager"), ("float64", "eager"), ("float64", "sdpa")]
    assert baseline["status"] == "fail" and baseline["passed"] == 3
    assert baseline["failed"] == ["encoder.bidirectional[cpu-float64-sdpa]"]
    assert baseline["checks"]["float64-eager"] == "(head.question_answering) or (schedule.linear)"


def test_check_sources_flags_a_release_inside_the_range_without_the_text(tmp_path):
    m = MUTANTS_BY_ID["head.qa_clamp"]  # >=4.17
    for version, text in (("4.6.0", "other"), ("4.17.0", m.old), ("5.0.0", "other")):
        path = tmp_path / version / "transformers" / m.file
        path.parent.mkdir(parents=True)
        path.write_text(text)
    versions, rows, problems = mutants.check_sources(tmp_path, [m])
    assert versions == ["4.6.0", "4.17.0", "5.0.0"] and rows == [(m.id, [0, 1, 0])]
    assert problems == ["head.qa_clamp: transformers 5.0.0 is in >=4.17 but holds its old text 0 times"]


def test_markdown_section_summarises_runs_against_other_releases(tmp_path):
    main, other = tmp_path / "m.json", tmp_path / "old.json"
    main.write_text(json.dumps(_data(RESULTS[:1])))
    old = _data([_result("adamw.a", "adamw", "killed", killed_by="optim.transformers.AdamW"),
                 _result("adamw.b", "adamw", "survived", message="passed")])
    old["environment"]["transformers"] = "4.49.0"
    other.write_text(json.dumps(old))
    md = mutants.markdown_section(main, others=[other])
    assert "Against transformers 4.49.0: 1/2 killed (adamw 1/2; by path: subject 1/2: `adamw.a`, `adamw.b`); not " \
           "killed: `adamw.b` (survived); wall time 123 s." in md
    del old["paths"]  # results written before paths
    other.write_text(json.dumps(old))
    assert "(adamw 1/2: `adamw.a`, `adamw.b`)" in mutants.markdown_section(main, others=[other])
