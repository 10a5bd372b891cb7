"""The oracle's own tests for reference.masking: the exact part of the MLM masking rule (`violations`), the
outcome probabilities, the binomial acceptance intervals (coverage and tightness, checked with scipy's binomial
distribution), and the power of `rate_tests` to reject a masking whose rates are off by 0.03.

Expected values are worked by hand or follow from the module docstring; nothing comes from torch or transformers.
"""

import math

import numpy as np
import pytest
from scipy import stats

from reference import ReferenceInputError
from reference import masking as M

pytestmark = pytest.mark.reference

IGNORE = -100
# a toy tokenizer: 0 [PAD], 1 [CLS], 2 [SEP], 4 [MASK] are special; 3 and 5..9 are ordinary
SPEC = M.MaskingSpec(vocab_size=10, mask_id=4, special_ids=(0, 1, 2, 4), pad_id=0)
ORIGINAL = np.array([[1, 5, 6, 7, 2, 0],
                     [1, 8, 9, 3, 5, 2]])
NO_LABELS = np.full(ORIGINAL.shape, IGNORE)


def spec(**overrides):
    fields = dict(vocab_size=10, mask_id=4, special_ids=(0, 1, 2, 4), pad_id=0)
    fields.update(overrides)
    return M.MaskingSpec(**fields)


def masked(changes):
    """(inputs, labels) with the positions in `changes` selected: {(row, col): new input}."""
    inputs, labels = ORIGINAL.copy(), NO_LABELS.copy()
    for where, new in changes.items():
        inputs[where] = new
        labels[where] = ORIGINAL[where]
    return inputs, labels


def assert_only(problems, message):
    assert len(problems) == 1, problems
    assert problems[0].startswith(message), problems


# --- spec and simple rules ---------------------------------------------------------------------------------------


def test_spec_defaults_are_berts():
    assert (SPEC.mlm_probability, SPEC.mask_replace_prob, SPEC.random_replace_prob) == (0.15, 0.8, 0.1)
    assert SPEC.keep_prob == pytest.approx(0.1)  # 1 - 0.8 - 0.1
    assert spec(mask_replace_prob=0.5, random_replace_prob=0.25).keep_prob == 0.25


@pytest.mark.parametrize("overrides", [
    dict(mlm_probability=-0.01), dict(mlm_probability=1.01),
    dict(mask_replace_prob=-0.1), dict(mask_replace_prob=1.5),
    dict(random_replace_prob=-0.1), dict(random_replace_prob=1.1),
    dict(mask_replace_prob=0.8, random_replace_prob=0.3),  # sum 1.1 > 1
])
def test_spec_refuses_probabilities_outside_the_rule(overrides):
    with pytest.raises(ReferenceInputError):
        spec(**overrides)


@pytest.mark.parametrize("overrides", [
    dict(mlm_probability=0.0), dict(mlm_probability=1.0),
    dict(mask_replace_prob=1.0, random_replace_prob=0.0), dict(mask_replace_prob=0.0, random_replace_prob=1.0),
    dict(mask_replace_prob=0.0, random_replace_prob=0.0), dict(mask_replace_prob=0.5, random_replace_prob=0.5),
])
def test_spec_accepts_boundary_probabilities(overrides):
    spec(**overrides)


def test_selectable_excludes_special_ids():
    np.testing.assert_array_equal(M.selectable(ORIGINAL, SPEC), [[False, True, True, True, False, False],
                                                                 [False, True, True, True, True, False]])


def test_causal_labels_mask_only_padding():
    np.testing.assert_array_equal(M.causal_labels([[1, 5, 6, 2, 0, 0]], 0), [[1, 5, 6, 2, IGNORE, IGNORE]])
    # the padding id is whatever the tokenizer says; other special tokens keep their labels
    np.testing.assert_array_equal(M.causal_labels(np.array([[3, 0, 7, 3]]), 3), [[IGNORE, 0, 7, IGNORE]])
    np.testing.assert_array_equal(M.causal_labels([[5, 6]], 0), [[5, 6]])


# --- violations: the deterministic part of the rule --------------------------------------------------------------


def test_unmasked_batch_is_valid():
    assert M.violations(ORIGINAL, ORIGINAL, NO_LABELS, SPEC) == []


def test_a_typical_valid_masking():
    # [MASK], kept, random ordinary id, random hit on a special id ([CLS]), random hit on [MASK] itself
    inputs, labels = masked({(0, 1): 4, (0, 2): 6, (0, 3): 9, (1, 1): 1, (1, 4): 4})
    assert M.violations(ORIGINAL, inputs, labels, SPEC) == []


