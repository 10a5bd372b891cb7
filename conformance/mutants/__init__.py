"""The mutation self-check: seed one realistic bug at a time into a copy of transformers and require the suite to
catch it.

    bert-conformance mutants [--jobs 1] [--max-examples 100] [--timeout 300] [--only ID ...] [--area AREA]
                             [--path PATH] [--subset quick] [--out reports/mutants.json] [--logs DIR] [--no-baseline]
    python -m conformance.mutants ...          (the same, without the CLI)
    python -m conformance.mutants --check-sources FOLDER     (the version ranges against FOLDER/<version>/transformers)

For each mutant of `MUTANTS` whose `versions` include the installed release, the runner copies the installed
`transformers` package into a temporary folder, replaces the mutant's `old` source text (it must occur exactly once)
by `new`, and runs the checks the mutant names (`pytest --pyargs conformance.suite -k CHECKS`, the derandomized
`ci` Hypothesis profile, stop at the first failure) with the copy first on PYTHONPATH, on the dtype and attention
of the mutant's path: float64 and eager attention, but float64 and sdpa for the `sdpa` path and float32 and eager
for the `float32` path (`PATHS`: eager-float64, sdpa, float32, error, metamorphic, checkpoint, subject). A guard loaded into that pytest process (`-p conformance.mutants.guard`) refuses to run unless the
`transformers` it imports is the mutated copy, so a mutant can never "survive" against the pristine package. First,
the baseline runs every selected check on those targets against the unmutated package: a check failing there on a
target cannot kill anything there.

Outcomes: `killed` (a selected check failed), `survived` (every selected check passed), `equivalent` (declared
equivalent, with the argument, and indeed not killed), `timeout` and `error` (no verdict; counted as not killed),
`not_applicable` (the installed release's source differs; the mutant is written for other releases). The mutation
score is killed / applicable non-equivalent mutants, overall, per area and per path. Results go to a JSON file that
`markdown_section` renders.
"""

# Modules: `catalog` (the mutants), `sandbox` (copy and mutate transformers), `guard` (the pytest plugin above),
# `runner` (baseline, mutants, JSON), `render` (text and markdown), `cli` (the command line). This module re-exports
# the API the rest of the project and its tests use.

from .catalog import AREAS, MUTANTS, MUTANTS_BY_ID, PATHS, SUBSETS, Mutant
from .cli import DEFAULT_OUT, add_arguments, add_parser, main
from .render import markdown_section, render_text
from .runner import run, run_baseline, run_mutant, select, summarize, summarize_paths
from .sandbox import (GUARD_ENV, MutantError, apply, check_sources, installed_package, mutant_env, mutate_source,
                      verify_import)

__all__ = [
    "AREAS", "MUTANTS", "MUTANTS_BY_ID", "PATHS", "SUBSETS", "Mutant",
    "DEFAULT_OUT", "add_arguments", "add_parser", "main",
    "markdown_section", "render_text",
    "run", "run_baseline", "run_mutant", "select", "summarize", "summarize_paths",
    "GUARD_ENV", "MutantError", "apply", "check_sources", "installed_package", "mutant_env", "mutate_source",
    "verify_import",
]
