"""What a check is: `Check`, `KnownDifference`, and the known differences that several checks share.

A check compares the implementation with the reference (`kind="reference"`), checks a relation on the
implementation alone (`"metamorphic"`), requires both sides to refuse bad input (`"error"`), or runs its own
property (`"property"`). It is declared once, in the `CHECKS` list of its subject's module under
`conformance/checks/`; tests, bench, mutants and reports read the same table (`conformance.registry`).
"""

import inspect
import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np

from reference.activations import ACTIVATIONS
from reference.options import mse_broadcast

from .case import Case
from .drift import CHANGES
from .port import refusals

HARNESS = os.path.dirname(os.path.abspath(__file__))  # conformance/: the harness and its adapters


@dataclass(frozen=True)
class KnownDifference:
    """A legitimate, explained way in which the implementation differs from the reference.

    `holds(adapter)` says whether the implementation and its release have it (through `adapter.has`, so another
    port answers for itself); `cases(case)` and `targets(target)` narrow it to the cases and targets it holds for
    (every one by default); `applies` combines the three. Either the implementation `raises` (an exception whose
    "Type: message" matches this regex) instead of computing, or the outputs in `tolerance_dtype` carry the
    rounding of another dtype.
    """

    id: str
    description: str
    holds: Callable
    raises: Optional[str] = None
    tolerance_dtype: dict = field(default_factory=dict)
    cases: Callable = lambda case: True
    targets: Callable = lambda target: True

    def applies(self, adapter, case, target):
        """Whether this difference is expected of `adapter` on `case` and `target`."""
        return bool(self.holds(adapter) and self.cases(case) and self.targets(target))

    def explains(self, exc):
        """Whether the exception `exc` is the refusal this difference predicts."""
        return self.raises is not None and re.search(self.raises, f"{type(exc).__name__}: {exc}") is not None


@dataclass(frozen=True)
class Check:
    id: str
    area: str  # encoder | head | loss | metamorphic | errors | schedule | optim | masking | checkpoint
    head: str  # the model class, or the schedule / optimizer / collator under test
    description: str
    strategy: Callable  # adapter -> SearchStrategy of cases
    kind: str = "reference"  # reference | metamorphic | error | property
    prop: Optional[Callable] = None  # (adapter, case, target) -> [Comparison], for every kind but "reference"
    known: Tuple[KnownDifference, ...] = ()
    every_attention: bool = True  # run under each attention implementation, or only the first (eager)
    cpu_only: bool = False
    once: bool = False  # independent of device, dtype and attention: run on the first target only
    reduced_precision: bool = False  # also run on the reduced-precision targets (compare.REDUCED)
    applies: Callable = lambda adapter: None  # adapter -> None, or why the check does not apply to this version
    max_examples: Optional[int] = None  # a cap for expensive (statistical) checks
    shrink: bool = True  # False for checks whose examples are too costly to shrink (large statistical samples)
    case_type: type = Case


def activations(adapter):
    """The activations both the implementation and the reference know."""
    return sorted(set(adapter.activations()) & set(ACTIVATIONS))


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
    raises=r"^RuntimeError: value cannot be converted to type float without overflow",
    cases=lambda case: bool(case.config.get("is_decoder")) and "attention_mask" in case.inputs,
    targets=lambda target: target.dtype == "float64" and target.attn == "sdpa",
)


def _harness_files(adapter):
    """The source files of `adapter`'s class and its bases (an adapter living outside conformance/ too)."""
    files = set()
    for cls in type(adapter).__mro__ if adapter is not None else ():
        try:
            files.add(os.path.abspath(inspect.getfile(cls)))
        except TypeError:  # builtins
            continue
    return files


