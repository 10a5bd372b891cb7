"""Refusals by error class: the reference states the refusal it expects, the implementation must make that one (per
release), an exception of the harness or an adapter is an error and never a refusal, and what both sides computed
before a refusal is still compared."""

import pytest
import torch
from hypothesis import Phase, find, settings

from conformance.adapters.transformers import TransformersAdapter
from conformance.case import SubjectCase
from conformance.check import expected_refusal, raised_by_harness
from conformance.checks.adamw import adamw_steps
from conformance.checks.schedules import schedule_curve
from conformance.registry import CHECKS, CHECKS_BY_ID
from conformance.judges import refusals
from conformance.runner import new_stats, property_test
from conformance.targets import Target
from reference import ReferenceInputError
from reference.errors import Refusal
from reference.losses import LABEL_RANGE

pytestmark = pytest.mark.harness

CPU64 = Target("cpu", "float64", "eager")
ADAPTER = TransformersAdapter()
REFUSAL_CHECKS = [c for c in CHECKS if (c.kind == "error" or c.prop in (adamw_steps, schedule_curve))
                  and c.applies(ADAPTER) is None]
FEW = settings(max_examples=2, database=None, deadline=None, derandomize=True, phases=[Phase.generate])


class Lacking(TransformersAdapter):
    """An adapter whose methods reach for a method it lacks (the AttributeError comes from its own module)."""

    def run(self, *args, **kwargs):
        return self.forward_pass(*args, **kwargs)

    adamw = mlm_collate = lr_curve = run


class NotCallable(TransformersAdapter):
    """An adapter whose methods are not callable (the TypeError is raised in the harness's own frame)."""

    run = adamw = mlm_collate = lr_curve = None


@pytest.mark.parametrize("stub", [Lacking, NotCallable], ids=["AttributeError", "TypeError"])
@pytest.mark.parametrize("check", REFUSAL_CHECKS, ids=lambda c: c.id)
def test_an_adapter_lacking_a_method_is_an_error_on_every_refusal_check(check, stub):
    """Before: both 'refused' (the reference with ReferenceInputError, the adapter with AttributeError) and the
    errors checks passed. Now the adapter's exception leaves the check, which the plugin records as an error."""
    stats = new_stats()
    with pytest.raises((AttributeError, TypeError)):
        property_test(check, CPU64, stub(), FEW, stats)()
    assert stats["failure"][0] == "error", stats["failure"]


def _case(check_id, adapter=ADAPTER):
    case = find(CHECKS_BY_ID[check_id].strategy(adapter), lambda case: True,
                settings=settings(database=None, max_examples=1))
    return getattr(case, "cases", [case])[0]  # a CaseBatch's first sub-case (`conformance.batch`)


def test_a_wrong_exception_class_fails(monkeypatch):
    """An implementation refusing an out-of-range label with a TypeError (the message of the IndexError it owes)."""
    def cross_entropy(*args, **kwargs):
        raise TypeError("Target 7 is out of bounds.")

    case = _case("errors.out_of_range.sequence_classification")
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", cross_entropy)
    results = CHECKS_BY_ID["errors.out_of_range.sequence_classification"].prop(ADAPTER, case, CPU64)
    assert [r.ok for r in results] == [False]
    assert "TypeError: Target 7 is out of bounds." in results[0].message
    assert "expected label-out-of-range: IndexError" in results[0].message


def _refuses(expected=None, computed=None):
    def call():
        raise ReferenceInputError("bad input", expected, computed)
    return call


def _raises(exc):
    def call():
        raise exc
    return call


@pytest.mark.parametrize("exc, ok", [
    (IndexError("Target 7 is out of bounds."), True),
    (IndexError("index 7 is out of bounds for dimension 0"), False),  # the class, not the message
    (RuntimeError("Target 7 is out of bounds."), False),  # the message, not the class
])
def test_the_implementation_must_make_the_expected_refusal(exc, ok):
    _, _, results = refusals(_refuses(LABEL_RANGE), _raises(exc))
    assert [r.ok for r in results] == [ok]


def test_without_a_stated_refusal_any_exception_of_the_implementation_refuses():
    _, _, results = refusals(_refuses(), _raises(KeyError("anything")))
    assert [r.ok for r in results] == [True]


def test_one_side_refusing_alone_fails():
    assert [r.ok for r in refusals(_refuses(LABEL_RANGE), lambda: 1.0)[2]] == [False]
    assert [r.ok for r in refusals(lambda: 1.0, _raises(IndexError("Target 7 is out of bounds.")))[2]] == [False]


