"""The runner: run the baseline and each mutant's checks in a sandboxed pytest, classify the outcome from its JUnit
XML, summarise per area, and write the JSON results (`run`)."""

import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .catalog import AREA_PATHS, AREAS, MUTANTS, PATH_TARGETS, PATHS, SUBSETS
from .render import render_text
from .sandbox import MutantError, apply, installed_package, mutant_env, project_root, verify_import

SCHEMA = 1
GUARD_PLUGIN = "conformance.mutants.guard"  # the module of the guard, loaded into the sandboxed pytest with -p


def suite_command(checks, max_examples, python=sys.executable, junit=None, extra=(), first_failure=True,
                  dtype="float64", attn="eager"):
    """The pytest command line that runs the checks selected by `checks` on the `dtype` and `attn` targets against
    whatever transformers is first on the import path (stopping at the first failure unless `first_failure` is
    False)."""
    cmd = [python, "-m", "pytest", "--pyargs", "conformance.suite", "-q", "-p", "no:cacheprovider", "-p",
           "no:randomly", "-p", GUARD_PLUGIN] + (["-x"] if first_failure else []) + [
           "--max-examples", str(max_examples), "--hypothesis-profile", "ci", "-k", checks, "--dtype", dtype,
           "--attn", attn, "-o", "addopts=", "-W", "ignore"]
    if junit:
        cmd += ["--junitxml", str(junit)]
    return cmd + list(extra)


def _junit(path, failures=None):
    """(passed, failed, skipped, first failed: (test name, seconds, message) or None) from a JUnit XML file; every
    failed test's name is appended to `failures` if given."""
    passed = failed = skipped = 0
    first = None
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return 0, 0, 0, None
    for case in tree.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed += 1
            if failures is not None:
                failures.append(case.get("name", ""))
            if first is None:
                message = (bad.get("message") or bad.text or "").strip()
                first = (case.get("name", ""), float(case.get("time") or 0), message)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, first


def _first_lines(message, lines=3, width=600):
    """The head of a failure message: the check, then the first mismatches."""
    text = " / ".join(line.strip() for line in (message or "").splitlines()[:lines] if line.strip())
    return (text[:width] + "...") if len(text) > width else text or None


def _check_id(test_name):
    """`test_check[head.masked_lm[cpu-float64-eager]]` -> `head.masked_lm`."""
    inner = test_name.partition("[")[2]
    return inner.rpartition("[")[0] or test_name


def _target_id(test_name):
    """`test_check[head.masked_lm[cpu-float64-eager]]` -> `cpu-float64-eager` (None without a target)."""
    inner = test_name.partition("[")[2]
    return inner.rpartition("[")[2].rstrip("]") or None