@pytest.mark.parametrize("message, build", [
    ("a label is neither -100 nor the original id",
     lambda: (ORIGINAL.copy(), np.where(np.arange(6) == 1, 6, IGNORE)[None].repeat(2, 0))),
    ("a special token was selected for masking",
     lambda: masked({(0, 0): 1})),  # [CLS] kept, but labelled
    ("an unselected position's input was changed",
     lambda: (np.where(ORIGINAL == 6, 7, ORIGINAL), NO_LABELS.copy())),
    ("an input id is outside the vocabulary",
     lambda: masked({(0, 1): 10})),  # vocab is 0..9
    ("an input id is outside the vocabulary",
     lambda: masked({(1, 2): -1})),
])
def test_each_rule_violation_is_reported_alone(message, build):
    inputs, labels = build()
    assert_only(M.violations(ORIGINAL, inputs, labels, SPEC), message)


def test_a_label_not_equal_to_the_original_is_reported_even_when_the_input_was_masked():
    inputs, labels = masked({(0, 1): 4})
    labels[0, 1] = 7  # the original is 5
    assert_only(M.violations(ORIGINAL, inputs, labels, SPEC), "a label is neither -100 nor the original id")


def test_violation_message_counts_positions_and_names_the_first():
    inputs = ORIGINAL.copy()
    inputs[1, 3] = 5
    inputs[0, 2] = 5
    (problem,) = M.violations(ORIGINAL, inputs, NO_LABELS, SPEC)
    assert "2 positions" in problem and "first at (0, 2)" in problem


def test_several_violations_are_all_reported():
    inputs, labels = masked({(0, 0): 1, (0, 1): 12})
    inputs[1, 2] = 3  # unselected change
    problems = M.violations(ORIGINAL, inputs, labels, SPEC)
    assert len(problems) == 3
    assert {p.split(":")[0] for p in problems} == {"a special token was selected for masking",
                                                   "an unselected position's input was changed",
                                                   "an input id is outside the vocabulary"}


def test_shapes_must_agree():
    (problem,) = M.violations(ORIGINAL, ORIGINAL[:, :5], NO_LABELS, SPEC)
    assert problem.startswith("shapes differ")


ALL_SELECTED_MASKED = {(0, 1): 4, (0, 2): 4, (0, 3): 4, (1, 1): 4, (1, 2): 4, (1, 3): 4, (1, 4): 4}


@pytest.mark.parametrize("overrides, changes, message", [
    # mlm_probability 1: every selectable position must be selected; (1, 4) is not
    (dict(mlm_probability=1.0), {k: v for k, v in ALL_SELECTED_MASKED.items() if k != (1, 4)},
     "mlm_probability 1 but a position was not selected"),
    # mlm_probability 0: nothing may be selected
    (dict(mlm_probability=0.0), {(0, 1): 4}, "mlm_probability 0 but a position was selected"),
    # mask_replace_prob 1: a selected input kept as the original is wrong
    (dict(mask_replace_prob=1.0, random_replace_prob=0.0), {(0, 1): 4, (0, 2): 6},
     "mask_replace_prob 1 but a selected input is not [MASK]"),
    # random_replace_prob 0: a selected input may be [MASK] or the original, not another id
    (dict(random_replace_prob=0.0), {(0, 1): 4, (0, 2): 6, (0, 3): 9},
     "random_replace_prob 0 but a selected input is neither [MASK] nor the original"),
    # both replacement probabilities 0: a selected input must stay the original
    (dict(mask_replace_prob=0.0, random_replace_prob=0.0), {(0, 1): 5, (0, 2): 4},
     "no replacement probability but a selected input changed"),
])
def test_degenerate_probability_rules_are_enforced(overrides, changes, message):
    inputs, labels = masked(changes)
    assert_only(M.violations(ORIGINAL, inputs, labels, spec(**overrides)), message)


@pytest.mark.parametrize("overrides, changes", [
    (dict(mlm_probability=1.0), ALL_SELECTED_MASKED),
    (dict(mlm_probability=1.0, mask_replace_prob=0.0, random_replace_prob=0.0),
     {k: int(ORIGINAL[k]) for k in ALL_SELECTED_MASKED}),
    (dict(mlm_probability=0.0), {}),
    (dict(mask_replace_prob=1.0, random_replace_prob=0.0), {(0, 1): 4, (1, 3): 4}),
    (dict(random_replace_prob=0.0), {(0, 1): 4, (0, 2): 6}),
    (dict(mask_replace_prob=0.0, random_replace_prob=0.0), {(0, 1): 5, (0, 2): 6}),
    (dict(mask_replace_prob=0.0, random_replace_prob=1.0), {(0, 1): 9, (0, 2): 4, (0, 3): 7}),
])
def test_degenerate_probability_rules_accept_valid_batches(overrides, changes):
    inputs, labels = masked(changes)
    assert M.violations(ORIGINAL, inputs, labels, spec(**overrides)) == []


