"""The loss rules beyond each head's main one: sequence classification's regression, multi-label, explicit and
int32-label rules, and the causal LM's `num_items_in_batch` normalisation. Each drawn example is a `CaseBatch` of
independent cases on one model (`conformance.batch`), each compared with the reference as a single case is."""

import numpy as np
from hypothesis import strategies as st

from ..batch import batched
from ..check import CAUSAL_LOSS_FLOAT32, Check, KnownDifference, activations
from ..port import config_fixed, narrowing
from ..strategies import case_batches

INT32_LABELS_REFUSED = KnownDifference(
    "int32-class-labels-refused",
    "transformers infers single_label_classification for int32 labels (num_labels > 1), and passes them unchanged to "
    "torch's cross_entropy, which takes only int64 (or uint8) targets: the forward raises this RuntimeError, in every "
    "release checked (4.4.2 to 5.24.0: no release casts the labels); the reference computes the cross-entropy of the "
    "same class indices. With num_labels == 1 (regression) transformers computes, and the numbers are compared. "
    "pytorch-pretrained-bert always computes cross-entropy (problem_type fixed at single-label), so refuses too; the "
    "torch.compile port runs transformers' head and loss eagerly, so refuses alike.",
    holds=lambda adapter: adapter.name in ("transformers", "pytorch-pretrained-bert", "torch.compile"),
    raises=r"^RuntimeError: (expected target dtype to be Long or Byte, but got Int|expected scalar type Long but found "
           r"Int)$",
    cases=lambda case: case.config.get("problem_type") == "single_label_classification" or (
        case.config["num_labels"] > 1 and case.config.get("problem_type") is None),
)


def model_batches(head, **kw):
    """adapter -> `CaseBatch`es of `head` (`conformance.strategies.case_batches`, which takes `cases`' keywords) over
    the activations both sides know, narrowed to what the adapter's port supports (`conformance.port.narrowing`)."""
    return lambda adapter: case_batches(head, activations(adapter), **kw, **narrowing(adapter, head))


def int32_label_cases(adapter):
    """Sequence classification with int32 class labels: num_labels 1 (regression, computed) or 2-5 (refused)."""
    return st.one_of(*(model_batches("BertForSequenceClassification", labels="class", num_labels=n,
                                     label_dtype=np.int32)(adapter) for n in (None, 1)))


def needs_problem_type(adapter):
    """None where the implementation's BertConfig has `problem_type`, else why a check needing it does not apply."""
    if adapter.has("sequence-classification-problem-type"):
        return None
    return f"{adapter.name} {adapter.version}'s BertConfig has no problem_type"


def takes_num_items(adapter):
    """None where the causal LM takes `num_items_in_batch`, else why the check does not apply."""
    if adapter.has("causal-lm-loss-function"):
        return None
    return f"{adapter.name} {adapter.version}'s BertLMHeadModel takes no num_items_in_batch"


def one_label_regression(adapter):
    """None where num_labels == 1 selects regression, else why the regression check does not apply: a port that
    fixes `problem_type` (`conformance.port.config_fixed`) computes that loss for every num_labels."""
    fixed = config_fixed(adapter).get("problem_type")
    if fixed is None:
        return None
    return f"{adapter.name} {adapter.version} always computes {fixed} (no regression for num_labels == 1)"


SINGLE_CASE_CHECKS = [  # as declared for one case; CHECKS runs them over batches of cases
    Check("loss.causal_lm.num_items_in_batch", "loss", "BertLMHeadModel",
          "causal LM loss summed and divided by num_items_in_batch (gradient accumulation normalisation)",
          model_batches("BertLMHeadModel", labels="tokens", is_decoder=True, with_num_items=True),
          known=(CAUSAL_LOSS_FLOAT32,), every_attention=False, applies=takes_num_items),
    Check("loss.sequence_classification.regression", "loss", "BertForSequenceClassification",
          "num_labels == 1: regression, MSE of the squeezed logits and labels ([B] or [B, 1] labels)",
          model_batches("BertForSequenceClassification", labels="regression", num_labels=1), every_attention=False,
          applies=one_label_regression),
    Check("loss.sequence_classification.regression_multi", "loss", "BertForSequenceClassification",
          "problem_type='regression' with num_labels > 1: MSE over [B, num_labels]",
          model_batches("BertForSequenceClassification", labels="regression", problem_type="regression"),
          every_attention=False, applies=needs_problem_type),
    Check("loss.sequence_classification.multi_label", "loss", "BertForSequenceClassification",
          "float labels with num_labels > 1: multi-label BCE with logits",
          model_batches("BertForSequenceClassification", labels="multi_label"), every_attention=False,
          applies=needs_problem_type),
    Check("loss.sequence_classification.explicit_single_label", "loss", "BertForSequenceClassification",
          "problem_type='single_label_classification' given explicitly",
          model_batches("BertForSequenceClassification", labels="class", problem_type="single_label_classification"),
          every_attention=False, applies=needs_problem_type),
    Check("loss.sequence_classification.int32_labels", "loss", "BertForSequenceClassification",
          "int32 class labels: single-label classification (num_labels > 1), regression (num_labels == 1)",
          int32_label_cases, known=(INT32_LABELS_REFUSED,), every_attention=False),
]
CHECKS = [batched(check) for check in SINGLE_CASE_CHECKS]
