"""`bert-conformance bench`: examples per second of every area, next to the floor measured in the same run.

For each area of the registry, every (check, target) pair the suite would run (the same selection and order as
`pytest`'s collection) runs `examples` Hypothesis examples exactly as the suite's tests do (the derandomized `ci`
profile, strategies, model cache, comparisons; the targets of a check screened together, `runner.screen`, a check
with one target by its own `runner.property_test`), one check after the other in this process, as an xdist worker
runs its tests. Then the floor: the same cases are replayed and only the bare calls are timed: the
transformers forward and autograd calls (`adapter.bare_seconds`) and every function of the reference package
(`reference_timed`); for checks whose implementation calls the adapter does not clock (schedules, AdamW, masking,
the checkpoint: there the property is little but the implementation's call and the reference's), the whole
replayed property. Everything else (Hypothesis, strategies, model building, weight
loading, comparisons) is overhead; the ratio floor time / run time is 1 when there is none.

The one-time cost of a process (imports of torch and transformers, the registry, what the first forward imports
lazily: one example per attention implementation; what a check's subject loads on first use: one example of every
check that is not a reference check; all run before timing) is printed apart: a pytest worker pays it once, not per
example.
"""

import contextlib
import functools
import json
import os
import sys
import time
import types

from hypothesis import HealthCheck, settings

from .registry import CHECKS
from .runner import check_seed, new_stats, no_sharing, property_test, run_check, screen
from .targets import DEFAULT_DTYPES, check_targets, load_adapter, make_targets

HEADER = ("area", "tests", "examples", "seconds", "examples/s", "floor examples/s", "ratio")


