"""One tolerance policy and one comparison, used by every check.

Tolerances come from the arithmetic, not from observed errors. A value computed in precision p through a BERT
of depth <= 3 layers, width <= 16 and sequences <= 16 goes through at most ~10^2 dependent roundings (matmul
accumulation over <= 16 terms, LayerNorm, softmax, erf/tanh), each at most eps(p), and LayerNorm re-normalises
every layer so errors do not compound multiplicatively. So |error| <= C * eps(p) * scale with C = 10^3
leaves an order-of-magnitude margin over the worst case and is still far below any formula error:

| dtype    | eps      | rtol = atol (~ 10^3 eps) |
|----------|----------|--------------------------|
| float64  | 2.2e-16  | 1e-12 (float64 runs in this suite see ~1e-15) |
| float32  | 1.2e-7   | 1e-4  |
| bfloat16 | 7.8e-3   | 1e-1 (only coarse bugs are visible in bfloat16) |

A device does not change these: CUDA/MPS kernels (TF32 is switched off by the harness) round at the same eps
with a different summation order. The comparison is numpy's `|actual - expected| <= atol + rtol * |expected|`,
NaN equal to NaN, infinities equal only to themselves.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


TOLERANCES = {
    "float64": Tolerance(rtol=1e-12, atol=1e-12),
    "float32": Tolerance(rtol=1e-4, atol=1e-4),
    "bfloat16": Tolerance(rtol=1e-1, atol=1e-1),
}


def tolerance(dtype: str, device: str = "cpu") -> Tolerance:
    """The tolerance for values computed in `dtype` on `device` (the device does not change it, see above)."""
    return TOLERANCES[dtype]


@dataclass
class Comparison:
    """The outcome of comparing one output: `ratio` is max(|diff| / (atol + rtol |expected|)); <= 1 passes."""

    key: str
    ok: bool
    ratio: float
    message: str = ""


def compare(key, actual, expected, tol: Tolerance, exact_zeros=False) -> Comparison:
    """Compare arrays elementwise; with `exact_zeros`, every place where `expected` is exactly 0.0 must be exactly
    0.0 in `actual` (used for gradients at ignored positions)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Comparison(key, False, math.inf, f"{key}: shape {actual.shape} != expected shape {expected.shape}")
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, NaN: the general path below settles them
        diff = np.abs(actual - expected)
    if tol.atol > 0 and np.isfinite(diff).all():  # the common case, in a few passes over large logits
        allowed = np.abs(expected)
        allowed *= tol.rtol
        allowed += tol.atol
        ratios = diff / allowed
    else:  # NaN equals NaN, an infinity equals itself; an exact comparison (atol 0) divides 0 by 0
        both_nan = np.isnan(actual) & np.isnan(expected)
        same_inf = np.isinf(expected) & (actual == expected)
        diff = np.where(both_nan | same_inf, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        allowed = tol.atol + tol.rtol * np.where(np.isfinite(expected), np.abs(expected), 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):  # allowed == 0 for exact comparisons
            ratios = np.where(diff == 0, 0.0, diff / allowed)
    ratio = float(ratios.max()) if ratios.size else 0.0
    lines = []
    if exact_zeros:
        leaked = (expected == 0.0) & (actual != 0.0)
        if leaked.any():
            where = tuple(int(i) for i in np.argwhere(leaked)[0])
            lines.append(
                f"{key}: {int(leaked.sum())} entries must be exactly 0 (ignored positions) but are not; "
                f"first at {where}: {actual[where]!r}"
            )
    if ratio <= 1 and not lines:
        return Comparison(key, True, ratio)
    if ratio > 1:
        i = np.unravel_index(int(np.argmax(ratios)), ratios.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = diff / np.abs(expected)
        j = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(rel), rel, -1.0))), rel.shape) if rel.size else ()
        lines.insert(0, (
            f"{key}: mismatched elements {int((ratios > 1).sum())}/{ratios.size} "
            f"(rtol={tol.rtol:g}, atol={tol.atol:g}); greatest absolute difference {float(diff[i]):.3e} at index "
            f"{tuple(int(x) for x in i)} (actual {actual[i]!r}, expected {expected[i]!r}); greatest relative "
            f"difference {float(rel[j]) if rel.size else 0.0:.3e} at index {tuple(int(x) for x in j)}"
        ))
    return Comparison(key, False, ratio, "\n".join(lines))
