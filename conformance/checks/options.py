"""Head options and forward contracts: the NSP alias, num_labels=1 with each explicit problem type, problem_type
persistence, no forward writes into its inputs.

- `options.nsp_alias`: BertForNextSentencePrediction called with `next_sentence_label=` instead of `labels=`:
  the same outputs as with `labels` where the alias exists, the outputs without labels where it is gone
  (drift `nsp-alias-removed`). (BertForPreTraining's `next_sentence_label` is its own argument, not an alias:
  `head.pretraining` checks it.)
- `options.num_labels_one.<problem_type>`: BertForSequenceClassification with num_labels=1 and an explicit
  problem_type; single-label is refused by ValueError where BertConfig refuses it (drift
  `config-refuses-single-label-one-label`), computed elsewhere.
- `options.problem_type_persists`: two calls with labels on one freshly built model; the second is computed with
  the type the first inferred (`reference.options.problem_type_after_calls`), or refused where its labels do not
  fit that type. (The adapter resets `config.problem_type` for every other check: models are cached.)
- `options.no_input_writes.<head>`: the caller's tensors, inputs and labels, are unchanged after a forward; before
  4.7 question answering clamps the caller's positions in place (drift `qa-positions-clamped-out-of-place`).

Each drawn example is a `CaseBatch` of independent cases on one model (`conformance.batch`), each checked as a single
case is: a forward and a reference take well under a millisecond here, so one drawn example carries several.
"""

from dataclasses import replace

import numpy as np

from reference import ReferenceInputError
from reference.losses import SINGLE_LABEL
from reference.options import (loss_with_problem_type, one_label_problem_type, positions_after_forward,
                               problem_type_after_calls)

from ..batch import CaseBatch, batched, each_case
from ..case import Case
from ..check import Check
from ..compare import Comparison, compare, tolerance
from ..port import HEADS
from ..judges import refusals
from ..runner import compare_with_reference, flatten, shared_reference_outputs
from .encoder import model_cases
from .losses import model_batches as batches_of
from .losses import needs_problem_type


def compare_outputs(actual, expected, target):
    """Every flattened output of `expected` against `actual` at the target's tolerance; an output `actual` has and
    `expected` lacks (e.g. a loss where none is due) fails."""
    tol = tolerance(target.dtype, target.device)
    results = [compare(k, actual[k], v, tol, exact_zeros=k.startswith("loss_grad")) if k in actual else
               Comparison(k, False, np.inf, f"{k}: the implementation returned no such output")
               for k, v in expected.items()]
    results += [Comparison(k, False, np.inf, f"{k}: returned, but the reference expects none")
                for k in actual if k not in expected]
    return results


def without_labels(case):
    return Case(case.head, case.config, case.weights_seed, case.inputs, {}, case.num_items_in_batch)


# --- the NSP alias -------------------------------------------------------------------------------------------------

def nsp_alias(adapter, case, target):
    """BertForNextSentencePrediction given its labels as `next_sentence_label`: equal to `labels` where the alias
    exists; ignored (no loss) where it is gone."""
    actual, weights = adapter.run_renamed(case.copy(), {"labels": "next_sentence_label"}, target.attn, target.device,
                                          target.dtype)
    reference_case = without_labels(case) if adapter.has("nsp-alias-removed") else case
    return compare_outputs(flatten(actual), flatten(shared_reference_outputs(reference_case, weights, adapter)), target)


# --- num_labels == 1 with an explicit problem type -------------------------------------------------------------

def single_label_one_label(adapter, case, target):
    """num_labels == 1 with problem_type single_label_classification: refused (ValueError, when the config is built)
    where BertConfig refuses it, else a cross-entropy over one class against the reference."""
    refuses = adapter.has("config-refuses-single-label-one-label")
    _, _, results = refusals(lambda: one_label_problem_type(SINGLE_LABEL, refuses),
                             lambda: adapter.run(case.copy(), target.attn, target.device, target.dtype), adapter)
    return results if results is not None else compare_with_reference(SINGLE_LABEL_ONE, case, adapter, target)


SINGLE_LABEL_ONE = Check(
    "options.num_labels_one.single_label_classification", "options", "BertForSequenceClassification",
    single_label_one_label.__doc__,
    model_cases("BertForSequenceClassification", labels="class", num_labels=1, problem_type=SINGLE_LABEL),
    kind="property", prop=single_label_one_label, every_attention=False, applies=needs_problem_type, max_examples=50)


# --- problem_type persistence ------------------------------------------------------------------------------------

def label_sets(case):
    """The labels of the two calls: the case's class labels and float multi-hot labels of the same classes (-100:
    none), the int ones first for an even weight seed; for a seed divisible by 4 both calls take the same kind."""
    classes = case.labels["labels"]
    multi_hot = (classes[:, None] == np.arange(case.config["num_labels"])[None, :]).astype(np.float64)
    first, second = ({"labels": classes}, {"labels": multi_hot})
    if case.weights_seed % 2:
        first, second = second, first
    if case.weights_seed % 4 == 0:
        second = {"labels": classes[::-1].copy()}
    return [first, second]