def run_in_group(cmd, env, cwd, timeout):
    """Run `cmd` in its own process group; on timeout kill the whole group. Returns (returncode or None, output)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out


def identity(mutant):
    """The fields of a result that describe the mutant itself (its catalog entry and the targets its checks run on)."""
    return {"id": mutant.id, "area": mutant.area, "path": mutant.path, "bug": mutant.bug, "file": mutant.file,
            "checks": mutant.checks, "targets": f"{mutant.dtype}-{mutant.attn}", "versions": mutant.versions,
            "equivalent": mutant.equivalent}


def run_mutant(mutant, package_dir, max_examples=100, timeout=300, python=sys.executable, extra=(),
               keep_log=None):
    """Apply `mutant` to a copy of `package_dir`, verify the copy is the transformers imported, run its checks and
    classify: killed | survived | equivalent | timeout | error. Returns the result dict."""
    result = {**identity(mutant), "status": None, "killed_by": None, "killed_on": None, "message": None,
              "passed": 0, "failed": 0, "skipped": 0, "seconds": None, "kill_seconds": None, "imported": None}
    start = time.time()
    with tempfile.TemporaryDirectory(prefix=f"bert-mutant-{mutant.id}-") as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        try:
            apply(mutant, package_dir, root)
            guard_report = Path(tmp) / "guard.json"
            env = mutant_env(root, {"root": str(root), "file": mutant.file, "new": mutant.new,
                                    "report": str(guard_report)})
            result["imported"] = verify_import(env, root, python, cwd=tmp)
            junit = Path(tmp) / "junit.xml"
            code, out = run_in_group(suite_command(mutant.checks, max_examples, python, junit, extra,
                                                   dtype=mutant.dtype, attn=mutant.attn), env, tmp, timeout)
        except MutantError as exc:
            result.update(status="error", message=str(exc), seconds=round(time.time() - start, 1))
            return result
        if keep_log:
            Path(keep_log).parent.mkdir(parents=True, exist_ok=True)
            Path(keep_log).write_text(out)
        guard = json.loads(guard_report.read_text()) if guard_report.is_file() else {}
        passed, failed, skipped, first = _junit(junit)
    tail = "\n".join(out.strip().splitlines()[-15:])
    result.update(passed=passed, failed=failed, skipped=skipped, seconds=round(time.time() - start, 1))
    if code is None:
        result.update(status="timeout", message=f"no verdict within {timeout} s")
    elif guard.get("problem") or not guard:
        result.update(status="error", message=guard.get("problem") or f"the guard did not run (exit {code}):\n{tail}")
    elif code == 1 and first and first[0].startswith("test_check["):
        result.update(status="killed", killed_by=_check_id(first[0]), killed_on=_target_id(first[0]),
                      kill_seconds=round(first[1], 1), message=_first_lines(first[2]))
    elif code == 0 and passed:
        result.update(status="equivalent" if mutant.equivalent else "survived",
                      message=f"{passed} check(s) passed {max_examples} examples each"
                              + (f", {skipped} skipped" if skipped else ""))
    elif code == 0:
        result.update(status="error", message=f"no selected check ran ({skipped} skipped): -k {mutant.checks!r}")
    else:
        result.update(status="error", message=f"pytest exit {code}:\n{tail}")
    if mutant.equivalent and result["status"] == "killed":
        result["message"] = f"declared equivalent but killed: the equivalence argument is wrong. {result['message']}"
    return result


def run_baseline(mutants, package_dir, max_examples=100, timeout=1800, python=sys.executable, extra=()):
    """Run every check the `mutants` select, on the targets their paths run on (one pytest per dtype and attention),
    against the unmutated package, without stopping at a failure: a check that fails here on a target cannot kill
    anything there (its failure is the suite's or the release's, not the mutant's). `failed` lists `check[target]`."""
    groups = {}
    for m in mutants:
        groups.setdefault((m.dtype, m.attn), set()).add(m.checks)
    start = time.time()
    checks, statuses, failures, messages = {}, [], [], []
    passed = skipped = 0
    for (dtype, attn), selected in sorted(groups.items()):
        expression = checks[f"{dtype}-{attn}"] = " or ".join(f"({c})" for c in sorted(selected))
        with tempfile.TemporaryDirectory(prefix="bert-mutant-baseline-") as tmp:
            env = mutant_env(tmp)  # the installed package: nothing shadows it in the empty folder
            junit = Path(tmp) / "junit.xml"
            code, out = run_in_group(suite_command(expression, max_examples, python, junit, extra,
                                                   first_failure=False, dtype=dtype, attn=attn), env, tmp, timeout)
            failed_here = []
            n_passed, failed, n_skipped, _ = _junit(junit, failed_here)
        passed, skipped = passed + n_passed, skipped + n_skipped
        failures += [f"{_check_id(f)}[{_target_id(f)}]" for f in failed_here]
        status = "timeout" if code is None else "pass" if code == 0 else "fail" if code == 1 and failed else "error"
        statuses.append(status)
        if status != "pass":
            messages.append(f"{dtype}-{attn}: " + "\n".join(out.strip().splitlines()[-15:]))
    status = next((s for s in ("timeout", "error", "fail") if s in statuses), "pass")
    return {"status": status, "checks": checks, "passed": passed, "failed": sorted(failures), "skipped": skipped,
            "seconds": round(time.time() - start, 1), "message": "\n".join(messages) or None}


def select(only=None, area=None, subset=None, catalog=None, path=None):
    """The mutants named by --only / --area / --subset / --path (all of them by default)."""
    catalog = MUTANTS if catalog is None else catalog
    by_id = {m.id: m for m in catalog}
    chosen = list(catalog)
    if subset:
        if subset not in SUBSETS:
            raise SystemExit(f"unknown subset {subset!r}; known: {sorted(SUBSETS)}")
        chosen = [by_id[i] for i in SUBSETS[subset]]
    if only:
        unknown = [i for i in only if i not in by_id]
        if unknown:
            raise SystemExit(f"unknown mutant id(s) {unknown}")
        chosen = [m for m in chosen if m.id in only]
    if area:
        if area not in AREAS:
            raise SystemExit(f"unknown area {area!r}; known: {sorted(AREAS)}")
        chosen = [m for m in chosen if m.area == area]
    if path:
        if path not in PATHS:
            raise SystemExit(f"unknown path {path!r}; known: {sorted(PATHS)}")
        chosen = [m for m in chosen if m.path == path]
    return chosen


def tally(rows):
    """Counts by outcome and the kill ratio (killed / applicable non-equivalent) of some mutants' results."""
    count = {s: sum(r["status"] == s for r in rows)
             for s in ("killed", "survived", "equivalent", "timeout", "error", "not_applicable")}
    declared_equivalent = sum(1 for r in rows if r["equivalent"] and r["status"] != "not_applicable")
    non_equivalent = sum(1 for r in rows if not r["equivalent"] and r["status"] != "not_applicable")
    killed = sum(1 for r in rows if r["status"] == "killed" and not r["equivalent"])
    return {"mutants": len(rows), **count, "declared_equivalent": declared_equivalent,
            "non_equivalent": non_equivalent, "killed_non_equivalent": killed,
            "kill_ratio": (killed / non_equivalent) if non_equivalent else None}


def summarize(results):
    """Per-area counts and kill ratio (killed / applicable non-equivalent), and the overall score."""
    areas = {area: tally(rows) for area in AREAS if (rows := [r for r in results if r["area"] == area])}
    killed = sum(a["killed_non_equivalent"] for a in areas.values())
    total = sum(a["non_equivalent"] for a in areas.values())
    return areas, {"killed": killed, "non_equivalent": total, "ratio": (killed / total) if total else None}


def summarize_paths(results):
    """Per-path counts and kill ratio (a result without a path has its area's usual one)."""
    def path(r):
        return r.get("path") or AREA_PATHS[r["area"]]
    return {p: tally(rows) for p in PATHS if (rows := [r for r in results if path(r) == p])}


def project_state():
    """The project's git commit and whether its suite files differ from it (None outside a git checkout)."""
    root = project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "conformance", "reference"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified": None}
    return {"commit": commit, "modified": sorted(line[3:] for line in dirty if line.strip())}


def environment(package_dir, version, args, python=sys.executable):
    """The run's environment record: versions, platform, the run's settings, the suite command and project state."""
    import numpy  # only for its version: the runner itself needs no numpy

    try:
        import torch  # only for its version: heavy, and the runner itself needs no torch
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = None
    return {"transformers": str(version), "transformers_path": str(package_dir), "torch": torch_version,
            "numpy": numpy.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "max_examples": args.max_examples, "timeout_s": args.timeout, "jobs": args.jobs,
            "hypothesis_profile": "ci", "dtype": "float64", "attention": "eager",
            "path_targets": {p: "-".join(t) for p, t in PATH_TARGETS.items()},
            "command": suite_command("CHECKS", args.max_examples, python)[1:], "project": project_state()}


def run(args, extra=()):
    """Run the mutation self-check; print the per-area table and the survivors; write the JSON results. The exit
    status is 0 only if every applicable non-equivalent mutant was killed and every declared-equivalent one was
    not."""
    package_dir, version = installed_package()
    chosen = select(args.only, args.area, args.subset, path=getattr(args, "path", None))
    applicable = [m for m in chosen if m.applies_to(version)]
    print(f"mutation self-check against transformers {version} ({package_dir}): {len(applicable)} of {len(chosen)} "
          f"selected mutants apply; {args.jobs} job(s), {args.max_examples} examples, timeout {args.timeout} s",
          flush=True)
    start = time.time()
    env = environment(package_dir, version, args)  # the project's state as the run starts
    logs = Path(args.logs) if getattr(args, "logs", None) else None
    baseline = None
    if getattr(args, "baseline", True) and applicable:
        baseline = run_baseline(applicable, package_dir, args.max_examples, 6 * args.timeout, extra=extra)
        print(f"  baseline (the unmutated package): {baseline['status']}, {baseline['passed']} check(s) passed"
              + (f", failing: {baseline['failed']}" if baseline["failed"] else "") + f" ({baseline['seconds']} s)",
              flush=True)
        if baseline["status"] in ("timeout", "error"):
            print(baseline["message"], flush=True)

    def one(mutant):
        r = run_mutant(mutant, package_dir, args.max_examples, args.timeout, extra=extra,
                       keep_log=logs / f"{mutant.id}.log" if logs else None)
        where = (f" by {r['killed_by']} on {r['killed_on']} in {r.get('kill_seconds')} s" if r["status"] == "killed"
                 else "")
        print(f"  {mutant.id}: {r['status']}{where} ({r['seconds']} s)"
              + (f"  {r['message']}" if r["status"] in ("survived", "error", "timeout") else ""), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = dict(zip([m.id for m in applicable], pool.map(one, applicable)))
    spoiled = set(baseline["failed"]) if baseline else set()
    for r in done.values():
        if r["status"] == "killed" and {r["killed_by"], f"{r['killed_by']}[{r.get('killed_on')}]"} & spoiled:
            r.update(status="error", message=f"{r['killed_by']} fails on the unmutated package too: not a kill. "
                                             f"{r['message']}")
    results = []
    for m in chosen:
        if m.id in done:
            results.append(done[m.id])
        else:
            results.append({**identity(m), "status": "not_applicable",
                            "message": f"written for transformers {m.versions}"})
    wall = time.time() - start
    areas, score = summarize(results)
    paths = summarize_paths(results)
    data = {"type": "mutants", "schema": SCHEMA, "environment": env,
            "start": start, "end": start + wall, "wall_s": round(wall, 1), "baseline": baseline, "mutants": results,
            "areas": areas, "paths": paths, "score": score}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print()
    print(render_text(data))
    if args.out:
        print(f"results written to {args.out}")
    bad = [r for r in results if r["status"] in ("survived", "timeout", "error")
           or (r["equivalent"] and r["status"] == "killed")]
    return 1 if bad else 0
