"""Metamorphic properties and error conformance: relations checked on transformers alone, and refusals that
transformers and the reference must share."""

import numpy as np
from hypothesis import strategies as st

import reference

from .case import Case
from .compare import Comparison, compare, tolerance
from .runner import reference_outputs
from .adapter import logit_keys


def _run(adapter, case, target, grad=False):
    out, _ = adapter.run(case, target.attn, target.device, target.dtype, grad=grad)
    return out


def _tol(target):
    return tolerance(target.dtype, target.device)


def padding_invariance(adapter, case, target, extra=2):
    """Appending `extra` padded positions (attention mask 0, label -100) changes neither the outputs at the real
    positions nor the loss."""
    batch, length = case.inputs["input_ids"].shape
    mask = case.inputs.get("attention_mask", np.ones((batch, length), dtype=np.int64))

    def pad(a, value):
        return np.concatenate([a, np.full((batch, extra), value, dtype=a.dtype)], axis=1)

    inputs = {k: pad(v, 1 % case.config["vocab_size"] if k == "input_ids" else 0) for k, v in case.inputs.items()}
    inputs["attention_mask"] = pad(mask, 0)
    padded = Case(case.head, case.config, case.weights_seed, inputs, {"labels": pad(case.labels["labels"], -100)})
    a, b = _run(adapter, case, target), _run(adapter, padded, target)
    real = mask.astype(bool)
    return [compare("logits[real positions]", b["logits"][:, :length][real], a["logits"][real], _tol(target)),
            compare("loss", b["loss"], a["loss"], _tol(target))]


def batch_split(adapter, case, target):
    """A batch gives the same per-example logits as its examples run one at a time."""
    whole = _run(adapter, Case(case.head, case.config, case.weights_seed, case.inputs), target)
    results = []
    for i in range(case.inputs["input_ids"].shape[0]):
        one = Case(case.head, case.config, case.weights_seed, {k: v[i:i + 1] for k, v in case.inputs.items()})
        alone = _run(adapter, one, target)
        for key in logit_keys(case.head):
            results.append(compare(f"{key}[example {i}]", alone[key][0], whole[key][i], _tol(target)))
    return results


def choice_permutation(adapter, case, target):
    """Permuting the choices of every example permutes the multiple-choice logits the same way and keeps the loss
    (labels follow their choice)."""
    choices = case.inputs["input_ids"].shape[1]
    perm = np.roll(np.arange(choices), 1)
    inputs = {k: v[:, perm] for k, v in case.inputs.items()}
    inverse = np.argsort(perm)
    labels = case.labels["labels"]
    new_labels = np.where(labels == -100, -100, inverse[np.clip(labels, 0, None)]).astype(labels.dtype)
    permuted = Case(case.head, case.config, case.weights_seed, inputs, {"labels": new_labels})
    a, b = _run(adapter, case, target), _run(adapter, permuted, target)
    return [compare("logits", b["logits"], a["logits"][:, perm], _tol(target)),
            compare("loss", b["loss"], a["loss"], _tol(target))]


def eval_determinism(adapter, case, target):
    """Eval mode is deterministic: two runs of the same case agree bit for bit (dropout is off)."""
    a, b = _run(adapter, case, target), _run(adapter, case, target)
    exact = type(_tol(target))(rtol=0.0, atol=0.0)
    return [compare(key, b[key], a[key], exact) for key in a if key != "loss_grad"]


def ignored_zero_grad(adapter, case, target):
    """Positions whose label is -100 (for the causal LM: the label they are scored against after the shift, and the
    last position) get exactly zero gradient of the loss with respect to their logits."""
    out = _run(adapter, case, target, grad=True)
    labels = case.labels["labels"]
    scored = reference.losses.shift_labels(labels) if case.head == "BertLMHeadModel" else labels
    ignored = scored == -100
    grad = out["loss_grad"]["logits"][ignored]
    return [compare("loss_grad.logits[ignored]", grad, np.zeros_like(grad), type(_tol(target))(0.0, 0.0))]


def both_refuse(adapter, case, target):
    """transformers raises and the reference raises ReferenceInputError: neither returns a number for bad labels.
    Where the version's rule never reads the corrupted label (the early token-classification rule skips padded
    positions), the reference accepts it, and then transformers must accept it too."""
    spec_weights = adapter.build(case, target.attn, target.device, target.dtype)[1]
    try:
        adapter.run(case, target.attn, target.device, target.dtype, grad=False)
        tf = None
    except Exception as exc:  # any refusal counts; its type is recorded in the message
        tf = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    try:
        reference_outputs(case, spec_weights, adapter)
        ref = None
    except reference.ReferenceInputError as exc:
        ref = f"ReferenceInputError: {exc}"
    ok = (tf is None) == (ref is None)
    message = f"transformers: {tf or 'returned a result'}; reference: {ref or 'returned a result'}"
    return [Comparison("refusal", ok, 0.0, "" if ok else message)]


@st.composite
def corrupted(draw, valid_cases, how):
    """A valid case whose labels are then broken `how`: out_of_range | wrong_shape | float_dtype.

    Out of range: one label, at any position, becomes one of classes..classes+5, -99..-1 or -1000..-101 (the
    label byte, the position and the value drawn as one choice of four bytes, each shrinking toward the first)."""
    case = draw(valid_cases)
    labels = case.labels["labels"]
    if how == "out_of_range":
        classes = case.config["vocab_size"] if case.head == "BertForMaskedLM" else case.config["num_labels"]
        kind, index, high, low = (int(b) for b in draw(st.binary(min_size=4, max_size=4)))
        value = high * 256 + low
        bad = (classes + value % 6, -1 - value % 99, -101 - value % 900)[kind % 3]
        labels = labels.copy()
        labels.flat[index % labels.size] = bad
    elif how == "wrong_shape":
        labels = np.concatenate([labels, labels[..., :1]], axis=-1)
    elif how == "float_dtype":
        labels = labels.astype(np.float64)
    case.labels = {"labels": labels}
    return case
