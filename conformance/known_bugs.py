"""Known bugs of real releases in a check's run (`conformance.check.KnownBug`): a case that fails as a bug predicts
holds as that bug (its comparisons become "explained: known_bug:<id>", which the plugin records as the outcome
`known_bug`), and each bug's counterexample is run on every target of its checks: it must show the bug where the
bug holds (else the entry is stale) and pass where it does not. The runner calls `judged` and `confirm`."""

from .case import Case
from .check import known_bugs
from .compare import Comparison, compare, tolerance

PREFIX = "known_bug:"  # the prefix of a known bug's id among a test's explained ids


def shows(bug, adapter, case, target):
    """Whether the implementation's outputs on `case` are what `bug` predicts (always, for a bug without a
    prediction): `bug.predict(case, outputs)` gives, from the implementation's own outputs (e.g. its logits), the
    outputs the bug yields by flattened name ("loss", "loss_grad.logits"), each of which must agree with the
    implementation's within the target's tolerance."""
    if bug.predict is None:
        return True
    actual, _ = adapter.run(case.copy(), target.attn, target.device, target.dtype)
    tol = tolerance(target.dtype, target.device)

    def output(key):
        value = actual
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return all(output(key) is not None and compare(key, output(key), value, tol).ok
               for key, value in bug.predict(case, actual).items())


def judged(check, adapter, case, target, results):
    """`results`, with the failed comparisons of a case on which a known bug of `check` shows held as that bug.
    Only a single `Case` is judged (a batch of sub-cases is judged sub-case by sub-case)."""
    if all(r.ok for r in results) or not isinstance(case, Case):
        return results
    for bug in known_bugs(check):
        if bug.applies(adapter, case, target) and shows(bug, adapter, case, target):
            return [r if r.ok else Comparison(r.key, True, 0.0, f"explained: {PREFIX}{bug.id}") for r in results]
    return results


def confirm(check, target, adapter, stats, run, fail):
    """Run the counterexample of each known bug of `check` on `target` (`run(check, adapter, case, target) ->
    comparisons`) of the bug's own implementation: where the bug holds it must show (it is added to `stats["explained"]` as `known_bug:<id>`), else
    an AssertionError says the entry is stale; where it does not hold the case must pass, as any drawn case
    (`fail(case, results)` raises the failure)."""
    for bug in known_bugs(check):
        if not (bug.concerns(adapter) and bug.targets(target)):
            continue
        case = bug.case(check.case_type if issubclass(check.case_type, Case) else Case)  # a batch runs one case
        results = run(check, adapter, case, target)
        if bug.holds(adapter):
            if not any(r.message == f"explained: {PREFIX}{bug.id}" for r in results):
                message = (f"known bug {bug.id} did not show on its counterexample in {check.id} on {target.id} "
                           f"against {adapter!r}: a stale entry (fixed earlier than `{bug.fixed}` says, or never "
                           f"there)\n" + "\n".join(r.message for r in results if r.message)
                           + f"\ncounterexample: {bug.counterexample}")
                stats["failure"] = ("fail", case, message, None)
                raise AssertionError(message)
            stats["explained"].add(PREFIX + bug.id)
        elif not all(r.ok for r in results):
            fail(case, results)
