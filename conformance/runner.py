"""Runs one drawn case of one check through the adapter and the reference and compares them."""

import re
from dataclasses import dataclass

import numpy as np

import reference
from reference import heads as ref_heads

from .compare import Comparison, compare, tolerance


@dataclass(frozen=True)
class Target:
    """Where and how transformers runs: device, dtype and attention implementation."""

    device: str
    dtype: str
    attn: str

    @property
    def id(self):
        return f"{self.device}-{self.dtype}-{self.attn}"

    @classmethod
    def parse(cls, text):
        device, dtype, attn = text.split("-")
        return cls(device, dtype, attn)


def reference_outputs(case, weights, adapter):
    """The reference's outputs for `case` with the weights transformers holds; version rules come from the adapter."""
    spec = reference.BertSpec.from_mapping(case.config)
    kwargs = dict(case.inputs)
    kwargs.update(case.labels)
    if case.head == "BertForTokenClassification" and case.labels:
        kwargs["loss_uses_attention_mask"] = not adapter.has("token-classification-loss-ignores-only-labels")
    if case.num_items_in_batch is not None:
        kwargs["num_items_in_batch"] = case.num_items_in_batch
    return ref_heads.HEADS[case.head](weights, spec, **kwargs)


def _flatten(outputs):
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        elif value is not None:
            flat[key] = value
    return flat


def compare_with_reference(check, case, adapter, target):
    """Compare every output the reference produces for `case` with transformers'. Returns a list of Comparisons.

    A known difference that holds for the installed version either loosens the named outputs to another dtype's
    tolerance or, if transformers raises as that difference predicts, ends the comparison as explained.
    """
    known = [k for k in check.known if k.holds(adapter)]
    try:
        actual, weights = adapter.run(case, target.attn, target.device, target.dtype)
    except Exception as exc:  # an explained refusal is data, anything else is a failure
        for k in known:
            if k.raises and re.search(k.raises, f"{type(exc).__name__}: {exc}"):
                return [Comparison("raises", True, 0.0, f"explained: {k.id}")]
        raise
    expected = _flatten(reference_outputs(case, weights, adapter))
    actual = _flatten(actual)
    overrides = {key: dtype for k in known for key, dtype in k.tolerance_dtype.items()}
    results = []
    for key, value in expected.items():
        if key not in actual:
            results.append(Comparison(key, False, np.inf, f"{key}: transformers returned no such output"))
            continue
        # a known difference may loosen an output to another dtype's tolerance, never tighten it
        candidates = (target.dtype, overrides.get(key.split(".")[0], target.dtype))
        tol = max((tolerance(d, target.device) for d in candidates), key=lambda t: t.rtol)
        results.append(compare(key, actual[key], value, tol, exact_zeros=key.startswith("loss_grad")))
    return results


def run_check(check, adapter, case, target):
    """The comparisons of one case: against the reference, or the check's own property."""
    if check.kind == "reference":
        return compare_with_reference(check, case, adapter, target)
    return check.prop(adapter, case, target)
