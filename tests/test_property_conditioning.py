"""The conditioning judge for property checks: AdamW's comparisons that miss the float32 tolerance are judged by
how far rounding the parameters and gradients moves the float64 reference (`runner.input_sensitivity`); a real
error still fails. Schedules are not judged so: their check runs once, in float64, on Python floats."""

import copy

import numpy as np
import pytest

from conformance.case import SubjectCase
from conformance.checks.adamw import adamw_steps, reference_adamw
from conformance.compare import EPS
from conformance.judges import input_sensitivity
from conformance.targets import Target

pytestmark = pytest.mark.harness

CPU32 = Target("cpu", "float32", "eager")


def test_input_sensitivity_of_a_cancellation():
    """x - y for x ~ y: rounding the inputs at eps moves it by about eps * |x|, far more than eps * |x - y|."""
    moved = input_sensitivity(lambda p: {"d": np.array([p["x"] - p["y"]])}, {"x": 1.0, "y": 1.0 - 1e-6}, "float32",
                              draws=4)
    assert 0.5 * EPS["float32"] <= moved["d"][0] <= 2.01 * EPS["float32"]


class Off:
    """An AdamW that returns the reference's steps with `how(key, array)` applied to each state array."""

    def __init__(self, how):
        self.how = how

    def adamw(self, variant, params, grads, hyper, device, dtype):
        case = SubjectCase(variant, {"params": params, "grads": grads, "hyper": hyper})
        history = copy.deepcopy(reference_adamw(case))
        return [{k: [self.how(k, np.asarray(a)) for a in v] for k, v in state.items()} for state in history]


def _case(eps=1e-8, scale=1e-3):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((2, 3)).tolist()]
    grads = [[(scale * rng.standard_normal((2, 3))).tolist()] for _ in range(3)]
    hyper = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": eps, "weight_decay": 0.01, "amsgrad": False}
    return SubjectCase("torch.optim.AdamW", {"params": params, "grads": grads, "hyper": hyper})


def test_a_miss_within_ten_times_the_sensitivity_is_explained_not_passed():
    from conformance.compare import Tolerance, compare
    from conformance.judges import judge_conditioned
    tol = Tolerance(1e-4, 1e-4)
    expected, moved = {"k": np.array([1.0, 2.0])}, {"k": np.array([1e-3, 1e-3])}
    for error, explained in ((5e-3, True), (2e-2, False)):
        actual = {"k": expected["k"] + error}
        (result,) = judge_conditioned([compare("k", actual["k"], expected["k"], tol)], actual, expected, tol, moved)
        assert result.ok == explained and result.explained.startswith("ill-conditioned") == explained


def test_adamw_in_float32_exact_steps_pass_without_the_judge():
    results = adamw_steps(Off(lambda k, a: a.astype(np.float32).astype(np.float64)), _case(), CPU32)
    assert all(r.ok and not r.explained for r in results), [r.message for r in results if not r.ok]


def test_a_one_percent_error_in_the_second_moment_still_fails():
    results = adamw_steps(Off(lambda k, a: a * 1.01 if k == "exp_avg_sq" else a), _case(), CPU32)
    assert not all(r.ok for r in results)
