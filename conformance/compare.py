"""One tolerance policy and one comparison, used by every check.

Tolerances come from the arithmetic, not from observed errors (docs/tolerances.md derives them). An output y
computed in precision p errs by at most C * eps(p) * s, where s is the scale of the operands y was computed from
and C counts the dependent roundings. A BERT of depth <= 3, width <= 16 and sequences <= 16 chains at most ~10^2
roundings (matmul accumulation over <= 16 terms, LayerNorm, softmax, erf/tanh), each at most eps(p), and
LayerNorm re-normalises every layer so errors do not compound; C = 10^3 leaves an order of magnitude over that:

| dtype    | eps      | rtol = atol (~ 10^3 eps) |
|----------|----------|--------------------------|
| float64  | 2.2e-16  | 1e-12 |
| float32  | 1.2e-7   | 1e-4  |

In the reduced precisions (bfloat16, float16, and float32 weights under torch.autocast to bfloat16: REDUCED) the
same C would allow errors of order 1 to 8, which only a broken model crosses. There the tolerance is the case's own:
rtol = atol = 8 eps for the last few roundings of the output itself (stored in the dtype: one rounding; its bias,
LayerNorm or accumulation: a few more), plus CONDITIONING times the case's rounding sensitivity (`conditioned`,
measured at the dtype's eps) for everything rounded upstream and carried through the network. Each intermediate
rounding moves the output about as much as one draw of rounding every weight does, so this is the same bound as
the conditioning judge's, applied from the start: within it a reduced-precision output passes.

| dtype             | eps     | rtol = atol (8 eps) | plus |
|-------------------|---------|---------------------|------|
| bfloat16          | 7.8e-3  | 6.25e-2             | 10 x sensitivity at eps |
| float16           | 9.8e-4  | 7.8e-3              | 10 x sensitivity at eps |
| autocast_bfloat16 | 7.8e-3  | 6.25e-2             | 10 x sensitivity at eps |

Each element may differ by `rtol * |expected| + atol * scale + floor`:
- `rtol * |expected|` bounds the rounding of an element computed from operands of its own size;
- `atol * scale` bounds the rounding an element carries from operands of the output's scale: an element near 0
  in an array whose other elements are of size s was computed from terms of size ~s (a LayerNorm output, a
  logit, a moment). `scale` defaults to min(1, max |expected|) over the output's finite elements: an output
  compared at its own scale, so a quantity of size 1e-9 (an AdamW second moment) is compared to ~1e-13 in
  float32 and not to the 1e-4 of its neighbours; capped at 1 so that no comparison is looser than the absolute
  1e-4 / 1e-12 the policy always had. A check whose output is a difference of larger terms states their scale
  (`scale=`): the output's own scale is not the scale of its rounding.
- `floor` (default 0): rounding a check derives from operands of another size, e.g. the parameter stored at each
  optimizer step when the update itself is compared (`rounding`).

A comparison that misses this fixed tolerance may still hold, as explained and never as a pass, within
CONDITIONING times the case's own measured rounding sensitivity (`conditioned`): a case whose arithmetic amplifies
rounding beyond what C assumes.

A device does not change these: CUDA/MPS kernels (TF32 is switched off by the harness) round at the same eps
with a different summation order. NaN equals NaN, infinities equal only themselves.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """`rtol` per unit of |expected|, `atol` per unit of the output's scale (see the module docstring)."""

    rtol: float
    atol: float


EPS = {"float64": 2.0 ** -52, "float32": 2.0 ** -23, "bfloat16": 2.0 ** -7, "float16": 2.0 ** -10,
       "autocast_bfloat16": 2.0 ** -7}
REDUCED = ("bfloat16", "float16", "autocast_bfloat16")  # tolerance: 8 eps plus the case's sensitivity (above)
TOLERANCES = {
    "float64": Tolerance(rtol=1e-12, atol=1e-12),
    "float32": Tolerance(rtol=1e-4, atol=1e-4),
    **{dtype: Tolerance(rtol=8 * EPS[dtype], atol=8 * EPS[dtype]) for dtype in REDUCED},
}


def tolerance(dtype: str, device: str = "cpu") -> Tolerance:
    """The tolerance for values computed in `dtype` on `device` (the device does not change it, see above)."""
    return TOLERANCES[dtype]


def rounding(dtype: str, count, size):
    """The most `count` roundings to `dtype` of values of magnitude `size` (a number or an array) can add: each
    rounding to nearest moves a value by at most eps/2 of its magnitude."""
    return count * EPS[dtype] / 2 * np.abs(size)