def raised_by_harness(exc, adapter=None):
    """Whether `exc` was raised by the harness or an adapter rather than by the implementation: the last frame of
    its traceback is in conformance/ or in the module of `adapter`'s class (e.g. an AttributeError for a method
    the adapter lacks, a TypeError from the harness's own call). Such an exception is an error, never a refusal."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    return filename.startswith(HARNESS + os.sep) or filename in _harness_files(adapter)


def expected_refusal(reference_error, adapter=None):
    """The refusal the implementation's release should make where the reference raised `reference_error`: the
    `Refusal` the reference states (its newest rule), or the one a drift change records for releases before it
    (`Change.refused_before`, asked through `adapter.has`), or the port's own (`conformance.port.refusals`). None
    where the reference states none."""
    expected = getattr(reference_error, "expected", None)
    if expected is None or adapter is None:
        return expected
    if expected.kind in refusals(adapter):
        return refusals(adapter)[expected.kind]
    for change in CHANGES:
        before = change.refused_before.get(expected.kind)
        if before is not None and not adapter.has(change.id):
            return before
    return expected


# --- known bugs of real releases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownBug:
    """A bug of real releases, as data: an expected failure.

    It belongs to one `implementation` (an adapter's `name`) and holds from the release of the drift change
    `introduced` up to, not including, that of the change `fixed` (asked through `adapter.has`), for the `checks` named and the cases and
    targets `cases` and `targets` select. A case of those checks whose comparisons fail there is the bug showing
    (with `predict`, `(case, the implementation's outputs) -> {flattened output name: the value the bug yields}`,
    only if the implementation matches that prediction, computed from its own outputs such as its logits, which are
    compared with the reference as usual): the cell's outcome is `known_bug`, and the run does not fail.
    `counterexample` (a Case as JSON) is run on every target of those checks in every release of that
    implementation: where the bug holds it must show (else the entry is stale, a failure), and elsewhere it must pass
    like any case."""

    id: str
    description: str
    checks: Tuple[str, ...]
    introduced: str
    fixed: str
    counterexample: str
    predict: Optional[Callable] = None
    cases: Callable = lambda case: True
    targets: Callable = lambda target: True
    implementation: str = "transformers"

    def concerns(self, adapter):
        """Whether `adapter` is the implementation the bug belongs to (another one's cases may not even be drawn
        for it: a port without regression never gets the regression counterexample)."""
        return adapter.name == self.implementation

    def holds(self, adapter):
        """Whether `adapter`'s release has the bug (its implementation, at or after `introduced`, before
        `fixed`)."""
        return bool(self.concerns(adapter) and adapter.has(self.introduced) and not adapter.has(self.fixed))

    def applies(self, adapter, case, target):
        """Whether the bug is expected to show on `case` and `target` of `adapter`'s release."""
        return bool(self.holds(adapter) and self.cases(case) and self.targets(target))

    def case(self, case_type=Case):
        """The counterexample as a `case_type` (the check's own case type, a `Case` by default)."""
        return case_type.from_json(self.counterexample)


def _broadcast_regression(case, outputs):
    """4.6.0's regression with one label: the loss and its gradient of MSE over the [B, 1] x [B] broadcast of the
    implementation's own logits (`outputs`) and the labels (`reference.options.mse_broadcast`)."""
    loss, grad = mse_broadcast(outputs["logits"], case.labels["labels"])
    return {"loss": loss, "loss_grad.logits": grad}


_REGRESSION_CONFIG = dict(vocab_size=8, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
                          intermediate_size=4, hidden_act="gelu", layer_norm_eps=1e-12, max_position_embeddings=20,
                          type_vocab_size=2, is_decoder=False, num_labels=1)
KNOWN_BUGS = (
    KnownBug(
        "regression-broadcast-4.6.0",
        "transformers 4.6.0 computes the regression loss with num_labels == 1 as MSELoss(logits.view(-1, 1), labels): "
        "labels of shape [B] broadcast against the [B, 1] logits, so the loss is the mean of (logits_i - labels_j)^2 "
        "over a B x B matrix (torch warns about the broadcast); [B, 1] labels and B == 1 are unaffected. Fixed in "
        "4.6.1 (logits and labels squeezed).",
        ("loss.sequence_classification.regression", "loss.sequence_classification.int32_labels",
         "options.num_labels_one.regression"),
        "sequence-classification-problem-type", "regression-one-label-squeezed",
        Case("BertForSequenceClassification", _REGRESSION_CONFIG, 0,
             {"input_ids": np.array([[1, 2, 3], [4, 5, 6]])},
             {"labels": np.array([0.5, -1.0])}).to_json(),
        predict=_broadcast_regression,
        cases=lambda case: case.labels.get("labels") is not None and case.labels["labels"].ndim == 1
        and case.config.get("num_labels") == 1 and case.labels["labels"].shape[0] > 1
        and case.config.get("problem_type") in (None, "regression"),
    ),
)
KNOWN_BUGS += (
    KnownBug(
        "relative-positions-cache-on-first-pass",
        "transformers 4.54-4.57 create the decoder's KV cache before the first forward whenever use_cache is on (a "
        "decoder's default), and the relative-position branch takes a cache as incremental decoding: every query is "
        "placed at the last position (distance key_length - 1 - r), so in a full pass of a relative_key / "
        "relative_key_query decoder longer than one token every query but the last gets the last one's distances. "
        "Gone with relative positions in 5.0.",
        ("surface.relative_positions.causal",),
        "decoder-cache-created-on-first-pass", "relative-position-embeddings-removed",
        json.dumps({"config": dict(_REGRESSION_CONFIG, num_labels=2, is_decoder=True,
                                   position_embedding_type="relative_key"),
                    "head": "BertLMHeadModel", "inputs": {"input_ids": {"data": [[1, 2, 3]], "dtype": "int64"}},
                    "labels": {}, "num_items_in_batch": None, "options": {}, "weights_seed": 0},
                   sort_keys=True, separators=(",", ":")),
        cases=lambda case: bool(case.config.get("is_decoder"))
        and str(case.config.get("position_embedding_type", "absolute")).startswith("relative")
        and case.inputs["input_ids"].shape[-1] > 1,
    ),
)
KNOWN_BUGS_BY_ID = {bug.id: bug for bug in KNOWN_BUGS}


def known_bugs(check):
    """The known bugs declared for `check` (by its id)."""
    return tuple(bug for bug in KNOWN_BUGS if check.id in bug.checks)
