"""Masked-language-model masking (BERT, section 3.1, "Task #1: Masked LM"), as a rule and as statistics.

The rule. Of the positions whose token is not special, each is selected with probability `mlm_probability`
(15%), independently. A selected position gets label = its original id; every other position gets label -100.
A selected position's input becomes `[MASK]` with probability `mask_replace_prob` (80%), else a token drawn
uniformly from the whole vocabulary (special tokens included, so possibly the original or `[MASK]`) with
probability `random_replace_prob` (10%), else stays the original. Unselected positions are never changed.
Without MLM (`mlm=False`, causal LM) labels are the inputs with -100 at padding and inputs are unchanged.

The exact part of the rule is checked by `violations`; the random part by `rate_tests`, binomial tests whose
acceptance intervals hold each count with probability at least 1 - alpha under the rule.
"""

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .errors import ReferenceInputError, Refusal
from .losses import IGNORE_INDEX


@dataclass(frozen=True)
class MaskingSpec:
    """What the masking rule needs to know about the tokenizer and the collator's settings."""

    vocab_size: int  # the size random replacements are drawn from (the tokenizer's length)
    mask_id: int
    special_ids: Tuple[int, ...]  # ids that are never selected
    pad_id: int = 0
    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1

    def __post_init__(self):
        if not 0.0 <= self.mlm_probability <= 1.0:  # the collator's own messages, as it validates when built
            raise ReferenceInputError(f"mlm_probability {self.mlm_probability} outside [0, 1]", Refusal(
                "masking-probability", ("ValueError",), r"mlm_probability should be between 0 and 1"))
        if self.mask_replace_prob + self.random_replace_prob > 1.0:  # checked first, as the collator does
            raise ReferenceInputError("mask_replace_prob + random_replace_prob must not exceed 1", Refusal(
                "masking-replacement-probability", ("ValueError",),
                r"sum of mask_replace_prob and random_replace_prob should not exceed 1"))
        for name in ("mask_replace_prob", "random_replace_prob"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ReferenceInputError(f"replacement probability {p} outside [0, 1]", Refusal(
                    "masking-replacement-probability", ("ValueError",), rf"{name} should be between 0 and 1"))

    @property
    def keep_prob(self):
        """Probability that a selected position keeps its original token by the rule's third branch."""
        return 1.0 - self.mask_replace_prob - self.random_replace_prob


def selectable(input_ids, spec):
    """Boolean array: True where the token is not special and so may be selected."""
    return ~np.isin(np.asarray(input_ids), np.asarray(spec.special_ids))


def violations(original, inputs, labels, spec):
    """Every way in which one masked batch breaks the deterministic part of the rule (an empty list if none):

    labels are -100 or the original id; special tokens are never selected; unselected inputs are unchanged;
    inputs are valid ids. Where a probability is 0 or 1 its branch is deterministic too: mlm_probability 1 selects
    every selectable position and 0 none; mask_replace_prob 1 turns every selected input into [MASK];
    random_replace_prob 0 leaves a selected input [MASK] or original; both 0 leave it original."""
    original, inputs, labels = (np.asarray(a) for a in (original, inputs, labels))
    if not (original.shape == inputs.shape == labels.shape):
        return [f"shapes differ: original {original.shape}, inputs {inputs.shape}, labels {labels.shape}"]
    selected = labels != IGNORE_INDEX
    can = selectable(original, spec)
    never = np.zeros_like(selected)
    checks = [
        (selected & (labels != original), "a label is neither -100 nor the original id"),
        (selected & ~can, "a special token was selected for masking"),
        (~selected & (inputs != original), "an unselected position's input was changed"),
        ((inputs < 0) | (inputs >= spec.vocab_size), "an input id is outside the vocabulary"),
        (can & ~selected if spec.mlm_probability == 1 else never, "mlm_probability 1 but a position was not selected"),
        (selected if spec.mlm_probability == 0 else never, "mlm_probability 0 but a position was selected"),
        (selected & (inputs != spec.mask_id) if spec.mask_replace_prob == 1 else never,
         "mask_replace_prob 1 but a selected input is not [MASK]"),
        (selected & (inputs != spec.mask_id) & (inputs != original) if spec.random_replace_prob == 0 else never,
         "random_replace_prob 0 but a selected input is neither [MASK] nor the original"),
        (selected & (inputs != original) if spec.mask_replace_prob + spec.random_replace_prob == 0 else never,
         "no replacement probability but a selected input changed"),
    ]
    problems = []
    for bad, what in checks:
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            problems.append(f"{what}: {int(bad.sum())} positions, first at {where} "
                            f"(original {original[where]}, input {inputs[where]}, label {labels[where]})")
    return problems


def causal_labels(input_ids, pad_id):
    """Labels without MLM: the input ids, with -100 where the id is the padding id."""
    input_ids = np.asarray(input_ids)
    return np.where(input_ids == pad_id, IGNORE_INDEX, input_ids)


def outcome_probabilities(spec):
    """Probabilities of what a selected position's input becomes: `mask` ([MASK]), `original` (unchanged) and
    `other` (any other id). A random replacement hits [MASK] or the original each with probability 1 / V."""
    v = spec.vocab_size
    r = spec.random_replace_prob
    return {"mask": spec.mask_replace_prob + r / v, "original": spec.keep_prob + r / v, "other": r * (v - 2) / v}


def counts(original, inputs, labels, spec):
    """How many positions were selectable and selected, and of the selected ones whose original token is not
    [MASK] (`outcome_trials`; where a [MASK] may be selected, "became [MASK]" and "kept" coincide) how many became
    each outcome."""
    original, inputs, labels = (np.asarray(a) for a in (original, inputs, labels))
    selected = labels != IGNORE_INDEX
    trials = selected & (original != spec.mask_id)
    became_mask = trials & (inputs == spec.mask_id)
    kept = trials & (inputs == original)
    return {"selectable": int(selectable(original, spec).sum()), "selected": int(selected.sum()),
            "outcome_trials": int(trials.sum()), "mask": int(became_mask.sum()), "original": int(kept.sum()),
            "other": int((trials & ~became_mask & ~kept).sum())}


def acceptance_interval(n, p, alpha):
    """[lo, hi] such that a Binomial(n, p) count falls outside with probability at most alpha (two-sided)."""
    if p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    from scipy import stats  # here, not at import: scipy.stats takes ~1 s to import, and only the rate tests need it

    return int(stats.binom.ppf(alpha / 2, n, p)) - 1, int(stats.binom.isf(alpha / 2, n, p)) + 1


def rate_tests(c, spec, alpha=1e-6):
    """Binomial tests of the counts `c` (from `counts`) against the rule: selected of selectable at
    mlm_probability, and each outcome of the outcome trials at `outcome_probabilities`. The false-alarm rate of all
    tests together is at most alpha (Bonferroni). Returns a list of (name, count, (lo, hi), ok)."""
    tests = [("selected", c["selected"], c["selectable"], spec.mlm_probability)]
    tests += [(k, c[k], c["outcome_trials"], p) for k, p in outcome_probabilities(spec).items()]
    results = []
    for name, k, n, p in tests:
        lo, hi = acceptance_interval(n, p, alpha / len(tests))
        results.append((name, k, (lo, hi), lo <= k <= hi))
    return results


def detectable_sample_size(p, delta, alpha=1e-6, beta=1e-6):
    """Trials n for which a binomial test at false-alarm rate alpha misses a shift of the rate from p to p +- delta
    with probability at most beta (normal approximation): n = ((z_a/2 + z_b) sigma / delta)^2, sigma the larger
    of the two standard deviations."""
    from scipy import stats

    z = stats.norm.isf(alpha / 2) + stats.norm.isf(beta)
    sigma = max(np.sqrt(q * (1 - q)) for q in (p, min(p + delta, 1.0), max(p - delta, 0.0)))
    return int(np.ceil((z * sigma / delta) ** 2))


def sample(input_ids, spec, rng):
    """Draw one masking of `input_ids` by the rule with numpy's `rng`: returns (inputs, labels)."""
    original = np.asarray(input_ids)
    selected = selectable(original, spec) & (rng.random(original.shape) < spec.mlm_probability)
    u = rng.random(original.shape)
    to_mask = selected & (u < spec.mask_replace_prob)
    to_random = selected & (u >= spec.mask_replace_prob) & (u < spec.mask_replace_prob + spec.random_replace_prob)
    inputs = original.copy()
    inputs[to_mask] = spec.mask_id
    inputs[to_random] = rng.integers(0, spec.vocab_size, size=int(to_random.sum()))
    return inputs, np.where(selected, original, IGNORE_INDEX)
