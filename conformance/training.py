"""Checks of what lives outside the model: learning-rate schedules, AdamW, weight-decay grouping, MLM masking.

Each check draws a `TrainingCase` (the thing under test and its parameters, JSON throughout so that a failure
prints a runnable reproduction) and a property compares the adapter's result with the reference's.
"""

import json
from dataclasses import dataclass, field
from typing import Dict

import numpy as np
from hypothesis import strategies as st

import reference
from reference import masking, optim, schedules

from .compare import Comparison, Tolerance, compare, tolerance
from .strategies import SEED_FIELDS, _header, _header_and_bytes, _seed

SCHEDULES = tuple(schedules.MULTIPLIERS) + tuple(schedules.STATEFUL)
HEADS = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
         "BertForQuestionAnswering")


@dataclass
class TrainingCase:
    """`subject`: the schedule, AdamW variant, head or collator output type under test; `params`: JSON values."""

    subject: str
    params: Dict = field(default_factory=dict)

    def to_json(self):
        return json.dumps({"subject": self.subject, "params": self.params}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text):
        d = json.loads(text)
        return cls(d["subject"], d["params"])

    def __repr__(self):
        return f"TrainingCase.from_json({self.to_json()!r})"


def _refusals(reference_call, adapter_call):
    """Run both; returns (expected, actual, None) or (None, None, [Comparison]) when either side refused."""
    ref_error = tf_error = None
    try:
        expected = reference_call()
    except reference.ReferenceInputError as exc:
        ref_error, expected = f"ReferenceInputError: {exc}", None
    try:
        actual = adapter_call()
    except Exception as exc:  # any refusal by the implementation counts; its type goes into the message
        tf_error, actual = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}", None
    if ref_error is None and tf_error is None:
        return expected, actual, None
    ok = ref_error is not None and tf_error is not None
    message = f"transformers: {tf_error or 'returned a result'}; reference: {ref_error or 'returned a result'}"
    return None, None, [Comparison("refusal", ok, 0.0, "" if ok else message)]


# --- schedules -------------------------------------------------------------------------------------------------

LRS = (1e-5, 3e-4, 1e-3, 0.01, 0.1, 0.5, 1.0)
METRICS = 40  # the longest metric sequence of a stateful schedule

# Few choices per case, as in conformance.strategies (Hypothesis spends ~0.3 ms on every choice here, ~1 ms on every
# example, against ~1 ms for a schedule's bare calls): a case is a header of one-byte fields, `low + byte % count`,
# each of which shrinks toward its first (simplest) value on its own, and, for sequences, one byte string.


def schedule_rules(adapter, name):
    """The reference variant of schedule `name` that the implementation's release follows (see conformance.drift)."""
    if name == "inverse_sqrt":
        return {"default_timescale_10000": adapter.has("inverse-sqrt-default-timescale")}
    if name == "warmup_stable_decay":
        return {"warmup_from_min_lr": adapter.has("wsd-warmup-from-min-lr")}
    return {}


def _pick(byte, options):
    return options[int(byte) % len(options)]


def _unit(hi, lo):
    """A float in [0, 1] from two bytes (65536 levels), for parameters drawn from a continuous range."""
    return (256 * int(hi) + int(lo)) / 65535


def _lr_header(draw, extra=(), tail=0):
    """The base lrs of 1-3 parameter groups and `lr_init` (the first group's, or another), plus `extra` fields and
    `tail` more bytes, in one choice (`_header_and_bytes`): (header, bytes, base_lrs, lr_init)."""
    h, tail_bytes = _header_and_bytes(draw, [("groups", 3), ("lr0", 7), ("lr1", 7), ("lr2", 7), ("lr_init", 8)] +
                                      list(extra), tail)
    base_lrs = [LRS[h[f"lr{i}"]] for i in range(1 + h["groups"])]
    lr_init = base_lrs[0] if h["lr_init"] == 0 else LRS[h["lr_init"] - 1]
    return h, tail_bytes, base_lrs, lr_init


SCHEDULE_FIELDS = [("warmup", 13), ("total", 25), ("total_is_warmup", 2), ("extra_steps", 13), ("resume", 256),
                   ("a", 256), ("b", 256), ("c", 256), ("d", 256), ("e", 256), ("f", 256), ("g", 256)]


