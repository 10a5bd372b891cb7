"""The rules of `conformance.get_scheduler.get_scheduler_arguments`: what get_scheduler hands a schedule, per
release."""

import pytest

from conformance.get_scheduler import get_scheduler_arguments
from reference import ReferenceInputError



COSINE = {"num_warmup_steps": 2, "num_training_steps": 10, "num_cycles": 1.5}


def test_get_scheduler_passes_step_counts_and_specific_kwargs():
    assert get_scheduler_arguments("cosine", COSINE) == COSINE


def test_get_scheduler_before_specific_kwargs_keeps_the_defaults():
    assert get_scheduler_arguments("cosine", COSINE, specific_kwargs=False) == {
        "num_warmup_steps": 2, "num_training_steps": 10}
    assert get_scheduler_arguments("reduce_lr_on_plateau", {"factor": 0.5}, specific_kwargs=False) == {}


def test_get_scheduler_constant_and_constant_with_warmup_take_nothing_else():
    assert get_scheduler_arguments("constant", {"num_warmup_steps": 3}) == {}
    assert get_scheduler_arguments("constant_with_warmup", {"num_warmup_steps": 3, "num_training_steps": 9}) == {
        "num_warmup_steps": 3}


def test_get_scheduler_stateful_schedules_get_only_their_own_kwargs():
    assert get_scheduler_arguments("greedy", {"factor": 0.5, "patience": 2}) == {"factor": 0.5, "patience": 2}


def test_get_scheduler_inverse_sqrt_timescale_dropped_before_5_4():
    params = {"num_warmup_steps": 0, "timescale": 4}
    assert get_scheduler_arguments("inverse_sqrt", params) == params
    assert get_scheduler_arguments("inverse_sqrt", params, inverse_sqrt_kwargs=False) == {"num_warmup_steps": 0}


def test_get_scheduler_requires_the_step_counts_it_reads():
    with pytest.raises(ReferenceInputError):
        get_scheduler_arguments("linear", {"num_training_steps": 5})  # no warmup
    with pytest.raises(ReferenceInputError):
        get_scheduler_arguments("linear", {"num_warmup_steps": 1})  # no total
    assert get_scheduler_arguments("inverse_sqrt", {"num_warmup_steps": 1}) == {"num_warmup_steps": 1}


def test_get_scheduler_warmup_stable_decay_across_releases():
    wsd = {"num_warmup_steps": 1, "num_stable_steps": 2, "num_decay_steps": 3}
    assert get_scheduler_arguments("warmup_stable_decay", wsd) == dict(wsd, num_training_steps=None)
    assert get_scheduler_arguments("warmup_stable_decay", wsd, wsd_training_steps=False) == wsd
    with pytest.raises(ReferenceInputError):  # 4.41: the generic path wants num_training_steps
        get_scheduler_arguments("warmup_stable_decay", wsd, wsd_branch=False, wsd_training_steps=False)
    with pytest.raises(ReferenceInputError):  # ... and passes it, which that schedule does not take
        get_scheduler_arguments("warmup_stable_decay", dict(wsd, num_training_steps=6), wsd_branch=False,
                                  wsd_training_steps=False)
