"""The conformance suite: one test per registry check and target (device-dtype-attention).

Each test draws cases with Hypothesis and requires every comparison to hold; a failure prints the check, the
largest errors and a command reproducing the minimal case.
"""

from hypothesis import Phase, given, settings

from conformance.runner import run_check


def failure_message(check, target, adapter, case, failures):
    lines = [f"check {check.id} on {target.id} against {adapter!r}: {check.description}"]
    lines += [f.message for f in failures]
    if hasattr(case, "config"):
        lines.append(f"config: {case.config}")
    lines.append(f"reproduce: python -m conformance repro {check.id} {target.id} '{case.to_json()}'")
    return "\n".join(lines)


def test_check(check, target, adapter, hypothesis_settings, record_property):
    stats = {"examples": 0, "worst": 0.0, "explained": set()}

    if check.max_examples and check.max_examples < hypothesis_settings.max_examples:
        hypothesis_settings = settings(hypothesis_settings, max_examples=check.max_examples)
    if not check.shrink:
        hypothesis_settings = settings(hypothesis_settings, phases=[p for p in Phase if p != Phase.shrink])

    @hypothesis_settings
    @given(case=check.strategy(adapter))
    def holds(case):
        results = run_check(check, adapter, case, target)
        stats["examples"] += 1
        stats["worst"] = max([stats["worst"]] + [r.ratio for r in results if r.ok])
        stats["explained"].update(r.message[len("explained: "):] for r in results if r.message.startswith("explained"))
        failures = [r for r in results if not r.ok]
        assert not failures, failure_message(check, target, adapter, case, failures)

    try:
        holds()
    finally:
        record_property("examples", stats["examples"])
        record_property("max_error_ratio", stats["worst"])
        record_property("explained", sorted(stats["explained"]))
        if stats["explained"]:
            record_property("outcome", "explained")
