"""Known bugs of real releases as data (`conformance.check.KnownBug`, `conformance.known_bugs`): a case failing as
the bug predicts is that bug, a different failure stays a failure, a stale entry fails, the plugin records the
outcome `known_bug` with the counterexample, and the reports render it."""

import json

import numpy as np
import pytest

from conformance.adapters.transformers import TransformersAdapter
from conformance.batch import CaseBatch
from conformance.case import Case
from conformance.check import KNOWN_BUGS_BY_ID, known_bugs
from conformance.drift import CHANGES_BY_ID
from conformance.known_bugs import PREFIX, confirm
from conformance.pytest_plugin import outcome_of
from conformance.records import OUTCOMES

WITH_PROBLEM_TYPE = pytest.mark.skipif(
    not TransformersAdapter().has("sequence-classification-problem-type"),
    reason="simulates 4.6.0 on the installed release, which needs its problem_type (4.6.0 and later)")

from conformance.registry import CHECKS_BY_ID
from conformance.report import html, markdown, merge
from conformance.runner import new_stats, run_check
from conformance.targets import Target
from reference import options

BUG = KNOWN_BUGS_BY_ID["regression-broadcast-4.6.0"]
CHECK = CHECKS_BY_ID["loss.sequence_classification.regression"]
T64 = Target("cpu", "float64", "eager")


def test_mse_broadcast_against_loops_and_finite_differences():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((3, 1)), rng.standard_normal(3)
    loss, grad = options.mse_broadcast(logits, labels)
    assert loss == pytest.approx(sum((logits[i, 0] - labels[j]) ** 2 for i in range(3) for j in range(3)) / 9)
    h = 1e-6
    for i in range(3):
        step = np.zeros_like(logits)
        step[i, 0] = h
        fd = (options.mse_broadcast(logits + step, labels)[0] - options.mse_broadcast(logits - step, labels)[0]) / 2 / h
        assert grad[i, 0] == pytest.approx(fd, rel=1e-6)


def test_bug_declared_on_existing_checks_and_changes():
    for bug in KNOWN_BUGS_BY_ID.values():
        assert bug.introduced in CHANGES_BY_ID and bug.fixed in CHANGES_BY_ID
        assert all(c in CHECKS_BY_ID for c in bug.checks), bug.checks
        for case_type in {CHECKS_BY_ID[c].case_type for c in bug.checks} - {CaseBatch}:  # what each check reads
            assert case_type.from_json(bug.counterexample).to_json() == bug.counterexample
    assert BUG in known_bugs(CHECK)


class Broadcasting(TransformersAdapter):
    """The installed release with 4.6.0's rule: the regression loss with [B] labels broadcast to [B, B] (computed
    here by loops) and the rule changes' answers of 4.6.0."""

    def has(self, change_id):
        return change_id != "regression-one-label-squeezed" and super().has(change_id)

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        outputs, weights = super().run(case, attn, device, dtype, grad)
        labels = case.labels.get("labels")
        if labels is not None and labels.ndim == 1 and case.config["num_labels"] == 1:
            z, b = outputs["logits"][:, 0], len(labels)
            outputs["loss"] = np.float64(sum((z[i] - labels[j]) ** 2 for i in range(b) for j in range(b)) / b / b)
            outputs["loss_grad"] = {"logits": np.array([[2 * (z[i] - labels.mean()) / b] for i in range(b)])}
        return outputs, weights


class Stale(TransformersAdapter):
    """Claims to be a release with the bug, but computes correctly."""

    def has(self, change_id):
        return change_id != "regression-one-label-squeezed" and super().has(change_id)


class Otherwise(Broadcasting):
    """Has the bug's release, but its loss is off by another error than the bug's."""

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        outputs, weights = TransformersAdapter.run(self, case, attn, device, dtype, grad)
        if "loss" in outputs:
            outputs["loss"] = outputs["loss"] + 1.0
        return outputs, weights


def _fail(case, results):
    raise AssertionError([r.message for r in results if not r.ok])