# --- outcome probabilities and counts ----------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, expected", [
    # V = 10: mask 0.8 + 0.1/10, original 0.1 + 0.1/10, other 0.1 * 8/10
    ({}, dict(mask=0.81, original=0.11, other=0.08)),
    # no random replacement: no other id, no random hits
    (dict(random_replace_prob=0.0), dict(mask=0.8, original=0.2, other=0.0)),
    # all random: 1/10 each to [MASK] and the original, 8/10 elsewhere
    (dict(mask_replace_prob=0.0, random_replace_prob=1.0), dict(mask=0.1, original=0.1, other=0.8)),
    (dict(mask_replace_prob=1.0, random_replace_prob=0.0), dict(mask=1.0, original=0.0, other=0.0)),
    # V = 2: a random draw is always [MASK] or the original: 0.5 + 0.25, 0.25 + 0.25, 0
    (dict(vocab_size=2, mask_replace_prob=0.5, random_replace_prob=0.5), dict(mask=0.75, original=0.25, other=0.0)),
])
def test_outcome_probabilities(overrides, expected):
    probs = M.outcome_probabilities(spec(**overrides))
    assert set(probs) == {"mask", "original", "other"}
    for key, value in expected.items():
        assert probs[key] == pytest.approx(value, abs=1e-15)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("m, r, v", [(0.8, 0.1, 30522), (0.6, 0.3, 7), (0.0, 0.0, 5), (0.25, 0.75, 3)])
def test_outcome_probabilities_sum_to_one(m, r, v):
    assert sum(M.outcome_probabilities(spec(vocab_size=v, mask_replace_prob=m, random_replace_prob=r)).values()) \
        == pytest.approx(1.0, abs=1e-14)


def test_counts_by_hand():
    # selectable: row 0 has 5, 6, 7; row 1 has 8, 9, 3, 5 -> 7
    # selected 5: (0,1) -> [MASK], (0,2) kept, (0,3) -> 9 other, (1,1) -> [MASK], (1,3) -> 1 ([CLS]) other
    inputs, labels = masked({(0, 1): 4, (0, 2): 6, (0, 3): 9, (1, 1): 4, (1, 3): 1})
    assert M.counts(ORIGINAL, inputs, labels, SPEC) == dict(selectable=7, selected=5, outcome_trials=5, mask=2,
                                                            original=1, other=2)


def test_counts_leave_selected_mask_tokens_out_of_the_outcomes():
    # where [MASK] itself may be selected (the pre-4.6 rule protects only [CLS] and [SEP]), "became [MASK]" and
    # "kept" coincide for it, so it is no outcome trial: original [[4, 7]], both selected, inputs [[4, 4]]
    spec = M.MaskingSpec(vocab_size=10, mask_id=4, special_ids=(2, 3))
    c = M.counts(np.array([[4, 7]]), np.array([[4, 4]]), np.array([[4, 7]]), spec)
    assert c == dict(selectable=2, selected=2, outcome_trials=1, mask=1, original=0, other=0)


# --- acceptance intervals ----------------------------------------------------------------------------------------


def outside(n, p, lo, hi):
    """P(K < lo) + P(K > hi) for K ~ Binomial(n, p)."""
    return stats.binom.cdf(lo - 1, n, p) + stats.binom.sf(hi, n, p)


@pytest.mark.parametrize("n", [1, 7, 100, 2_000, 50_000])
@pytest.mark.parametrize("p", [0.001, 0.1, 0.15, 0.5, 0.8, 0.999])
@pytest.mark.parametrize("alpha", [0.05, 1e-3, 1e-6, 2.5e-7])
def test_acceptance_interval_coverage_and_tightness(n, p, alpha):
    lo, hi = M.acceptance_interval(n, p, alpha)
    assert lo <= hi
    # coverage: the count falls outside with probability at most alpha
    assert outside(n, p, lo, hi) <= alpha * (1 + 1e-9)
    # not absurdly wide: moving either end 2 inwards loses alpha / 2 of that tail (when that end is reachable)
    if lo + 2 <= n * p:
        assert stats.binom.cdf(lo + 1, n, p) >= alpha / 2 * (1 - 1e-9)
    if hi - 2 >= n * p:
        assert stats.binom.sf(hi - 2, n, p) >= alpha / 2 * (1 - 1e-9)
    # and no wider than the normal interval by more than a few counts
    z = stats.norm.isf(alpha / 2)
    assert hi - lo <= 2 * z * math.sqrt(n * p * (1 - p)) + 2 * z + 8


