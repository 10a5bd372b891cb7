"""Metamorphic relations: properties checked on the implementation alone (padding, batching, choice order,
determinism, zero gradient at ignored positions)."""

import numpy as np

from reference.losses import shift_labels

from ..case import Case, logit_keys
from ..check import Check
from ..compare import Tolerance, compare, tolerance
from ..port import ignore_index
from .encoder import model_cases


def _run(adapter, case, target, grad=False):
    out, _ = adapter.run(case, target.attn, target.device, target.dtype, grad=grad)
    return out


def _tol(target):
    return tolerance(target.dtype, target.device)


def padding_invariance(adapter, case, target, extra=2):
    """Appending `extra` padded positions (attention mask 0, the ignored label: -100 or the port's) changes neither the
    outputs at the real positions nor the loss."""
    batch, length = case.inputs["input_ids"].shape
    mask = case.inputs.get("attention_mask", np.ones((batch, length), dtype=np.int64))

    def pad(a, value):
        return np.concatenate([a, np.full((batch, extra), value, dtype=a.dtype)], axis=1)

    inputs = {k: pad(v, 1 % case.config["vocab_size"] if k == "input_ids" else 0) for k, v in case.inputs.items()}
    inputs["attention_mask"] = pad(mask, 0)
    labels = {"labels": pad(case.labels["labels"], ignore_index(adapter, case.head))}
    padded = Case(case.head, case.config, case.weights_seed, inputs, labels)
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
    ignored = ignore_index(adapter, case.head)
    new_labels = np.where(labels == ignored, ignored, inverse[np.clip(labels, 0, None)]).astype(labels.dtype)
    permuted = Case(case.head, case.config, case.weights_seed, inputs, {"labels": new_labels})
    a, b = _run(adapter, case, target), _run(adapter, permuted, target)
    return [compare("logits", b["logits"], a["logits"][:, perm], _tol(target)),
            compare("loss", b["loss"], a["loss"], _tol(target))]


def eval_determinism(adapter, case, target):
    """Eval mode is deterministic: two runs of the same case agree bit for bit (dropout is off)."""
    a, b = _run(adapter, case, target), _run(adapter, case, target)
    exact = Tolerance(rtol=0.0, atol=0.0)
    return [compare(key, b[key], a[key], exact) for key in a if key != "loss_grad"]


def ignored_zero_grad(adapter, case, target):
    """Positions whose label is ignored (-100, or the port's; for the causal LM: the label they are scored against after
    the shift, and the last position) get exactly zero gradient of the loss with respect to their logits."""
    out = _run(adapter, case, target, grad=True)
    labels = case.labels["labels"]
    scored = shift_labels(labels) if case.head == "BertLMHeadModel" else labels
    ignored = scored == ignore_index(adapter, case.head)
    grad = out["loss_grad"]["logits"][ignored]
    return [compare("loss_grad.logits[ignored]", grad, np.zeros_like(grad), Tolerance(0.0, 0.0))]


def _metamorphic(name, head, prop, description=None, **kw):
    return Check(f"metamorphic.{name}", "metamorphic", head, description or prop.__doc__, model_cases(head, **kw),
                 kind="metamorphic", prop=prop)


CHECKS = [
    _metamorphic("padding_invariance.token_classification", "BertForTokenClassification", padding_invariance,
                 labels="tokens"),
    _metamorphic("padding_invariance.masked_lm", "BertForMaskedLM", padding_invariance, labels="tokens"),
    _metamorphic("batch_split.sequence_classification", "BertForSequenceClassification", batch_split, labels="none"),
    _metamorphic("batch_split.question_answering", "BertForQuestionAnswering", batch_split, labels="none",
                 num_labels=2),
    _metamorphic("choice_permutation", "BertForMultipleChoice", choice_permutation, labels="class", num_labels=1),
    _metamorphic("eval_determinism", "BertForPreTraining", eval_determinism, labels="pretraining"),
    _metamorphic("ignored_zero_grad.causal_lm", "BertLMHeadModel", ignored_zero_grad,
                 "positions labelled -100 (after the shift, and the last position) get exactly zero gradient",
                 labels="tokens", is_decoder=True),
    _metamorphic("ignored_zero_grad.token_classification", "BertForTokenClassification", ignored_zero_grad,
                 labels="tokens"),
]