@WITH_PROBLEM_TYPE
def test_case_failing_as_predicted_is_the_bug():
    results = run_check(CHECK, Broadcasting(), BUG.case(), T64)
    assert all(r.ok for r in results)
    assert any(r.message == f"explained: {PREFIX}{BUG.id}" for r in results)
    stats = new_stats()
    confirm(CHECK, T64, Broadcasting(), stats, run_check, _fail)
    assert f"{PREFIX}{BUG.id}" in stats["explained"]


def test_case_outside_the_bug_still_compares():
    case = BUG.case()
    case.labels["labels"] = case.labels["labels"].reshape(-1, 1)  # [B, 1] labels: no broadcast, no bug
    assert all(r.ok and not r.message for r in run_check(CHECK, Broadcasting(), case, T64))


def test_another_failure_is_not_the_bug():
    results = run_check(CHECK, Otherwise(), BUG.case(), T64)
    assert not all(r.ok for r in results)


@WITH_PROBLEM_TYPE
def test_stale_entry_fails():
    stats = new_stats()
    with pytest.raises(AssertionError, match="stale"):
        confirm(CHECK, T64, Stale(), stats, run_check, _fail)


def test_fixed_release_passes_the_counterexample():
    stats = new_stats()
    confirm(CHECK, T64, TransformersAdapter(), stats, run_check, _fail)  # 5.x: the bug does not hold; the counterexample passes
    assert not stats["explained"] and stats["failure"] is None


class Elsewhere(Broadcasting):
    """Another implementation at the bug's releases, broadcasting too: a bug of transformers neither holds for it
    nor has its counterexample run there (the counterexample may not be a case the port's strategies draw)."""

    name = "another-port"


def test_bug_belongs_to_its_implementation():
    assert not BUG.holds(Elsewhere()) and not BUG.applies(Elsewhere(), BUG.case(), T64)
    stats = new_stats()
    confirm(CHECK, T64, Elsewhere(), stats, run_check, _fail)
    assert not stats["explained"] and stats["failure"] is None
    assert not all(r.ok for r in run_check(CHECK, Elsewhere(), BUG.case(), T64))  # a drawn case still fails


class _Report:
    skipped = failed = False
    when = "call"


def test_outcome_known_bug():
    assert "known_bug" in OUTCOMES
    assert outcome_of(_Report(), {"explained": [f"{PREFIX}{BUG.id}"]}) == "known_bug"
    assert outcome_of(_Report(), {"explained": ["int32-class-labels-refused"]}) == "explained"


def _record(outcome, **extra):
    record = {"type": "check", "schema": 1, "run_id": "r1", "worker": "gw0", "check": CHECK.id, "area": "loss",
              "head": CHECK.head, "target": T64.id, "device": "cpu", "dtype": "float64", "attn": "eager",
              "outcome": outcome, "examples": 20, "max_error_ratio": 0.0, "failure_ratio": None,
              "tolerance": {"rtol": 1e-12, "atol": 1e-12}, "explained": [], "known_bugs": [], "duration_s": 0.1,
              "message": None, "traceback": None, "counterexample": None, "reproduce": None,
              "env": {"implementation": "transformers", "version": "4.6.0"}, "time": 1.0}
    record.update(extra)
    return record


def test_reports_render_the_known_bug():
    run = {"type": "run", "schema": 1, "run_id": "r1", "env": {"implementation": "transformers", "version": "4.6.0"},
           "args": [], "start": 1.0, "end": 2.0, "exitstatus": 0,
           "expected": [{"check": CHECK.id, "area": "loss", "target": T64.id}]}
    record = _record("known_bug", known_bugs=[BUG.id], message=f"known bug {BUG.id}: {BUG.description}",
                     counterexample=BUG.counterexample, reproduce="python -m conformance repro x")
    matrix = merge([run], [json.loads(json.dumps(record))])
    text = markdown(matrix)
    assert "### Known bugs" in text and f"known_bug: {CHECK.id}" in text and BUG.counterexample in text
    page = html(matrix)
    assert "o-known_bug" in page and 'class="counterexample"' in page and "Counterexample of the known bug" in page