def test_acceptance_interval_degenerate_rates():
    assert M.acceptance_interval(100, 0.0, 1e-6) == (0, 0)
    assert M.acceptance_interval(100, 1.0, 1e-6) == (100, 100)
    lo, hi = M.acceptance_interval(0, 0.5, 1e-6)
    assert lo <= 0 <= hi


def test_rate_tests_structure_and_bonferroni():
    inputs, labels = masked({(0, 1): 4, (0, 2): 6, (0, 3): 9, (1, 1): 4, (1, 3): 1})
    c = M.counts(ORIGINAL, inputs, labels, SPEC)
    results = M.rate_tests(c, SPEC, alpha=0.01)
    assert [r[0] for r in results] == ["selected", "mask", "original", "other"]
    assert [r[1] for r in results] == [5, 2, 1, 2]
    # each interval at alpha / 4: selected of 7 selectable at 0.15, outcomes of 5 selected at 0.81 / 0.11 / 0.08
    for (name, k, interval, ok), (n, p) in zip(results, [(7, 0.15), (5, 0.81), (5, 0.11), (5, 0.08)]):
        assert interval == M.acceptance_interval(n, p, 0.01 / 4)
        assert ok == (interval[0] <= k <= interval[1])


def test_rate_tests_for_deterministic_rules_demand_exact_counts():
    s = spec(mlm_probability=1.0, mask_replace_prob=1.0, random_replace_prob=0.0)
    inputs, labels = masked(ALL_SELECTED_MASKED)
    results = M.rate_tests(M.counts(ORIGINAL, inputs, labels, s), s)
    assert [(r[0], r[2], r[3]) for r in results] == [("selected", (7, 7), True), ("mask", (7, 7), True),
                                                       ("original", (0, 0), True), ("other", (0, 0), True)]
    # one selectable position left out is rejected
    inputs, labels = masked({k: v for k, v in ALL_SELECTED_MASKED.items() if k != (0, 1)})
    results = M.rate_tests(M.counts(ORIGINAL, inputs, labels, s), s)
    assert [r[3] for r in results] == [False, True, True, True]


# --- detectable sample size --------------------------------------------------------------------------------------


def test_detectable_sample_size_by_hand():
    # alpha 0.05, beta 0.2: z_0.025 + z_0.2 = 1.959964 + 0.841621 = 2.801585
    # p = 0.5, delta 0.1: sigma = max(sqrt(.25), sqrt(.24), sqrt(.24)) = 0.5: (2.801585 * 0.5 / 0.1)^2 = 196.22 -> 197
    assert M.detectable_sample_size(0.5, 0.1, alpha=0.05, beta=0.2) == 197
    # p = 0.15, delta 0.05: sigma = max(sqrt(.1275), sqrt(.16), sqrt(.09)) = 0.4: (2.801585 * 8)^2 = 502.3 -> 503
    assert M.detectable_sample_size(0.15, 0.05, alpha=0.05, beta=0.2) == 503


def test_detectable_sample_size_is_monotone():
    deltas = [0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2]
    for p in (0.01, 0.15, 0.5, 0.8):
        ns = [M.detectable_sample_size(p, d) for d in deltas]
        assert all(a > b for a, b in zip(ns, ns[1:])), (p, ns)  # a smaller shift needs more trials
        ns = [M.detectable_sample_size(p, 0.03, alpha=a) for a in (1e-9, 1e-6, 1e-3, 0.05)]
        assert all(a > b for a, b in zip(ns, ns[1:])), (p, ns)  # a stricter false-alarm rate needs more trials
        ns = [M.detectable_sample_size(p, 0.03, beta=b) for b in (1e-9, 1e-6, 1e-3, 0.2)]
        assert all(a > b for a, b in zip(ns, ns[1:])), (p, ns)


# --- sample, and the power of rate_tests -------------------------------------------------------------------------

ALPHA = 1e-6
DELTA = 0.03
BIG_V, BIG_MASK = 30, 3
BIG = dict(vocab_size=BIG_V, mask_id=BIG_MASK, special_ids=(0, 1, 2, 3), pad_id=0)


def big_batch(selectable_needed, rng):
    """Rows of [CLS] ordinary tokens [SEP] then padding, with at least `selectable_needed` ordinary tokens."""
    rows = math.ceil(selectable_needed / 100) + 1
    ids = rng.integers(4, BIG_V, size=(rows, 128))
    ids[:, 0], ids[:, 101] = 1, 2
    ids[:, 102:] = 0  # 100 ordinary tokens a row
    return ids


