"""The command line of the mutation self-check: `bert-conformance mutants` (`add_parser`) and
`python -m conformance.mutants` (`main`, which also has `--check-sources FOLDER`)."""

import argparse
import os
import sys

from .catalog import AREAS, PATHS, SUBSETS
from .render import render_sources
from .runner import run
from .sandbox import check_sources

DEFAULT_OUT = os.path.join("reports", "mutants.json")


def add_arguments(parser):
    """Add the mutation self-check's options to `parser`; return it."""
    parser.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (default: 1)")
    parser.add_argument("--max-examples", type=int, default=100, help="Hypothesis examples per check (default: 100)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant before it counts as "
                                                                   "'timeout', i.e. not killed (default: 300)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--area", choices=sorted(AREAS), help="run only this area's mutants")
    parser.add_argument("--path", choices=sorted(PATHS), help="run only the mutants of this path (the kind of check "
                                                               "that must kill them)")
    parser.add_argument("--subset", choices=sorted(SUBSETS), help="a fixed subset (quick: one fast mutant per "
                                                                  "area, for CI)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSON results (default: {DEFAULT_OUT}; '' for none)")
    parser.add_argument("--logs", default=None, help="keep each mutant's pytest output in this folder")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip running the selected checks against the unmutated package first (a check failing "
                             "there cannot kill a mutant)")
    return parser


def add_parser(subparsers):
    """Add the `mutants` command to the CLI's subparsers (its function is `run(args, extra)`)."""
    parser = subparsers.add_parser("mutants", help="mutation self-check: seed bugs into a copy of transformers "
                                                   "and require the suite to catch each")
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv=None):
    """`python -m conformance.mutants`: run the mutation self-check, or with `--check-sources FOLDER` only print the
    version-range matrix. Returns the exit status."""
    # The help text is the package's docstring (the overview); the package is fully imported by the time main runs.
    overview = sys.modules[__package__].__doc__
    parser = add_arguments(argparse.ArgumentParser(prog="python -m conformance.mutants", description=overview,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--check-sources", metavar="FOLDER",
                        help="only check the version ranges against FOLDER/<version>/transformers sources: print how "
                             "often each mutant's old text occurs per release (* = inside its range)")
    args, extra = parser.parse_known_args(argv)
    if args.check_sources:
        versions, rows, problems = check_sources(args.check_sources)
        print(render_sources(versions, rows))
        print("\n".join(problems) or "every range holds")
        return 1 if problems else 0
    return run(args, extra)