def problem_type_persists(adapter, case, target):
    """Two calls with labels on one fresh model: the second computes with the problem type the first inferred
    (transformers keeps it in config.problem_type), and refuses labels that do not fit that type."""
    sets = label_sets(case)
    kinds = problem_type_after_calls(case.config["num_labels"], [s["labels"] for s in sets])
    _, weights = adapter.build(case.copy(), target.attn, target.device, target.dtype)

    def reference_calls():
        first = shared_reference_outputs(Case(case.head, case.config, case.weights_seed, case.inputs, sets[0]),
                                         weights, adapter)
        try:
            loss, grad = loss_with_problem_type(first["logits"], sets[1]["labels"], kinds[1])
        except ReferenceInputError as exc:
            exc.computed = [first]
            raise
        return [first, dict(first, loss=loss, loss_grad={"logits": grad})]

    def compare_calls(actual, expected):
        return [Comparison(f"call {i + 1} {r.key}", r.ok, r.ratio, f"call {i + 1}: {r.message}" if r.message else "")
                for i, (a, e) in enumerate(zip(actual, expected))
                for r in compare_outputs(flatten(a), flatten(e), target)]

    expected, actual, results = refusals(
        reference_calls, lambda: adapter.run_in_sequence(case.copy(), sets, target.attn, target.device,
                                                         target.dtype)[0], adapter, compare_calls)
    return results if results is not None else compare_calls(actual, expected)


# --- no forward writes into its inputs ----------------------------------------------------------------------------

HEAD_CASES = {  # head -> the keyword arguments of its cases: labels of every kind the head takes
    "BertModel": dict(labels="none"),
    "BertForPreTraining": dict(labels="pretraining"),
    "BertForMaskedLM": dict(labels="tokens"),
    "BertLMHeadModel": dict(labels="tokens", is_decoder=True),
    "BertForNextSentencePrediction": dict(labels="class"),
    "BertForSequenceClassification": dict(labels="class"),
    "BertForMultipleChoice": dict(labels="class", num_labels=1),
    "BertForTokenClassification": dict(labels="tokens"),
    "BertForQuestionAnswering": dict(labels="qa", num_labels=2),
}
SHORT = {"BertModel": "base_model", "BertForPreTraining": "pretraining", "BertForMaskedLM": "masked_lm",
         "BertLMHeadModel": "causal_lm", "BertForNextSentencePrediction": "next_sentence",
         "BertForSequenceClassification": "sequence_classification", "BertForMultipleChoice": "multiple_choice",
         "BertForTokenClassification": "token_classification", "BertForQuestionAnswering": "question_answering"}


def inputs_unchanged(adapter, case, target):
    """Every tensor the caller passed (inputs and labels) holds after the forward what it held before; releases
    before 4.7 clamp question-answering positions in place (`reference.options.positions_after_forward`)."""
    after = adapter.inputs_after_forward(case.copy(), target.attn, target.device, target.dtype)
    clamps = case.head == "BertForQuestionAnswering" and not adapter.has("qa-positions-clamped-out-of-place")
    length = case.inputs["input_ids"].shape[-1]
    results = []
    for name, before in {**case.inputs, **case.labels}.items():
        want = positions_after_forward(before, length, clamps) if name.endswith("_positions") else before
        got = after.get(name)
        ok = got is not None and got.shape == want.shape and np.array_equal(got, want)
        results.append(Comparison(name, ok, 0.0 if ok else np.inf, "" if ok else
                                  f"{name}: the caller's tensor holds {got.tolist() if got is not None else None} "
                                  f"after the forward; expected {want.tolist()} (before: {before.tolist()})"))
    return results


def over_batches(check, strategy):
    """The property `check` (declared for one case) run on every sub-case of the `CaseBatch`es `strategy` draws."""
    return replace(check, strategy=strategy, prop=each_case(check.prop), case_type=CaseBatch)


SEQUENCE = "BertForSequenceClassification"
SUBCASES = 3  # sub-cases per drawn example


def model_batches(head, **kw):
    """adapter -> `CaseBatch`es of `SUBCASES` cases of `head` (`conformance.checks.losses.model_batches`)."""
    return batches_of(head, subcases=SUBCASES, **kw)
CHECKS = [
    over_batches(Check("options.nsp_alias", "options", "BertForNextSentencePrediction", nsp_alias.__doc__,
                       model_cases("BertForNextSentencePrediction", labels="class"), kind="property", prop=nsp_alias,
                       once=True, max_examples=50),
                 model_batches("BertForNextSentencePrediction", labels="class")),
    batched(Check("options.num_labels_one.regression", "options", SEQUENCE,
                  "num_labels == 1 with problem_type='regression' given explicitly: MSE of the squeezed logits and "
                  "labels", model_batches(SEQUENCE, labels="regression", num_labels=1, problem_type="regression"),
                  every_attention=False, applies=needs_problem_type, max_examples=50)),
    over_batches(SINGLE_LABEL_ONE, model_batches(SEQUENCE, labels="class", num_labels=1, problem_type=SINGLE_LABEL)),
    batched(Check("options.num_labels_one.multi_label_classification", "options", SEQUENCE,
                  "num_labels == 1 with problem_type='multi_label_classification': BCE with logits over [B, 1]",
                  model_batches(SEQUENCE, labels="multi_label", num_labels=1,
                                problem_type="multi_label_classification"), every_attention=False,
                  applies=needs_problem_type, max_examples=50)),
    over_batches(Check("options.problem_type_persists", "options", SEQUENCE, problem_type_persists.__doc__,
                       model_cases(SEQUENCE, labels="class"), kind="property", prop=problem_type_persists,
                       once=True, applies=needs_problem_type, max_examples=50),
                 model_batches(SEQUENCE, labels="class")),
    *[over_batches(Check(f"options.no_input_writes.{SHORT[head]}", "options", head, inputs_unchanged.__doc__,
                         model_cases(head, **HEAD_CASES[head]), kind="property", prop=inputs_unchanged, once=True,
                         max_examples=25), model_batches(head, **HEAD_CASES[head]))
      for head in HEADS],
]