def sample_size():
    """Selectable positions enough to detect a 0.03 shift of any of the four rates at per-test alpha / 4."""
    per_test = ALPHA / 4  # rate_tests splits alpha over its 4 tests
    n_selected = M.detectable_sample_size(0.15, DELTA, alpha=per_test)
    n_outcome = max(M.detectable_sample_size(p, DELTA, alpha=per_test)
                    for p in M.outcome_probabilities(M.MaskingSpec(**BIG)).values())
    return max(n_selected, math.ceil(1.2 * n_outcome / 0.15))  # 1.2: room for fewer selected than expected


@pytest.fixture(scope="module")
def batch():
    return big_batch(sample_size(), np.random.default_rng(1234))


def verdict(batch, drawn_with, tested_with, seed):
    inputs, labels = M.sample(batch, drawn_with, np.random.default_rng(seed))
    assert M.violations(batch, inputs, labels, drawn_with) == []
    c = M.counts(batch, inputs, labels, tested_with)
    return {name: ok for name, _, _, ok in M.rate_tests(c, tested_with, alpha=ALPHA)}


def test_sample_size_is_what_the_power_argument_needs(batch):
    # ~(9.6 * 0.38 / 0.03)^2 ~ 15k selectable for the selection rate; ~20k selected for the outcomes
    assert 100_000 < M.selectable(batch, M.MaskingSpec(**BIG)).sum() < 400_000


@pytest.mark.parametrize("seed", [0, 1])
def test_rate_tests_accept_samples_drawn_by_the_rule(batch, seed):
    s = M.MaskingSpec(**BIG)
    assert verdict(batch, s, s, seed) == dict(selected=True, mask=True, original=True, other=True)


@pytest.mark.parametrize("shift", [DELTA, -DELTA])
def test_rate_tests_reject_a_shifted_mlm_probability(batch, shift):
    right = M.MaskingSpec(**BIG)
    wrong = M.MaskingSpec(**BIG, mlm_probability=0.15 + shift)
    # only the selection rate is off; the outcomes of the selected follow the rule
    assert verdict(batch, wrong, right, seed=2) == dict(selected=False, mask=True, original=True, other=True)


@pytest.mark.parametrize("shift", [DELTA, -DELTA])
def test_rate_tests_reject_a_shifted_mask_replace_prob(batch, shift):
    right = M.MaskingSpec(**BIG)
    wrong = M.MaskingSpec(**BIG, mask_replace_prob=0.8 + shift)  # the keep probability moves by -shift
    result = verdict(batch, wrong, right, seed=3)
    assert result["selected"] and result["other"]
    assert not result["mask"] and not result["original"]


def test_sample_follows_the_deterministic_branches():
    rng = np.random.default_rng(7)
    ids = big_batch(500, rng)
    ok = M.selectable(ids, M.MaskingSpec(**BIG))
    # everything selected and masked
    s = M.MaskingSpec(**BIG, mlm_probability=1.0, mask_replace_prob=1.0, random_replace_prob=0.0)
    inputs, labels = M.sample(ids, s, rng)
    np.testing.assert_array_equal(labels, np.where(ok, ids, IGNORE))
    np.testing.assert_array_equal(inputs, np.where(ok, BIG_MASK, ids))
    # nothing selected
    s = M.MaskingSpec(**BIG, mlm_probability=0.0)
    inputs, labels = M.sample(ids, s, rng)
    assert (labels == IGNORE).all() and (inputs == ids).all()
    # selected but never replaced
    s = M.MaskingSpec(**BIG, mlm_probability=1.0, mask_replace_prob=0.0, random_replace_prob=0.0)
    inputs, labels = M.sample(ids, s, rng)
    assert (inputs == ids).all() and (labels == np.where(ok, ids, IGNORE)).all()


@pytest.mark.parametrize("overrides", [{}, dict(mlm_probability=1.0), dict(random_replace_prob=0.0),
                                       dict(mask_replace_prob=0.0, random_replace_prob=1.0),
                                       dict(mask_replace_prob=0.0, random_replace_prob=0.0)])
def test_samples_never_violate_the_rule(overrides):
    rng = np.random.default_rng(11)
    ids = big_batch(2_000, rng)
    s = M.MaskingSpec(**BIG, **overrides)
    inputs, labels = M.sample(ids, s, rng)
    assert M.violations(ids, inputs, labels, s) == []
    assert not np.shares_memory(inputs, ids)
    assert (ids[:, 0] == 1).all()  # the input batch is not modified
