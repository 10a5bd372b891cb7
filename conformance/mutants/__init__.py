"""The mutation self-check: seed one realistic bug at a time into a copy of transformers and require the suite to
catch it.

    bert-conformance mutants [--jobs 1] [--max-examples 100] [--timeout 300] [--only ID ...] [--area AREA]
                             [--subset quick] [--out reports/mutants.json] [--logs DIR] [--no-baseline]
    python -m conformance.mutants ...          (the same, without the CLI)
    python -m conformance.mutants --check-sources FOLDER     (the version ranges against FOLDER/<version>/transformers)

For each mutant of `MUTANTS` whose `versions` include the installed release, the runner copies the installed
`transformers` package into a temporary folder, replaces the mutant's `old` source text (it must occur exactly once)
by `new`, and runs the checks the mutant names (`pytest --pyargs conformance.suite -k CHECKS`, float64, eager
attention, the derandomized `ci` Hypothesis profile, stop at the first failure) with the copy first on
PYTHONPATH. A guard loaded into that pytest process (`-p conformance.mutants.guard`) refuses to run unless the
`transformers` it imports is the mutated copy, so a mutant can never "survive" against the pristine package. First,
the baseline runs every selected check against the unmutated package: a check failing there cannot kill anything.

Outcomes: `killed` (a selected check failed), `survived` (every selected check passed), `equivalent` (declared
equivalent, with the argument, and indeed not killed), `timeout` and `error` (no verdict; counted as not killed),
`not_applicable` (the installed release's source differs; the mutant is written for other releases). The mutation
score is killed / applicable non-equivalent mutants. Results go to a JSON file that `markdown_section` renders.
"""

# Modules: `catalog` (the mutants), `sandbox` (copy and mutate transformers), `guard` (the pytest plugin above),
# `runner` (baseline, mutants, JSON), `render` (text and markdown), `cli` (the command line). This module re-exports
# the API the rest of the project and its tests use.

from .catalog import AREAS, MUTANTS, MUTANTS_BY_ID, SUBSETS, Mutant
from .cli import DEFAULT_OUT, add_arguments, add_parser, main
from .render import markdown_section, render_text
from .runner import run, run_baseline, run_mutant, select, summarize
from .sandbox import (GUARD_ENV, MutantError, apply, check_sources, installed_package, mutant_env, mutate_source,
                      verify_import)

__all__ = [
    "AREAS", "MUTANTS", "MUTANTS_BY_ID", "SUBSETS", "Mutant",
    "DEFAULT_OUT", "add_arguments", "add_parser", "main",
    "markdown_section", "render_text",
    "run", "run_baseline", "run_mutant", "select", "summarize",
    "GUARD_ENV", "MutantError", "apply", "check_sources", "installed_package", "mutant_env", "mutate_source",
    "verify_import",
]