def bench_settings(examples):
    """The suite's `ci` profile (derandomized, no database, no deadline) with `examples` examples."""
    return settings(deadline=None, derandomize=True, database=None, max_examples=examples, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def time_pair(check, target, adapter, examples):
    """Run `examples` examples of `check` on `target` alone; return (examples run, seconds, floor seconds, failure
    or None)."""
    (n, seconds, floor, failures) = time_group(check, [target], adapter, examples)
    return n, seconds, floor, failures[0][1] if failures else None


def time_group(check, targets, adapter, examples):
    """Run `examples` examples of `check` on `targets` as the suite does (one target: its own Hypothesis test;
    several: one screening of the same cases on all of them); return (examples run, summed over targets, seconds,
    floor seconds, [(target id, failure message)])."""
    cases, failures = [], []
    start = time.perf_counter()
    if len(targets) == 1:
        stats = new_stats()
        try:
            property_test(check, targets[0], adapter, bench_settings(examples), stats, cases)()
        except Exception as exc:  # a failing check is reported, and its examples still count
            first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
            failures.append((targets[0].id, f"{type(exc).__name__}: {first_line}"))
        ran = {targets[0].id: len(cases)}
    else:
        screened = screen(check, targets, adapter, bench_settings(examples), check_seed(check), cases)
        ran = {}
        for t in targets:
            s = screened[t.id]
            ran[t.id] = s["examples"] + (s["failing"] is not None)
            if s["failing"] is not None:
                failures.append((t.id, f"failed on {s['failing'].to_json()[:200]}"))
    seconds = time.perf_counter() - start
    floor = 0.0
    # the floor computes the reference of every case, even where the run shared it
    with no_sharing(), reference_timed():
        for t in targets:
            for case in cases[:ran[t.id]]:
                floor += _bare_seconds(check, t, adapter, case)
    return sum(ran.values()), seconds, floor, failures


def _bare_seconds(check, target, adapter, case):
    """The time of the bare calls of one case (inside `reference_timed`): the adapter's forward/autograd clock plus the
    reference's functions, or the whole property where the adapter's clock does not tick (its calls are not clocked:
    schedules, AdamW, masking, the checkpoint)."""
    bare_before, reference_before = getattr(adapter, "bare_seconds", 0.0), ReferenceClock.seconds
    start = time.perf_counter()
    try:
        run_check(check, adapter, case, target)
    except Exception:  # refusals and failures cost their bare calls like any other case
        pass
    whole = time.perf_counter() - start
    implementation = getattr(adapter, "bare_seconds", 0.0) - bare_before
    return implementation + ReferenceClock.seconds - reference_before if implementation > 0 else whole


class ReferenceClock:
    """Seconds spent in the reference package's functions inside `reference_timed` (outermost calls only)."""

    seconds = 0.0
    depth = 0


def _timed(function):
    @functools.wraps(function)
    def timed(*args, **kwargs):
        if ReferenceClock.depth:
            return function(*args, **kwargs)
        ReferenceClock.depth += 1
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            ReferenceClock.seconds += time.perf_counter() - start
            ReferenceClock.depth -= 1
    return timed


def _is_reference_function(value):
    return isinstance(value, types.FunctionType) and (value.__module__ or "").split(".")[0] == "reference"


@contextlib.contextmanager
def reference_timed():
    """Within it, every function of the reference package adds its time to `ReferenceClock`, wherever the harness
    holds it: a name a module of `conformance` or `reference` imported (`from reference.backward import ...`), a
    module's attribute (`optim.adamw`), an entry of a module-level table (`reference.heads.HEADS`). A check's
    reference is timed this way whatever route it calls it by; a function captured elsewhere (a closure, a default
    argument) is not."""
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in ("conformance", "reference"):
            continue
        for key, value in list(vars(module).items()):
            if _is_reference_function(value):
                found.append((vars(module), key, value))
            elif isinstance(value, dict):
                found += [(value, k, v) for k, v in list(value.items()) if _is_reference_function(v)]
    for table, key, value in found:
        table[key] = _timed(value)
    try:
        yield
    finally:
        for table, key, value in found:
            table[key] = value


def warm_up(adapter, pairs):
    """One example of the first reference check under each attention implementation, and of every other check on its
    first target: the first forward imports what transformers loads lazily (attention and mask helpers), and a
    check's subject what it loads on first use (the Trainer's imports, an optimizer's kernels, a checkpoint head's
    `from_pretrained`): one-time costs of the process."""
    seen = set()
    for check, target in pairs:
        key = ("attn", target.attn) if check.kind == "reference" else ("check", check.id)
        if key not in seen:
            seen.add(key)
            time_pair(check, target, adapter, 1)


def row(area, tests, examples, seconds, floor):
    return {"area": area, "tests": tests, "examples": examples, "seconds": seconds,
            "examples_per_s": examples / seconds if seconds else 0.0,
            "floor_examples_per_s": examples / floor if floor else 0.0,
            "ratio": floor / seconds if seconds else 0.0}


def bench(adapter, all_targets, examples=100, areas=None, progress=None):
    """{"rows": one per area and a total, "failures": [(check, target, message)], "warm_up_s"}."""
    order = list(dict.fromkeys(c.area for c in CHECKS))
    wanted = [a for a in order if areas is None or a in areas]
    pairs = [(c, t) for c, t, skips in check_targets(adapter, all_targets) if not skips and c.area in wanted]
    groups = {}
    for check, target in pairs:
        groups.setdefault(check.id, (check, []))[1].append(target)
    rows, failures, totals = [], [], [0, 0, 0.0, 0.0]
    start = time.perf_counter()
    warm_up(adapter, pairs)
    warm = time.perf_counter() - start
    for area in wanted:
        counts = [0, 0, 0.0, 0.0]
        for check, targets in (g for g in groups.values() if g[0].area == area):
            n, seconds, floor, failed = time_group(check, targets, adapter, examples)
            failures += [(check.id, target_id, message) for target_id, message in failed]
            if progress:
                progress(f"{check.id}[{','.join(t.id for t in targets)}]: {n} examples in {seconds:.2f} s, floor "
                         f"{floor:.2f} s")
            for i, v in enumerate((len(targets), n, seconds, floor)):
                counts[i] += v
                totals[i] += v
        if counts[0]:
            rows.append(row(area, *counts))
    rows.append(row("all", *totals))
    return {"rows": rows, "failures": failures, "warm_up_s": warm}


def table(rows):
    cells = [HEADER] + [(r["area"], str(r["tests"]), str(r["examples"]), f"{r['seconds']:.2f}",
                         f"{r['examples_per_s']:.1f}", f"{r['floor_examples_per_s']:.1f}", f"{r['ratio']:.2f}")
                        for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(adapter_spec, examples=100, areas=None, device=None, dtype=None, attn=None, json_path=None, verbose=False,
         out=None):
    """Run the bench and print the table (to `out`, default stdout); returns the result dict (rows, failures,
    startup, load averages)."""
    out = out or sys.stdout
    load_before = os.getloadavg()
    start = time.perf_counter()
    adapter = load_adapter(adapter_spec)
    all_targets = make_targets(adapter, device, dtype or DEFAULT_DTYPES, attn)
    startup = time.perf_counter() - start
    progress = (lambda line: print(line, file=sys.stderr, flush=True)) if verbose else None
    result = bench(adapter, all_targets, examples, areas, progress)
    result.update(startup_s=startup + result["warm_up_s"], examples_per_test=examples,
                  targets=[t.id for t in all_targets],
                  implementation=f"{getattr(adapter, 'name', '?')} {getattr(adapter, 'version', '')}".strip(),
                  load_average_before=load_before, load_average_after=os.getloadavg(), cpus=os.cpu_count())
    print(f"bench: {result['implementation']}, {examples} examples per check and target, targets "
          f"{', '.join(result['targets'])}", file=out)
    print(table(result["rows"]), file=out)
    print(f"one-time per process (the adapter, first forwards): {result['startup_s']:.2f} s; "
          f"load average {load_before[0]:.2f} before, {result['load_average_after'][0]:.2f} after, on "
          f"{os.cpu_count()} CPUs", file=out)
    for check, target, message in result["failures"]:
        print(f"failed: {check}[{target}]: {message}", file=out)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
    return result
