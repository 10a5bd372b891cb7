"""Every training check can fail: against an adapter carrying a known bug, Hypothesis finds a failing case.

The bugs here live in torch (AdamW) or in the harness's own plumbing, which a mutated copy of transformers cannot
reach; bugs in transformers' own source are seeded by the mutation self-check.
"""

import numpy as np
import pytest
from hypothesis import find, settings

from conformance.adapters.transformers import TransformersAdapter
from conformance.registry import CHECKS_BY_ID
from conformance.runner import run_check
from conformance.targets import Target
from reference import optim

pytestmark = pytest.mark.harness

CPU64 = Target("cpu", "float64", "eager")


class ReferenceAdamW(TransformersAdapter):
    """An 'implementation' whose AdamW is the reference with one rule changed."""

    def __init__(self, **change):
        super().__init__()
        self.change = change

    def adamw(self, variant, params, grads, hyper, device="cpu", dtype="float64"):
        hyper = dict(hyper, betas=tuple(hyper["betas"]))
        hyper.pop("amsgrad", None)
        hyper.pop("correct_bias", None)
        return optim.adamw(params, grads, **{**hyper, "variant": "torch", **self.change})


class ClampsInPlaceToLastPosition(TransformersAdapter):
    """An implementation whose question answering clamps the caller's out-of-range positions in place, as releases
    before 4.7 do, but to L-1 instead of L (so they are scored instead of ignored)."""

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        length = case.inputs["input_ids"].shape[-1]
        for key in ("start_positions", "end_positions"):
            if key in case.labels:
                np.clip(case.labels[key], 0, length - 1, out=case.labels[key])
        return super().run(case, attn, device, dtype, grad)


def test_an_implementation_writing_into_its_inputs_cannot_hide_a_bug():
    """The reference computes on the case as drawn, not on what the implementation left in its inputs."""
    adapter = ClampsInPlaceToLastPosition()
    check = CHECKS_BY_ID["head.question_answering"]
    case = find(check.strategy(adapter), lambda case: not all(r.ok for r in run_check(check, adapter, case, CPU64)),
                settings=settings(max_examples=200, database=None, deadline=None))
    length = case.inputs["input_ids"].shape[-1]
    assert any((case.labels[k] >= length).any() for k in ("start_positions", "end_positions"))


def _failing_case(check_id, adapter):
    check = CHECKS_BY_ID[check_id]
    return find(check.strategy(adapter), lambda case: not all(r.ok for r in check.prop(adapter, case, CPU64)),
                settings=settings(max_examples=200, database=None, deadline=None))


@pytest.mark.parametrize("change", [
    {"variant": "transformers"},  # epsilon before the bias correction, decay after the step
    {"variant": "transformers", "correct_bias": False},  # no bias correction at all
    {"amsgrad": True},  # the running maximum of v where the plain v belongs
])
def test_adamw_check_catches(change):
    case = _failing_case("optim.torch.optim.AdamW", ReferenceAdamW(**change))
    assert case.params["grads"], case


class NoDecayExemptions(TransformersAdapter):
    def decay_parameter_names(self, head, config):
        names, _ = super().decay_parameter_names(head, config)
        return names, names  # the Trainer decays everything


class UnmaskedSpecials(TransformersAdapter):
    def mlm_collate(self, vocab_size, rows, settings, seed, return_tensors="pt"):
        inputs, labels = super().mlm_collate(vocab_size, rows, settings, seed, return_tensors)
        if settings.get("mlm", True):
            width = labels.shape[1]
            original = np.array([list(r) + [0] * (width - len(r)) for r in rows])
            labels = np.where(original == 2, 2, labels)  # [CLS] always selected
        return inputs, labels


def test_decay_check_catches():
    assert _failing_case("optim.no_decay_grouping", NoDecayExemptions())


def test_masking_rule_check_catches():
    assert _failing_case("masking.rule.pt", UnmaskedSpecials())


class EarlierRule(TransformersAdapter):
    """The installed transformers, with the reference expecting the rule from before drift change `change_id`."""

    def __init__(self, change_id):
        super().__init__()
        self.change_id = change_id

    def has(self, change_id):
        return change_id != self.change_id and super().has(change_id)


@pytest.mark.parametrize("change_id, check_id", [
    ("get-scheduler-specific-kwargs", "schedule.cosine"),
    ("get-scheduler-specific-kwargs", "schedule.reduce_lr_on_plateau"),
    ("get-scheduler-inverse-sqrt-kwargs", "schedule.inverse_sqrt"),
    ("get-scheduler-wsd-branch", "schedule.warmup_stable_decay"),
    ("get-scheduler-wsd-training-steps", "schedule.warmup_stable_decay"),
])
def test_get_scheduler_rules_are_observed(change_id, check_id):
    """Each rule of get_scheduler's argument passing is visible to the schedule check: against the newest release,
    the reference following the rule before the change fails on some case (through get_scheduler only)."""
    adapter = EarlierRule(change_id)
    if not TransformersAdapter().has(change_id):
        pytest.skip(f"transformers {adapter.version} predates {change_id}")
    check = CHECKS_BY_ID[check_id]
    case = _failing_case(check_id, adapter)
    failed = [r.key for r in check.prop(adapter, case, CPU64) if not r.ok]
    assert failed and all(key.startswith("get_scheduler: ") for key in failed), (case, failed)
