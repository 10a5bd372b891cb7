"""`bert-conformance` (also `python -m conformance`): run the suite and write the report, write the report from
records, or reproduce a case.

    bert-conformance run [--report-dir reports] [--workers auto] [PYTEST ARGS...]
    bert-conformance report [--records reports/records] [--out reports]
    bert-conformance merge RAW_DIR... [--records reports/records]
    bert-conformance repro CHECK TARGET 'CASE JSON'
    bert-conformance bench [--examples 100] [--area head,loss] [--device cpu] [--dtype float64] [--attn eager]
"""

import argparse
import os
import subprocess
import sys
import time

from . import mutants
from .bench import main as bench
from .records import OUTCOMES
from .registry import CHECKS_BY_ID
from .report import write_reports
from .report.archive import differences, update
from .runner import DEFAULT_ADAPTER, run_check
from .targets import Target, load_adapter

SHOWN_DIFFERENCES = 20  # cells that changed, listed by `run`'s summary before "and N more"


def cmd_run(args, extra):
    """Run the conformance suite against the installed implementation on every device present, fold its records
    into the committed ones of its version (reports/records/<impl>-<version>.json) and write the report of every
    version there. Pytest runs in its own process, which writes its raw records to a new folder under
    reports/runs/; no other version's records are touched."""
    raw = os.path.join(args.report_dir, "runs", time.strftime("%Y%m%dT%H%M%S"))
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "-p", "no:cacheprovider",
               "--report-dir", raw, "--adapter", args.adapter, "-q"]
    if args.workers != "0":
        command += ["-n", args.workers]
    code = subprocess.call(command + extra)
    records = os.path.join(args.report_dir, "records")
    changes = update(records, raw) if os.path.isdir(raw) else []
    paths = write_reports(records, args.report_dir)
    print(summary(changes, paths))
    return code


def summary(changes, paths):
    """`run`'s last words: per version folded, its outcome counts (cells) and the cells whose outcome differs from
    the committed records, then where the report is."""
    lines = []
    for impl, version, before, after in changes:
        counts = {o: 0 for o in OUTCOMES}
        for (check, column), cell in after.cells.items():
            counts[cell.outcome] += 1
        lines.append(f"{impl} {version}: " + ", ".join(f"{n} {o}" for o, n in counts.items() if n) + " (cells)")
        changed = differences(before, after) if before is not None else []
        if before is None:
            lines.append("  first records of this version")
        elif not changed:
            lines.append("  no outcome differs from the committed records")
        for check, target, old, new in changed[:SHOWN_DIFFERENCES]:
            lines.append(f"  {check} [{target}]: {old or 'not recorded'} -> {new}")
        if len(changed) > SHOWN_DIFFERENCES:
            lines.append(f"  ... and {len(changed) - SHOWN_DIFFERENCES} more")
    if not changes:
        lines.append("no records were written (see pytest's output above)")
    return "\n".join(lines + [f"report: {p}" for p in paths])


def cmd_merge(args, extra):
    """Fold raw run records (a `pytest --report-dir` folder) into the compact records of their versions."""
    if extra:
        raise SystemExit(f"bert-conformance merge: unexpected arguments {extra}")
    for raw in args.raw:
        if not os.path.isdir(raw):
            raise SystemExit(f"bert-conformance merge: no records folder {raw!r}")
        for impl, version, before, after in update(args.records, raw):
            print(f"{impl} {version}: {len(differences(before, after))} cell(s) changed, {len(after.cells)} in all")
    return 0


def write_report(records, out):
    """Merge the records under `records` into `out`/COMPATIBILITY.md and `out`/index.html; print both paths."""
    for path in write_reports(records, out):
        print(f"report written to {path}")


def cmd_report(args, extra):
    """Merge the run records of every version into COMPATIBILITY.md and index.html."""
    if extra:
        raise SystemExit(f"bert-conformance report: unexpected arguments {extra}")
    if not os.path.isdir(args.records):
        raise SystemExit(f"bert-conformance report: no records folder {args.records!r}")
    write_report(args.records, args.out)
    return 0


def cmd_repro(args, extra):
    """Re-run one case of one check on one target and print every comparison."""
    check = CHECKS_BY_ID[args.check]
    results = run_check(check, load_adapter(args.adapter), check.case_type.from_json(args.case), Target.parse(args.target))
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.key}: error/tolerance {r.ratio:.3g}" + (f"\n{r.message}" if r.message else ""))
    return 0 if all(r.ok for r in results) else 1


def cmd_bench(args, extra):
    """Examples per second of every area next to the floor (the bare transformers and reference calls on the
    same cases) measured in the same run, and their ratio."""
    if extra:
        raise SystemExit(f"bert-conformance bench: unexpected arguments {extra}")
    bench(args.adapter, examples=args.examples, areas=args.area.split(",") if args.area else None,
          device=args.device, dtype=args.dtype, attn=args.attn, json_path=args.json, verbose=args.verbose)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bert-conformance", description=__doc__)
    parser.add_argument("--adapter", default=DEFAULT_ADAPTER, help="module:Class of the implementation under test")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help=cmd_run.__doc__)
    run.add_argument("--report-dir", default="reports")
    run.add_argument("--workers", default="auto", help="pytest-xdist workers (0: no xdist)")
    run.set_defaults(func=cmd_run)
    report = sub.add_parser("report", help=cmd_report.__doc__)
    report.add_argument("--records", default=os.path.join("reports", "records"),
                        help="folder of run records, searched recursively (default: reports/records)")
    report.add_argument("--out", default="reports",
                        help="folder for COMPATIBILITY.md and index.html (default: reports)")
    report.set_defaults(func=cmd_report)
    merge = sub.add_parser("merge", help=cmd_merge.__doc__)
    merge.add_argument("raw", nargs="+", help="folders of raw run records (what `pytest --report-dir` wrote)")
    merge.add_argument("--records", default=os.path.join("reports", "records"),
                       help="folder of the compact records to update (default: reports/records)")
    merge.set_defaults(func=cmd_merge)
    repro = sub.add_parser("repro", help=cmd_repro.__doc__)
    repro.add_argument("check")
    repro.add_argument("target", help="device-dtype-attention, e.g. cpu-float64-eager")
    repro.add_argument("case", help="the case JSON printed by the failing test")
    repro.set_defaults(func=cmd_repro)
    mutants.add_parser(sub)  # `bert-conformance mutants`: the mutation self-check
    bench = sub.add_parser("bench", help=cmd_bench.__doc__)
    bench.add_argument("--examples", type=int, default=100,
                       help="examples per check and target (default: 100, as the ci profile)")
    bench.add_argument("--area", default=None, help="comma-separated areas (default: all)")
    bench.add_argument("--device", default=None, help="comma-separated devices (default: every one present)")
    bench.add_argument("--dtype", default=None, help="comma-separated dtypes (default: the suite's)")
    bench.add_argument("--attn", default=None, help="comma-separated attention implementations (default: all)")
    bench.add_argument("--json", default=None, help="also write the results to this JSON file")
    bench.add_argument("--verbose", action="store_true", help="one line per check and target on stderr")
    bench.set_defaults(func=cmd_bench)
    args, extra = parser.parse_known_args(argv)
    return args.func(args, extra)


if __name__ == "__main__":
    sys.exit(main())
