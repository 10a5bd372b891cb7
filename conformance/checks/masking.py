"""MLM masking: `DataCollatorForLanguageModeling` (`pt` and `np`) against the exact masking rule on small batches,
and binomial tests of its selection and 80/10/10 rates."""

import numpy as np
from hypothesis import strategies as st

from reference import masking

from ..case import SubjectCase
from ..check import Check
from ..compare import Comparison, Tolerance, compare
from ..strategies import SEED_FIELDS, header_and_bytes, seed_of

SPECIAL_IDS = (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK], as the adapter's tokenizer writes its vocabulary
PAD_ID, MASK_ID = 0, 4
REPLACEMENTS = [(0.8, 0.1), (1.0, 0.0), (0.0, 1.0), (0.5, 0.4), (0.6, 0.0), (0.0, 0.0)]


def special_ids(adapter):
    """The ids the implementation's release never selects: before 4.6 only [CLS] and [SEP]."""
    return SPECIAL_IDS if adapter.has("masking-skips-all-special-tokens") else (2, 3)


def masking_spec(adapter, vocab_size, settings):
    """The masking rule of the implementation's release for collator `settings`."""
    return masking.MaskingSpec(vocab_size=vocab_size, mask_id=MASK_ID, special_ids=special_ids(adapter), pad_id=PAD_ID,
                               **{k: v for k, v in settings.items() if k != "mlm"})


def replacements_of(adapter):
    """The (mask_replace_prob, random_replace_prob) pairs to draw: only BERT's 0.8/0.1 where not configurable."""
    return REPLACEMENTS if adapter.collator_replacement_configurable else REPLACEMENTS[:1]


MASKING_ROWS, MASKING_LENGTH = 6, 12
MASKING_INVALID = ({"mlm_probability": 1.5}, {"mlm_probability": -0.1}, {"mask_replace_prob": 1.2},
                   {"random_replace_prob": -0.2}, {"mask_replace_prob": 0.7, "random_replace_prob": 0.5})


@st.composite
def masking_cases(draw, return_tensors, replacements=REPLACEMENTS, invalid=False):
    """A small batch of rows of any ids (special ones included) and lengths (the collator pads), and collator
    settings: mlm on or off, any masking probability 0..1 and replacement split the version allows. One choice: the
    header, then the ids."""
    bad = MASKING_INVALID if len(replacements) > 1 else MASKING_INVALID[:2]
    lengths = [(f"len{i}", MASKING_LENGTH) for i in range(MASKING_ROWS)]
    h, id_bytes = header_and_bytes(draw, [("vocab", 35), ("rows", MASKING_ROWS)] + lengths + [
        ("mlm", 2), ("probability", 4), ("replacement", len(replacements)), ("invalid", len(bad))] + SEED_FIELDS,
        MASKING_ROWS * MASKING_LENGTH)
    vocab_size = 6 + h["vocab"]
    ids = (id_bytes % vocab_size).reshape(MASKING_ROWS, MASKING_LENGTH)
    rows = [ids[i, :1 + h[f"len{i}"]].tolist() for i in range(1 + h["rows"])]
    settings = {"mlm": bool(h["mlm"]), "mlm_probability": (0.0, 0.15, 0.5, 1.0)[h["probability"]]}
    settings["mask_replace_prob"], settings["random_replace_prob"] = replacements[h["replacement"]]
    if invalid:
        settings["mlm"] = True
        settings.update(bad[h["invalid"]])
    seed = seed_of(h) % 2**31
    return SubjectCase(return_tensors, {"vocab_size": vocab_size, "rows": rows, "settings": settings, "seed": seed})


def collate(adapter, case):
    """The implementation's collator output (input_ids, labels) for `case`."""
    p = case.params
    return adapter.mlm_collate(p["vocab_size"], p["rows"], p["settings"], p["seed"], case.subject)


def masking_rule(adapter, case, target):
    """The deterministic part of the masking rule holds (see `reference.masking.violations`); without MLM the
    labels are the inputs with padding at -100."""
    p = case.params
    spec = masking_spec(adapter, p["vocab_size"], p["settings"])
    inputs, labels = collate(adapter, case)
    width = max(len(r) for r in p["rows"])
    original = np.array([r + [PAD_ID] * (width - len(r)) for r in p["rows"]])
    if not p["settings"]["mlm"]:
        return [compare("input_ids", inputs, original, Tolerance(0.0, 0.0)),
                compare("labels", labels, masking.causal_labels(original, PAD_ID), Tolerance(0.0, 0.0))]
    problems = masking.violations(original, inputs, labels, spec)
    return [Comparison("masking rule", not problems, 0.0, "\n".join(problems))]


