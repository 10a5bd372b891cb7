"""The conformance suite: one test per registry check and target (device-dtype-attention).

Each test draws cases with Hypothesis and requires every comparison to hold; a failure prints the check, the
largest errors and a command reproducing the minimal case. The test records (pytest `record_property`, written
to the run records by the plugin) the examples run, the largest error/tolerance and, for a failure, the minimal
counterexample: Hypothesis replays the shrunk failing example last, so the failure stashed last is the minimal one.

The targets of a check draw the same cases (see `runner.check_seed`), so the first of them to run in a process
screens the check's cases on all of its targets selected here that are still to run (`runner.screen`), and each
test then reports its own target's result; a target that failed the screening runs on its own, which reaches the
same failing case and shrinks it. The first test's duration therefore holds its whole group's work.
"""

from conformance.runner import group_seed, new_stats, reproduce_command, screen, target_test

_screenings = {}  # check id -> (seed, {target id: screened stats}) of this process, until its targets have run


def _group(request, check, target):
    """The targets of `check` this process runs from `target` on: the selected, unskipped tests of the check from
    this one onwards in collection order (an xdist worker runs its tests in that order; earlier ones have run)."""
    targets, seen = [], False
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("check") is not check or "target" not in callspec.params:
            continue  # another test parametrized with the same check (e.g. tests/test_checkpoint.py)
        seen = seen or item is request.node
        if seen and item.get_closest_marker("skip") is None:
            targets.append(callspec.params["target"])
    return targets


def _screened(request, check, target, adapter, hypothesis_settings):
    """(seed, this target's screened stats), or (None, None) where the target runs on its own."""
    entry = _screenings.get(check.id)
    if entry is None or target.id not in entry[1]:
        group = _group(request, check, target)
        if len(group) < 2:
            return None, None
        seed_value = group_seed(check, hypothesis_settings)
        entry = _screenings[check.id] = (seed_value, screen(check, group, adapter, hypothesis_settings, seed_value))
    seed_value, screened = entry
    result = screened.pop(target.id)
    if not screened:
        del _screenings[check.id]
    return seed_value, result


def test_check(check, target, adapter, hypothesis_settings, record_property, request):
    stats = new_stats()
    try:
        seed_value, screened = _screened(request, check, target, adapter, hypothesis_settings)
        target_test(check, target, adapter, hypothesis_settings, stats, screened, seed_value)
    finally:
        record_property("examples", stats["examples"])
        record_property("max_error_ratio", stats["worst"])
        record_property("explained", sorted(stats["explained"]))
        if stats["failure"]:
            kind, case, message, ratio = stats["failure"]
            record_property("failure", kind)
            record_property("failure_message", message)
            record_property("failure_ratio", ratio)
            record_property("counterexample", case.to_json())
            record_property("reproduce", reproduce_command(check, target, adapter, case))
