"""The conformance suite: one test per registry check and target (device-dtype-attention).

Each test draws cases with Hypothesis and requires every comparison to hold; a failure prints the check, the
largest errors and a command reproducing the minimal case. The test records (pytest `record_property`, written
to the run records by the plugin) the examples run, the largest error/tolerance and, for a failure, the minimal
counterexample: Hypothesis replays the shrunk failing example last, so the failure stashed last is the minimal one.
"""

from conformance.runner import (  # noqa: F401 (failure_message, reproduce_command: this module's API)
    DEFAULT_ADAPTER, failure_message, new_stats, property_test, reproduce_command)


def test_check(check, target, adapter, hypothesis_settings, record_property):
    stats = new_stats()
    holds = property_test(check, target, adapter, hypothesis_settings, stats)

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
