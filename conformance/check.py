"""What a check is: `Check`, `KnownDifference`, and the known differences that several checks share.

A check compares the implementation with the reference (`kind="reference"`), checks a relation on the
implementation alone (`"metamorphic"`), requires both sides to refuse bad input (`"error"`), or runs its own
property (`"property"`). It is declared once, in the `CHECKS` list of its subject's module under
`conformance/checks/`; tests, bench, mutants and reports read the same table (`conformance.registry`).
"""

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

from reference.activations import ACTIVATIONS

from .case import Case


@dataclass(frozen=True)
class KnownDifference:
    """A legitimate, explained way in which the implementation differs from the reference.

    `holds(adapter)` says whether the installed version has it. Either the implementation `raises` (an exception
    whose "Type: message" matches this regex) instead of computing, or the outputs in `tolerance_dtype` carry the
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
    raises=r"RuntimeError: value cannot be converted to type float without overflow",
)