def test_the_harness_and_the_adapter_raise_errors_not_refusals():
    def harness():
        return CHECKS_BY_ID["errors.adamw.hyperparameters"].prop(None, None, CPU64)  # None.params: conformance/

    with pytest.raises(AttributeError) as info:
        harness()
    assert raised_by_harness(info.value)
    with pytest.raises(AttributeError):
        refusals(_refuses(), harness)
    local = KeyError("raised here, in tests/")
    with pytest.raises(KeyError) as info:
        _raises(local)()
    assert not raised_by_harness(info.value)
    assert raised_by_harness(info.value, Lacking())  # this module holds the adapter's class


class EarlierRule:
    """An adapter following the rule before drift change `change_id` and the newer rule of every other."""

    def __init__(self, change_id):
        self.change_id = change_id

    def has(self, change_id):
        return change_id != self.change_id


@pytest.mark.parametrize("change_id, expected, old_class", [
    ("polynomial-lr-end-value-error", "polynomial-lr-end", "AssertionError"),
    ("collator-replacement-probabilities", "masking-probability", "RuntimeError"),
])
def test_a_release_before_a_drift_change_owes_its_own_refusal(change_id, expected, old_class):
    error = ReferenceInputError("bad", Refusal(expected, ("ValueError",)))
    assert expected_refusal(error, EarlierRule("another-change")).classes == ("ValueError",)
    assert expected_refusal(error, EarlierRule(change_id)).classes == (old_class,)


def test_steps_computed_before_a_refusal_are_compared():
    """polynomial with num_warmup_steps == num_training_steps == 1 is 0/0 at step 1: step 0 still compares."""
    case = SubjectCase("polynomial", {"schedule": {"num_warmup_steps": 1, "num_training_steps": 1, "lr_end": 1e-7,
                                                   "power": 1.0}, "base_lrs": [1e-5], "lr_init": 1e-5, "steps": 2,
                                      "resume_at": None})
    results = schedule_curve(ADAPTER, case, CPU64)
    assert sorted(r.key for r in results if r.ok) == sorted(
        ["lr[step, group]", "refusal", "get_scheduler: lr[step, group]", "get_scheduler: refusal"])

    class WrongFirstStep(TransformersAdapter):
        def lr_curve(self, *args, **kwargs):
            try:
                return super().lr_curve(*args, **kwargs)
            except ZeroDivisionError as exc:
                exc.computed = [[lr + 1e-6 for lr in row] for row in exc.computed]  # step 0 is 0 (warmup)
                raise

    failed = [r.key for r in schedule_curve(WrongFirstStep(), case, CPU64) if not r.ok]
    assert failed == ["lr[step, group]", "get_scheduler: lr[step, group]"]
    _, _, results = refusals(_refuses(computed=[1.0, 2.0]), _raises(ZeroDivisionError("division by zero")),
                             compare_computed=lambda a, e: [])
    assert [r.key for r in results] == ["refusal"]  # the implementation computed nothing: nothing to compare


def test_int32_labels_compare_numbers_where_transformers_computes_and_explain_only_its_exact_refusal():
    from conformance.checks.losses import INT32_LABELS_REFUSED
    from conformance.runner import run_check

    check = CHECKS_BY_ID["loss.sequence_classification.int32_labels"]
    regression = find(check.strategy(ADAPTER), lambda case: case.config["num_labels"] == 1,
                      settings=settings(database=None, max_examples=200)).cases[0]  # a CaseBatch's sub-case
    assert not INT32_LABELS_REFUSED.applies(ADAPTER, regression, CPU64)
    results = run_check(check, ADAPTER, regression, CPU64)
    assert {"loss", "logits"} <= {r.key for r in results} and all(r.ok and not r.message for r in results)
    single = find(check.strategy(ADAPTER), lambda case: case.config["num_labels"] > 1,
                  settings=settings(database=None, max_examples=200)).cases[0]
    assert INT32_LABELS_REFUSED.applies(ADAPTER, single, CPU64)
    assert [r.message for r in run_check(check, ADAPTER, single, CPU64)] == ["explained: int32-class-labels-refused"]
    assert INT32_LABELS_REFUSED.explains(RuntimeError("expected target dtype to be Long or Byte, but got Int"))
    assert not INT32_LABELS_REFUSED.explains(RuntimeError("expected target dtype to be Long or Byte, but got Double"))
    assert not INT32_LABELS_REFUSED.explains(ValueError("expected target dtype to be Long or Byte, but got Int"))