def output_scale(expected) -> float:
    """An output's own scale: min(1, max |expected|) over its finite elements (0 for none)."""
    finite = np.abs(expected[np.isfinite(expected)])
    return min(1.0, float(finite.max())) if finite.size else 0.0


@dataclass
class Comparison:
    """The outcome of comparing one output: `ratio` is max(|diff| / allowed); <= 1 passes. `explained` names the
    known difference under which it was compared at a looser tolerance than the dtype's own (it holds then as
    explained, not as a pass)."""

    key: str
    ok: bool
    ratio: float
    message: str = ""
    explained: str = ""


def compare(key, actual, expected, tol: Tolerance, exact_zeros=False, scale=None, floor=0.0) -> Comparison:
    """Compare arrays elementwise: |actual - expected| <= rtol |expected| + atol * scale + floor, with `scale` the
    output's own (`output_scale`) unless the check states its operands' scale (a number or an array); with
    `exact_zeros`, every place where `expected` is exactly 0.0 must be exactly 0.0 in `actual` (used for gradients
    at ignored positions)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        return Comparison(key, False, math.inf, f"{key}: shape {actual.shape} != expected shape {expected.shape}")
    if scale is None:
        scale = output_scale(expected)
    absolute = tol.atol * np.asarray(scale, dtype=np.float64) + floor  # a number, or an array like expected
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, NaN: the general path below settles them
        diff = np.abs(actual - expected)
    if np.all(absolute > 0) and np.isfinite(diff).all():  # the common case, in a few passes over large logits
        allowed = np.abs(expected)
        allowed *= tol.rtol
        allowed += absolute
        ratios = diff / allowed
    else:  # NaN equals NaN, an infinity equals itself; an exact comparison (nothing allowed) divides 0 by 0
        both_nan = np.isnan(actual) & np.isnan(expected)
        same_inf = np.isinf(expected) & (actual == expected)
        diff = np.where(both_nan | same_inf, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
        allowed = absolute + tol.rtol * np.where(np.isfinite(expected), np.abs(expected), 0.0)
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
            f"(rtol={tol.rtol:g}, atol={tol.atol:g} x scale {float(np.max(scale, initial=0.0)):.3g}"
            f"{' + floor' if np.any(floor) else ''}); greatest absolute difference {float(diff[i]):.3e} at index "
            f"{tuple(int(x) for x in i)} (actual {actual[i]!r}, expected {expected[i]!r}); greatest relative "
            f"difference {float(rel[j]) if rel.size else 0.0:.3e} at index {tuple(int(x) for x in j)}"
        ))
    return Comparison(key, False, ratio, "\n".join(lines))


CONDITIONING = 10
"""How far beyond a case's measured rounding sensitivity an implementation's error may go when the fixed tolerance
missed it (see `conditioned`): its error is a sum of ~10^2 roundings, each moving the output by about what one
draw of rounding every weight moves it (`sensitivity` in `runner`); as independent, mean-zero errors they add up to
~sqrt(10^2) = 10 such moves (the probabilistic model of Higham & Mary that the checkpoint derivation uses)."""


def conditioned(result, actual, expected, tol, sensitivity, exact_zeros=False, scale=None):
    """Judge a comparison `result` that missed `tol` by the case's own rounding sensitivity (an array like
    `expected`: how far the float64 reference moves when the weights are rounded at the target dtype's eps): it
    holds, as explained and never as a pass, where every element is within `tol` plus CONDITIONING times the
    sensitivity; otherwise `result` stands. The reason names the element that missed `tol` the most: its
    sensitivity S and error E."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    sensitivity = np.asarray(sensitivity, dtype=np.float64)
    if result.ok or actual.shape != expected.shape or sensitivity.shape != expected.shape:
        return result
    judged = compare(result.key, actual, expected, tol, exact_zeros, scale, floor=CONDITIONING * sensitivity)
    if not judged.ok:
        return result
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(actual - expected)
        allowed = tol.rtol * np.abs(expected) + tol.atol * (output_scale(expected) if scale is None else scale)
        worst = np.unravel_index(int(np.nanargmax(diff / allowed)), diff.shape)
    reason = f"ill-conditioned case: sensitivity {float(sensitivity[worst]):.2g}, error {float(diff[worst]):.2g}"
    return Comparison(result.key, True, judged.ratio, "", explained=reason)
