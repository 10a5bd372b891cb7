"""What checks judge with: the refusals both sides make (`refusals`), and a case's rounding sensitivity
(`input_sensitivity`, `judge_conditioned`), which `runner.sensitivity` and the surface, decoding and gradient checks
measure too."""

import numpy as np

from reference import ReferenceInputError

from .check import expected_refusal, raised_by_harness
from .compare import EPS, Comparison, conditioned

SENSITIVITY_DRAWS = 2
"""Seeded draws of rounding per sensitivity measurement. An element's move in one draw is about normal with the
spread sigma of its rounding error, so the most over 2 draws falls below sigma / 10 with probability ~6e-3: enough
where it only decides a case that passes anyway, too few where it decides a miss."""
MISS_DRAWS = 16
"""Draws where a comparison missed and the sensitivity decides it (`runner.compare_with_reference`, the property
judges): the most over 16 falls below sigma / 10 with probability ~3e-18."""


def _perturbed(value, rng, eps):
    """`value` (a number, an array or nested lists of them) with every float moved by eps of itself, each in a
    random direction; integers and everything else as they are."""
    if isinstance(value, dict):
        return {k: _perturbed(v, rng, eps) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_perturbed(v, rng, eps) for v in value)
    if isinstance(value, float):
        return value * (1 + eps * rng.choice((-1.0, 1.0)))
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value * (1 + eps * rng.choice((-1.0, 1.0), size=value.shape))
    return value


def input_sensitivity(reference, inputs, dtype, draws=MISS_DRAWS, base=None):
    """A case's rounding sensitivity: per key and element, the most the float64 reference's outputs
    (`reference(inputs) -> {key: array}`) move when every float of `inputs` (nested lists, dicts, arrays: weights,
    float inputs, a property's parameters) is moved by eps(`dtype`) of itself in a random direction (`draws` seeded
    draws), as rounding them to `dtype` could move them. `base`: the reference's outputs on `inputs`, where the
    caller has them. Every check's sensitivity is measured here (`runner.sensitivity` for the model checks)."""
    base = reference(inputs) if base is None else base
    moved = {key: np.zeros_like(np.asarray(v, dtype=np.float64)) for key, v in base.items()}
    for draw in range(draws):
        out = reference(_perturbed(inputs, np.random.default_rng(draw), EPS[dtype]))
        with np.errstate(invalid="ignore"):
            for key in moved:
                moved[key] = np.fmax(moved[key], np.abs(np.asarray(out[key], dtype=np.float64) - base[key]))
    return moved


def judge_conditioned(results, actual, expected, tol, moved):
    """`results` with each comparison that missed its tolerance judged by `compare.conditioned` against the
    sensitivity `moved[key]` (see `input_sensitivity`); `actual` and `expected` map the same keys to arrays."""
    return [conditioned(r, actual[r.key], expected[r.key], tol, moved[r.key])
            if not r.ok and r.key in moved and r.key in actual and r.key in expected else r for r in results]


def refusals(reference_call, implementation_call, adapter=None, compare_computed=None):
    """Run both calls: (expected, actual, None) when both return, else (None, None, [Comparison, ...]).

    The reference refuses with ReferenceInputError, which states the refusal it expects: an exception class and,
    where stable, a message pattern, for the implementation's release (`check.expected_refusal`, through
    `adapter.has`). The "refusal" comparison holds when both refused and the implementation's exception is that
    refusal (any exception where the reference states none). An exception raised by the harness or the adapter
    (`check.raised_by_harness`) is no refusal: it is raised out of the check, which records an error. With
    `compare_computed(actual, expected) -> [Comparison]`, what both sides computed before one refused (a
    ReferenceInputError's `computed`, an implementation exception's `computed` attribute, or all a side returned)
    is compared over the steps both have."""
    ref_error = impl_error = None
    try:
        expected = reference_call()
    except ReferenceInputError as exc:
        ref_error, expected = exc, exc.computed
    try:
        actual = implementation_call()
    except Exception as exc:  # a refusal by the implementation, unless the harness or the adapter raised it
        if raised_by_harness(exc, adapter):
            raise
        impl_error, actual = exc, getattr(exc, "computed", None)
    if ref_error is None and impl_error is None:
        return expected, actual, None
    results = []
    if compare_computed is not None and expected is not None and actual is not None:
        steps = min(len(expected), len(actual))
        results += compare_computed(actual[:steps], expected[:steps]) if steps else []
    want = expected_refusal(ref_error, adapter) if ref_error is not None else None
    ok = ref_error is not None and impl_error is not None and (want is None or want.matches(impl_error))
    message = (f"implementation: {_described(impl_error)}; reference: {_described(ref_error)}"
               + (f"; expected {want}" if want is not None else ""))
    results.append(Comparison("refusal", ok, 0.0, "" if ok else message))
    return None, None, results


def _described(exc):
    """An exception's type and the first line of its message, or 'returned a result'."""
    if exc is None:
        return "returned a result"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