@st.composite
def schedule_cases(draw, name, wsd_v2=True):
    """Parameters for schedule `name`: warmup 0, inside, equal to and beyond the total; 1-3 parameter groups with
    different base lrs; sometimes parameters the schedule refuses; sometimes a save/reload in the middle. One header
    of one-byte fields; `a`..`g` are the schedule's own."""
    h, _, base_lrs, lr_init = _lr_header(draw, SCHEDULE_FIELDS)
    warmup = h["warmup"]
    total = warmup if h["total_is_warmup"] else h["total"]
    a, b, c, d, e, f, g = (h[k] for k in "abcdefg")
    p = {"num_warmup_steps": warmup, "num_training_steps": total}
    if name == "constant":
        p = {}
    elif name in ("constant_with_warmup", "inverse_sqrt"):
        del p["num_training_steps"]
        if name == "inverse_sqrt":
            p["timescale"] = None if a % 31 == 0 else a % 31
    elif name == "cosine":  # the default, an integer 0-3, or any float32 in [0, 3]
        p["num_cycles"] = _pick(a, (0.5, b % 4, float(np.float32(3 * _unit(b, c)))))
    elif name == "cosine_with_restarts":
        p["num_cycles"] = 1 + a % 4
    elif name == "polynomial":
        p["lr_end"] = _pick(a, (1e-7, 0.0, lr_init * 0.25, lr_init, lr_init * 2))
        p["power"] = 1.0 if b % 2 == 0 else float(np.float32(0.25 + 2.75 * _unit(c, d)))
    elif name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        p["num_cycles"] = 0.5 if a % 2 == 0 else float(np.float32(2 * _unit(b, c)))
        which = _pick(d, ("min_lr", "min_lr_rate", "min_lr_rate", "both", "neither"))
        if which in ("min_lr", "both"):
            p["min_lr"] = _pick(e, (0.0, lr_init * 0.1, lr_init * 0.5))
        if which in ("min_lr_rate", "both"):
            p["min_lr_rate"] = _pick(f, (0.0, 0.05, 0.1, 0.5, 1.0))
        if name == "cosine_warmup_with_min_lr":
            p["warmup_lr_rate"] = _pick(g, (None, 0.0, 0.01, 0.5))
    elif name == "warmup_stable_decay":
        p = {"num_warmup_steps": warmup, "num_decay_steps": a % 13}
        if wsd_v2 and b % 2:
            p["num_training_steps"] = total
        if (b // 2) % 2 or "num_training_steps" not in p:
            p["num_stable_steps"] = c % 13
        if wsd_v2:  # before 4.49: linear warmup and cosine decay only; "exponential" (refused) now and then
            shapes = schedules.WSD_SHAPES + ("exponential",) * (d % 10 == 9)
            p.update(warmup_type=_pick(e, shapes), decay_type=_pick(f, shapes))
        p.update(min_lr_ratio=_pick(g, (0.0, 0.1, 0.5)),
                 num_cycles=0.5 if (b // 4) % 2 == 0 else float(np.float32(2 * _unit(d, g))))
    steps = max(warmup, total, p.get("num_stable_steps", 0)) + h["extra_steps"]
    resume_at = None if h["resume"] % (steps + 2) == 0 else h["resume"] % (steps + 2) - 1
    return TrainingCase(name, {"schedule": p, "base_lrs": base_lrs, "lr_init": lr_init, "steps": steps,
                               "resume_at": resume_at})


STATEFUL_FIELDS = [("mode", 2), ("factor", 3), ("patience", 5), ("threshold", 3), ("threshold_mode", 2),
                   ("cooldown", 4), ("min_lr", 3), ("eps", 2), ("warmup", 4), ("max_lr", 2), ("smooth", 2),
                   ("window_size", 5), ("reset_start", 4), ("refused", 10), ("refused_factor", 2), ("length", METRICS),
                   ("resume", 256)]


@st.composite
def stateful_schedule_cases(draw, name):
    """A metric sequence (multiples of 1/8, so plateaus, ties and improvements all occur) and the scheduler's
    parameters, small enough that reductions, cooldowns, increases and resets happen within the sequence. One choice:
    the header, then the metric bytes."""
    h, metric_bytes, base_lrs, _ = _lr_header(draw, STATEFUL_FIELDS, tail=METRICS)
    p = {"mode": ("min", "max")[h["mode"]],
         "factor": (0.1, 0.5, 0.9)[h["factor"]],
         "patience": h["patience"],
         "threshold": (0.0, 1e-4, 0.125)[h["threshold"]],
         "threshold_mode": ("rel", "abs")[h["threshold_mode"]],
         "cooldown": h["cooldown"],
         "min_lr": (0.0, 1e-4, 0.01)[h["min_lr"]],
         "eps": (1e-8, 0.0)[h["eps"]]}
    if name == "greedy":
        p.update(warmup=h["warmup"], max_lr=(1.0, 0.2)[h["max_lr"]], smooth=bool(h["smooth"]),
                 window_size=1 + h["window_size"], reset_start=1 + h["reset_start"])
    if h["refused"] == 9:
        p["factor"] = (1.0, 1.5)[h["refused_factor"]]  # refused by both
    # exact sums: a running mean is order-independent
    metrics = [(int(v) % 33 - 16) / 8 for v in metric_bytes[:1 + h["length"]]]
    resume = h["resume"] % (len(metrics) + 1)
    return TrainingCase(name, {"schedule": p, "base_lrs": base_lrs, "lr_init": base_lrs[0], "metrics": metrics,
                               "resume_at": None if resume == 0 else resume - 1})


def schedule_strategy(name):
    if name in schedules.STATEFUL:
        return lambda adapter: stateful_schedule_cases(name)
    return lambda adapter: schedule_cases(name, wsd_v2=adapter.has("wsd-warmup-from-min-lr"))


def get_scheduler_rules(adapter):
    """The rules of `get_scheduler`'s argument passing that the implementation's release follows (see
    `reference.schedules.get_scheduler_arguments` and conformance.drift)."""
    return {"specific_kwargs": adapter.has("get-scheduler-specific-kwargs"),
            "inverse_sqrt_kwargs": adapter.has("get-scheduler-inverse-sqrt-kwargs"),
            "wsd_branch": adapter.has("get-scheduler-wsd-branch"),
            "wsd_training_steps": adapter.has("get-scheduler-wsd-training-steps")}


def schedule_curve(adapter, case, target):
    """The learning rate of every group, step by step (past the end of training too, across a save and reload of
    the scheduler state), equals the reference's closed form or simulation; parameters one side refuses, the
    other must refuse too. Twice: the schedule's own function given the parameters, and the schedule as the
    Trainer builds it, `get_scheduler` given them as step counts and `scheduler_specific_kwargs` (compared with
    the reference given what the release's get_scheduler passes on)."""
    p, name = case.params, case.subject

    def ref(params):
        if name in schedules.STATEFUL:
            return schedules.STATEFUL[name](p["metrics"], p["base_lrs"], **params)
        return schedules.curve(name, params, p["base_lrs"], p["lr_init"], p["steps"],
                               rules=schedule_rules(adapter, name))

    def forwarded():
        return ref(schedules.get_scheduler_arguments(name, p["schedule"], **get_scheduler_rules(adapter)))

    results = []
    for via, reference_call in (("function", lambda: ref(p["schedule"])), ("get_scheduler", forwarded)):
        expected, actual, refusal = _refusals(reference_call, lambda: adapter.lr_curve(
            name, p["schedule"], p["base_lrs"], p["lr_init"], steps=p.get("steps"), metrics=p.get("metrics"),
            resume_at=p.get("resume_at"), via=via))
        prefix = "" if via == "function" else "get_scheduler: "
        results += [Comparison(prefix + r.key, r.ok, r.ratio, r.message and prefix + r.message)
                    for r in refusal or [compare("lr[step, group]", actual, expected, tolerance("float64"))]]
    return results


def schedule_catalog(adapter, case, target):
    """Every schedule the installed version offers (`SchedulerType`) has a reference; a new one fails until it
    gets one."""
    missing = sorted(set(adapter.schedule_names()) - set(SCHEDULES))
    return [Comparison("schedules without a reference", not missing, 0.0, f"no reference for {missing}")]


# --- AdamW -----------------------------------------------------------------------------------------------------


ADAMW_INVALID = (("lr", -1e-3), ("eps", -1e-8), ("betas", [1.0, 0.999]), ("betas", [0.9, 1.5]), ("betas", [-0.1, 0.999]))
ADAMW_FIELDS = [("tensors", 3), ("rows0", 4), ("cols0", 3), ("rows1", 4), ("cols1", 3), ("rows2", 4), ("cols2", 3),
                ("steps", 6), ("scale", 3), ("lr", 4), ("beta1", 3), ("beta2", 3), ("eps", 3), ("weight_decay", 4),
                ("flag", 2), ("invalid", len(ADAMW_INVALID))] + SEED_FIELDS


@st.composite
def adamw_cases(draw, variant, invalid=False):
    """1-3 parameter tensors, 1-6 steps of gradients on scales 1e-3..1e3 (so eps matters in some and not in
    others), and hyper-parameters across their ranges: beta 0, weight decay 0, amsgrad / correct_bias both ways.
    One header; the tensors come from its seed."""
    h = _header(draw, ADAMW_FIELDS)
    shapes = [(1 + h[f"rows{i}"], 1 + h[f"cols{i}"]) for i in range(1 + h["tensors"])]
    seed = _seed(h)
    steps, scale = 1 + h["steps"], (1e-3, 1.0, 1e3)[h["scale"]]
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).tolist() for s in shapes]
    grads = [[(scale * rng.standard_normal(s)).tolist() for s in shapes] for _ in range(steps)]
    hyper = {"lr": (1e-4, 1e-3, 0.01, 0.1)[h["lr"]],
             "betas": [(0.0, 0.5, 0.9)[h["beta1"]], (0.0, 0.9, 0.999)[h["beta2"]]],
             "eps": (1e-8, 1e-6, 1e-3)[h["eps"]],
             "weight_decay": (0.0, 0.01, 0.1, 0.5)[h["weight_decay"]]}
    hyper["correct_bias" if variant == "transformers.AdamW" else "amsgrad"] = bool(h["flag"])
    if invalid:
        key, bad = ADAMW_INVALID[h["invalid"]]
        hyper[key] = bad
    return TrainingCase(variant, {"params": params, "grads": grads, "hyper": hyper})


def _reference_adamw(case):
    hyper = dict(case.params["hyper"])
    hyper["betas"] = tuple(hyper["betas"])
    variant = "transformers" if case.subject == "transformers.AdamW" else "torch"
    return optim.adamw(case.params["params"], case.params["grads"], variant=variant, **hyper)


def adamw_steps(adapter, case, target):
    """After every step: parameters, first and second moments equal the reference update of the variant."""
    expected, actual, refusal = _refusals(lambda: _reference_adamw(case), lambda: adapter.adamw(
        case.subject, case.params["params"], case.params["grads"], case.params["hyper"], target.device, target.dtype))
    if refusal:
        return refusal
    tol = tolerance(target.dtype, target.device)
    return [compare(f"step {t + 1} {key}[{i}]", a, e, tol)
            for t, (got, want) in enumerate(zip(actual, expected))
            for key in ("params", "exp_avg", "exp_avg_sq")
            for i, (a, e) in enumerate(zip(got[key], want[key]))]


def adamw_refuses(adapter, case, target):
    """Hyper-parameters outside AdamW's domain (negative lr or eps, a beta outside [0, 1)) are refused by both."""
    _, _, refusal = _refusals(lambda: _reference_adamw(case), lambda: adapter.adamw(
        case.subject, case.params["params"], case.params["grads"], case.params["hyper"], target.device, target.dtype))
    return refusal or [Comparison("refusal", False, 0.0, "neither side refused")]


# --- weight-decay grouping -------------------------------------------------------------------------------------


@st.composite
def decay_cases(draw):
    """Any head, with 1-3 layers, encoder or decoder: what the parameter names depend on (sizes do not change a
    name, so they are fixed: each of the 54 configurations is one model to build, ~8 ms, against ~3 ms for the
    Trainer's call)."""
    h = _header(draw, [("head", len(HEADS)), ("layers", 3), ("is_decoder", 2)])
    config = dict(vocab_size=8, hidden_size=2, num_hidden_layers=1 + h["layers"], num_attention_heads=1,
                  intermediate_size=4, max_position_embeddings=8, is_decoder=bool(h["is_decoder"]), num_labels=2)
    return TrainingCase(HEADS[h["head"]], {"config": config})


def decay_grouping(adapter, case, target):
    """The parameters the Trainer weight-decays are exactly those the no-decay rule does not exempt."""
    names, decayed = adapter.decay_parameter_names(case.subject, case.params["config"])
    expected = set(optim.decay_parameter_names(names))
    extra, missing = sorted(set(decayed) - expected), sorted(expected - set(decayed))
    ok = not extra and not missing
    return [Comparison("decay parameters", ok, 0.0, "" if ok else
                       f"decayed but exempt by the rule: {extra}; exempted but decayed by the rule: {missing}")]


# --- MLM masking -----------------------------------------------------------------------------------------------

SPECIAL_IDS = (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK], as the adapter's tokenizer writes its vocabulary
PAD_ID, MASK_ID = 0, 4
REPLACEMENTS = [(0.8, 0.1), (1.0, 0.0), (0.0, 1.0), (0.5, 0.4), (0.6, 0.0), (0.0, 0.0)]


def _spec(adapter, vocab_size, settings):
    """The masking rule of the implementation's release: before 4.6 only [CLS] and [SEP] are protected."""
    special = SPECIAL_IDS if adapter.has("masking-skips-all-special-tokens") else (2, 3)
    return masking.MaskingSpec(vocab_size=vocab_size, mask_id=MASK_ID, special_ids=special, pad_id=PAD_ID,
                               **{k: v for k, v in settings.items() if k != "mlm"})


def _replacements(adapter):
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
    h, id_bytes = _header_and_bytes(draw, [("vocab", 35), ("rows", MASKING_ROWS)] + lengths + [
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
    seed = _seed(h) % 2**31
    return TrainingCase(return_tensors, {"vocab_size": vocab_size, "rows": rows, "settings": settings, "seed": seed})


def _collate(adapter, case):
    p = case.params
    return adapter.mlm_collate(p["vocab_size"], p["rows"], p["settings"], p["seed"], case.subject)


def masking_rule(adapter, case, target):
    """The deterministic part of the masking rule holds (see `reference.masking.violations`); without MLM the
    labels are the inputs with padding at -100."""
    p = case.params
    spec = _spec(adapter, p["vocab_size"], p["settings"])
    inputs, labels = _collate(adapter, case)
    width = max(len(r) for r in p["rows"])
    original = np.array([r + [PAD_ID] * (width - len(r)) for r in p["rows"]])
    if not p["settings"]["mlm"]:
        return [compare("input_ids", inputs, original, Tolerance(0.0, 0.0)),
                compare("labels", labels, masking.causal_labels(original, PAD_ID), Tolerance(0.0, 0.0))]
    problems = masking.violations(original, inputs, labels, spec)
    return [Comparison("masking rule", not problems, 0.0, "\n".join(problems))]


def masking_refuses(adapter, case, target):
    """Probabilities outside [0, 1], or replacement probabilities summing above 1, are refused by both. Before the
    collator validated its settings (4.49), torch.bernoulli refused a bad mlm_probability only where it drew, so a
    batch with no selectable position went through."""
    p = case.params

    def reference_call():
        try:
            return _spec(adapter, p["vocab_size"], p["settings"])
        except reference.ReferenceInputError:
            special = SPECIAL_IDS if adapter.has("masking-skips-all-special-tokens") else (2, 3)
            drawn = any(i not in special for row in p["rows"] for i in row)
            if adapter.has("collator-replacement-probabilities") or drawn:
                raise
            return None

    _, _, refusal = _refusals(reference_call, lambda: _collate(adapter, case))
    return refusal or [Comparison("refusal", True, 0.0, "")]  # both accepted: the release's rule draws nothing


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
    return TrainingCase(return_tensors, {"vocab_size": draw(st.sampled_from([30, 1000])), "settings": settings,
                                         "seed": draw(st.integers(0, 2**31 - 1))})


def masking_rates(adapter, case, target):
    """The share of selectable positions selected, and of the selected positions turned into [MASK], left alone or
    replaced, are within binomial acceptance intervals at a total false-alarm rate of 1e-6 per case; the sample is
    large enough that a 2-point shift in any of these rates is missed with probability below 1e-6."""
    p = case.params
    spec = _spec(adapter, p["vocab_size"], p["settings"])
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
    rows = TrainingCase(case.subject, dict(p, rows=original.tolist()))
    inputs, labels = _collate(adapter, rows)
    c = masking.counts(original, inputs, labels, spec)
    results = [Comparison("masking rule", not (v := masking.violations(original, inputs, labels, spec)), 0.0,
                          "\n".join(v))]
    for name, k, (lo, hi), ok in masking.rate_tests(c, spec, RATE_ALPHA):
        half = max((hi - lo) / 2, 1)
        results.append(Comparison(f"rate {name}", ok, abs(k - (lo + hi) / 2) / half,
                                  "" if ok else f"rate {name}: count {k} outside the acceptance interval "
                                                f"[{lo}, {hi}] (counts {c})"))
    return results
