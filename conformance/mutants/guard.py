"""The guard: a pytest plugin (`pytest -p conformance.mutants.guard`, armed by `GUARD_ENV`) that the runner loads
into the sandboxed pytest process, so a mutant can never "survive" against the pristine package."""

import json
import os
from pathlib import Path

import pytest

from .sandbox import GUARD_ENV, is_under


def pytest_sessionstart(session):
    """In the very process that runs the suite, refuse to run unless `transformers` comes from the mutated copy and
    the mutated file holds the mutation; write what was imported to the guard's report file."""
    raw = os.environ.get(GUARD_ENV)
    if not raw:
        return
    import transformers  # only in the armed process: importing it is slow, and the runner must never hold it

    guard = json.loads(raw)
    problem = None
    if not is_under(transformers.__file__, guard["root"]):
        problem = f"transformers imported from {transformers.__file__}, not from the mutated copy {guard['root']}"
    elif guard["new"] not in (Path(transformers.__file__).parent / guard["file"]).read_text():
        problem = f"the imported {guard['file']} does not hold the mutation"
    if guard.get("report"):
        Path(guard["report"]).write_text(json.dumps({"transformers": transformers.__file__, "problem": problem}))
    if problem:
        raise pytest.UsageError(f"mutant guard: {problem}")
