"""The conformance suite: one test per registry check and target (device-dtype-attention).

Each test draws cases with Hypothesis and requires every comparison to hold; a failure prints the check, the
largest errors and a command reproducing the minimal case. The test records (pytest `record_property`, written
to the run records by the plugin) the examples run, the largest error/tolerance and, for a failure, the minimal
counterexample: Hypothesis replays the shrunk failing example last, so the failure stashed last is the minimal one.
"""

import shlex

from hypothesis import Phase, given, settings

from conformance.runner import run_check


def failure_message(check, target, adapter, case, failures):
    lines = [f"check {check.id} on {target.id} against {adapter!r}: {check.description}"]
    lines += [f.message for f in failures]
    if hasattr(case, "config"):
        lines.append(f"config: {case.config}")
    lines.append(f"reproduce: python -m conformance repro {check.id} {target.id} '{case.to_json()}'")
    return "\n".join(lines)


DEFAULT_ADAPTER = "conformance.adapter:TransformersAdapter"


def reproduce_command(check, target, adapter, case):
    """The shell command that re-runs `case` of `check` on `target` and prints every comparison."""
    spec = f"{type(adapter).__module__}:{type(adapter).__qualname__}"
    option = "" if spec == DEFAULT_ADAPTER else f" --adapter {spec}"
    return f"python -m conformance{option} repro {check.id} {target.id} {shlex.quote(case.to_json())}"


def test_check(check, target, adapter, hypothesis_settings, record_property):
    stats = {"examples": 0, "worst": 0.0, "explained": set(), "failure": None}

    if check.max_examples and check.max_examples < hypothesis_settings.max_examples:
        hypothesis_settings = settings(hypothesis_settings, max_examples=check.max_examples)
    if not check.shrink:
        hypothesis_settings = settings(hypothesis_settings, phases=[p for p in Phase if p != Phase.shrink])

    @hypothesis_settings
    @given(case=check.strategy(adapter))
    def holds(case):
        try:
            results = run_check(check, adapter, case, target)
        except Exception as exc:  # not a comparison: an error; stashed in case it is the last (minimal) one
            stats["failure"] = ("error", case, f"{type(exc).__name__}: {exc}", None)
            raise
        stats["examples"] += 1
        stats["worst"] = max([stats["worst"]] + [r.ratio for r in results if r.ok])
        stats["explained"].update(r.message[len("explained: "):] for r in results if r.message.startswith("explained"))
        failures = [r for r in results if not r.ok]
        if failures:
            message = failure_message(check, target, adapter, case, failures)
            stats["failure"] = ("fail", case, message, max(r.ratio for r in failures))
            raise AssertionError(message)

    try:
        holds()
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
