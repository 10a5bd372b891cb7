"""Error conformance: bad input that the implementation and the reference must both refuse (corrupted labels,
AdamW hyper-parameters outside their domain, masking probabilities outside [0, 1]), the implementation with the
refusal the reference expects of its release; an exception of the harness or the adapter is an error."""

import numpy as np
from hypothesis import strategies as st

from reference import ReferenceInputError

from ..batch import CaseBatch, each_case
from ..case import SubjectCase
from ..check import Check, activations
from ..compare import Comparison
from ..port import IGNORE_INDEX, ignore_index, narrowing
from ..judges import refusals
from ..runner import reference_outputs
from ..strategies import case_batches
from .adamw import adamw_cases, offered as adamw_offered, run_adamw, reference_adamw
from .masking import collate, masking_cases, masking_spec, replacements_of, special_ids


def both_refuse(adapter, case, target):
    """The reference raises ReferenceInputError and the implementation raises the refusal it expects for the bad
    labels (the class, and the message where stable, of the release's rule: see `judges.refusals`): neither returns
    a number. Where the version's rule never reads the corrupted label (the early token-classification rule skips
    padded positions), the reference accepts it, and then the implementation must accept it too."""
    weights = adapter.build(case, target.attn, target.device, target.dtype)[1]
    _, _, refusal = refusals(lambda: reference_outputs(case, weights, adapter),
                             lambda: adapter.run(case.copy(), target.attn, target.device, target.dtype, grad=False),
                             adapter)
    return refusal or [Comparison("refusal", True, 0.0, "")]


def near_negatives(ignore=IGNORE_INDEX):
    """The small negative out-of-range labels: -1..-100 without the port's own ignored label `ignore` (-1..-99 for
    transformers' -100; -2..-100 for a port that ignores -1, where -100 is an ordinary out-of-range label)."""
    return [n for n in range(-1, -101, -1) if n != ignore]


@st.composite
def corrupted(draw, valid_cases, how, ignore=IGNORE_INDEX):
    """A valid case whose labels are then broken `how`: out_of_range | wrong_shape | float_dtype.

    Out of range: one label, at any position, becomes one of classes..classes+5, a small negative
    (`near_negatives`: -1..-100 without the port's ignored label `ignore`, which is never drawn) or -1000..-101
    (the label byte, the position and the value drawn as one choice of four bytes, each shrinking toward the
    first)."""
    case = draw(valid_cases)
    labels = case.labels["labels"]
    if how == "out_of_range":
        classes = case.config["vocab_size"] if case.head == "BertForMaskedLM" else case.config["num_labels"]
        kind, index, high, low = (int(b) for b in draw(st.binary(min_size=4, max_size=4)))
        value = high * 256 + low
        negatives = near_negatives(ignore)
        bad = (classes + value % 6, negatives[value % len(negatives)], -101 - value % 900)[kind % 3]
        labels = labels.copy()
        labels.flat[index % labels.size] = bad
    elif how == "wrong_shape":
        labels = np.concatenate([labels, labels[..., :1]], axis=-1)
    elif how == "float_dtype":
        labels = labels.astype(np.float64)
    case.labels = {"labels": labels}
    return case


def adamw_refuses(adapter, case, target):
    """Hyper-parameters outside AdamW's domain (negative lr or eps, a beta outside [0, 1)) are refused by both, the
    implementation with the ValueError naming the parameter (torch.optim.AdamW's message, or transformers.AdamW's
    own for the variant of the case)."""
    _, _, refusal = refusals(lambda: reference_adamw(case), lambda: run_adamw(adapter, case, target), adapter)
    return refusal or [Comparison("refusal", False, 0.0, "neither side refused")]


def masking_refuses(adapter, case, target):
    """Probabilities outside [0, 1], or replacement probabilities summing above 1, are refused by both, the
    collator with the ValueError naming the setting. Before the collator validated its settings (4.49),
    torch.bernoulli refused a bad mlm_probability (a RuntimeError) only where it drew, so a batch with no
    selectable position went through."""
    p = case.params

    def reference_call():
        try:
            return masking_spec(adapter, p["vocab_size"], p["settings"])
        except ReferenceInputError:
            drawn = any(i not in special_ids(adapter) for row in p["rows"] for i in row)
            if adapter.has("collator-replacement-probabilities") or drawn:
                raise
            return None

    _, _, refusal = refusals(reference_call, lambda: collate(adapter, case), adapter)
    return refusal or [Comparison("refusal", True, 0.0, "")]  # both accepted: the release's rule draws nothing


def _label_check(how, name, head, labels):
    """Each drawn example: a `CaseBatch` of independent cases on one model, each with its labels corrupted `how`."""
    def strategy(adapter):
        return case_batches(head, activations(adapter),
                            then=lambda case: corrupted(st.just(case), how, ignore_index(adapter, head)),
                            labels=labels, **narrowing(adapter, head))
    return Check(f"errors.{how}.{name}", "errors", head, f"labels {how.replace('_', ' ')}: both must refuse",
                 strategy, kind="error", prop=each_case(both_refuse), every_attention=False, cpu_only=True,
                 case_type=CaseBatch)


CHECKS = [
    *[_label_check(how, name, head, labels)
      for how in ("out_of_range", "wrong_shape", "float_dtype")
      for name, head, labels in (
          ("sequence_classification", "BertForSequenceClassification", "class"),
          ("token_classification", "BertForTokenClassification", "tokens"),
          ("masked_lm", "BertForMaskedLM", "tokens"),
      )
      if not (how == "float_dtype" and name == "sequence_classification")],  # float labels mean multi-label there
    Check("errors.adamw.hyperparameters", "errors", "torch.optim.AdamW", adamw_refuses.__doc__,
          lambda adapter: adamw_cases("torch.optim.AdamW", invalid=True), kind="error", prop=adamw_refuses,
          once=True, cpu_only=True, case_type=SubjectCase),
    Check("errors.adamw.transformers_hyperparameters", "errors", "transformers.AdamW", adamw_refuses.__doc__,
          lambda adapter: adamw_cases("transformers.AdamW", invalid=True), kind="error", prop=adamw_refuses,
          once=True, cpu_only=True, case_type=SubjectCase, applies=adamw_offered("transformers.AdamW")),
    Check("errors.masking.probabilities", "errors", "DataCollatorForLanguageModeling", masking_refuses.__doc__,
          lambda adapter: masking_cases("pt", replacements_of(adapter), invalid=True), kind="error",
          prop=masking_refuses, once=True, cpu_only=True, case_type=SubjectCase),
]
