"""The comparison and tolerance policy: what passes, what fails, and what the message says."""

import numpy as np
import pytest

from conformance.compare import TOLERANCES, Tolerance, compare

pytestmark = pytest.mark.reference

TIGHT = Tolerance(rtol=1e-12, atol=1e-12)


def test_equal_arrays_pass_with_ratio_zero():
    r = compare("x", np.array([1.0, 2.0]), np.array([1.0, 2.0]), TIGHT)
    assert r.ok and r.ratio == 0.0


def test_difference_within_tolerance_reports_its_ratio():
    r = compare("x", np.array([1.0 + 5e-13]), np.array([1.0]), TIGHT)  # allowed 1e-12 + 1e-12 * 1 = 2e-12
    assert r.ok and r.ratio == pytest.approx(0.25, rel=1e-3)


def test_difference_beyond_tolerance_fails_with_location():
    r = compare("logits", np.array([[1.0, 2.0], [3.0, 4.1]]), np.array([[1.0, 2.0], [3.0, 4.0]]), TIGHT)
    assert not r.ok
    assert "mismatched elements 1/4" in r.message and "(1, 1)" in r.message and "logits" in r.message


def test_nan_equals_nan_but_not_a_number():
    assert compare("loss", np.array(np.nan), np.array(np.nan), TIGHT).ok
    assert not compare("loss", np.array(0.0), np.array(np.nan), TIGHT).ok
    assert not compare("loss", np.array(np.nan), np.array(0.0), TIGHT).ok


def test_infinities_equal_only_to_themselves():
    assert compare("x", np.array([np.inf]), np.array([np.inf]), TIGHT).ok
    assert not compare("x", np.array([-np.inf]), np.array([np.inf]), TIGHT).ok


def test_shape_mismatch_fails():
    assert not compare("x", np.zeros((2, 1)), np.zeros(2), TIGHT).ok


def test_exact_zeros_catch_a_tiny_leak_the_tolerance_would_allow():
    expected = np.array([0.0, 0.5])
    actual = np.array([1e-300, 0.5])
    assert compare("g", actual, expected, TIGHT).ok
    r = compare("g", actual, expected, TIGHT, exact_zeros=True)
    assert not r.ok and "exactly 0" in r.message


def test_zero_tolerance_means_bitwise():
    exact = Tolerance(0.0, 0.0)
    assert compare("x", np.array([1.0]), np.array([1.0]), exact).ok
    assert not compare("x", np.array([np.nextafter(1.0, 2.0)]), np.array([1.0]), exact).ok


def test_policy_is_tight():
    assert TOLERANCES["float64"].rtol <= 1e-10 and TOLERANCES["float64"].atol <= 1e-10
    assert TOLERANCES["float32"].rtol < 1e-3