RATE_ALPHA = 1e-6
RATE_DELTA = 0.02
ROW_LENGTH = 64


@st.composite
def masking_rate_cases(draw, return_tensors, replacements=REPLACEMENTS):
    """Collator settings and a seed; the rows are generated from the seed, as many as it takes for every rate test
    to detect a `RATE_DELTA` shift (see `reference.masking.detectable_sample_size`)."""
    settings = {"mlm": True, "mlm_probability": draw(st.sampled_from([0.15, 0.3, 0.5]))}
    settings["mask_replace_prob"], settings["random_replace_prob"] = draw(st.sampled_from(
        [r for r in replacements if r != (0.0, 0.0)]))
    return SubjectCase(return_tensors, {"vocab_size": draw(st.sampled_from([30, 1000])), "settings": settings,
                                         "seed": draw(st.integers(0, 2**31 - 1))})


def masking_rates(adapter, case, target):
    """The share of selectable positions selected, and of the selected positions turned into [MASK], left alone or
    replaced, are within binomial acceptance intervals at a total false-alarm rate of 1e-6 per case; the sample is
    large enough that a 2-point shift in any of these rates is missed with probability below 1e-6."""
    p = case.params
    spec = masking_spec(adapter, p["vocab_size"], p["settings"])
    tests = 4
    need_selected = max(masking.detectable_sample_size(q, RATE_DELTA, RATE_ALPHA / tests)
                        for q in masking.outcome_probabilities(spec).values())
    need_selectable = max(masking.detectable_sample_size(spec.mlm_probability, RATE_DELTA, RATE_ALPHA / tests),
                          int(1.1 * need_selected / spec.mlm_probability))
    rng = np.random.default_rng(p["seed"])
    special_share = 0.1
    n_rows = int(np.ceil(need_selectable / (ROW_LENGTH * (1 - special_share) * 0.95)))
    original = rng.integers(len(SPECIAL_IDS), p["vocab_size"], size=(n_rows, ROW_LENGTH))
    special = rng.random(original.shape) < special_share
    original[special] = rng.choice(SPECIAL_IDS, size=int(special.sum()))
    rows = SubjectCase(case.subject, dict(p, rows=original.tolist()))
    inputs, labels = collate(adapter, rows)
    c = masking.counts(original, inputs, labels, spec)
    results = [Comparison("masking rule", not (v := masking.violations(original, inputs, labels, spec)), 0.0,
                          "\n".join(v))]
    for name, k, (lo, hi), ok in masking.rate_tests(c, spec, RATE_ALPHA):
        half = max((hi - lo) / 2, 1)
        results.append(Comparison(f"rate {name}", ok, abs(k - (lo + hi) / 2) / half,
                                  "" if ok else f"rate {name}: count {k} outside the acceptance interval "
                                                f"[{lo}, {hi}] (counts {c})"))
    return results


def _masking_checks(tensors):
    """The exact rule and the rates of DataCollatorForLanguageModeling returning `tensors` ("pt" or "np")."""
    def applies(adapter):
        if tensors == "np" and not adapter.collator_has_numpy:
            return f"{adapter.name} {adapter.version}'s collator returns torch tensors only"
        return None

    subject = f"DataCollatorForLanguageModeling({tensors})"
    return (
        Check(f"masking.rule.{tensors}", "masking", subject, masking_rule.__doc__,
              lambda adapter: masking_cases(tensors, replacements_of(adapter)),
              kind="property", prop=masking_rule, once=True, case_type=SubjectCase, applies=applies),
        Check(f"masking.rates.{tensors}", "masking", subject, masking_rates.__doc__,
              lambda adapter: masking_rate_cases(tensors, replacements_of(adapter)),
              kind="property", prop=masking_rates, once=True, max_examples=4, shrink=False,
              case_type=SubjectCase, applies=applies),
    )


CHECKS = [check for tensors in ("pt", "np") for check in _masking_checks(tensors)]
