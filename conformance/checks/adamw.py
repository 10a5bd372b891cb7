"""AdamW (torch's single-tensor, foreach and fused kernels, and `transformers.AdamW` where it exists) step by step
against the reference update, and the Trainer's weight-decay grouping against the no-decay rule."""

import numpy as np
from hypothesis import strategies as st

from reference import optim

from ..case import SubjectCase
from ..check import Check
from ..compare import EPS, Comparison, compare, rounding, tolerance
from ..judges import input_sensitivity, judge_conditioned, refusals
from ..strategies import SEED_FIELDS, header, seed_of

HEADS = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
         "BertForQuestionAnswering")
VARIANTS = ("torch.optim.AdamW", "torch.optim.AdamW(foreach)", "torch.optim.AdamW(fused)", "transformers.AdamW")


ADAMW_MAX_STEPS = 12  # steps per drawn sequence: several, so the calls outweigh drawing the case
ADAMW_INVALID = (("lr", -1e-3), ("eps", -1e-8), ("betas", [1.0, 0.999]), ("betas", [0.9, 1.5]), ("betas", [-0.1, 0.999]))
ADAMW_FIELDS = [("tensors", 3), ("rows0", 4), ("cols0", 3), ("rows1", 4), ("cols1", 3), ("rows2", 4), ("cols2", 3),
                ("steps", ADAMW_MAX_STEPS), ("scale", 3), ("lr", 4), ("beta1", 3), ("beta2", 3), ("eps", 3),
                ("weight_decay", 4), ("flag", 2), ("invalid", len(ADAMW_INVALID))] + SEED_FIELDS


@st.composite
def adamw_cases(draw, variant, invalid=False):
    """1-3 parameter tensors, 1-12 steps of gradients on scales 1e-3..1e3 (so eps matters in some and not in
    others), and hyper-parameters across their ranges: beta 0, weight decay 0, amsgrad / correct_bias both ways.
    One header; the tensors come from its seed."""
    h = header(draw, ADAMW_FIELDS)
    shapes = [(1 + h[f"rows{i}"], 1 + h[f"cols{i}"]) for i in range(1 + h["tensors"])]
    seed = seed_of(h)
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
    return SubjectCase(variant, {"params": params, "grads": grads, "hyper": hyper})


def reference_adamw(case):
    """The reference's AdamW steps of `case`."""
    hyper = dict(case.params["hyper"])
    hyper["betas"] = tuple(hyper["betas"])
    variant = "transformers" if case.subject == "transformers.AdamW" else "torch"
    return optim.adamw(case.params["params"], case.params["grads"], variant=variant, **hyper)


def run_adamw(adapter, case, target):
    """The implementation's AdamW steps of `case` on `target`."""
    p = case.params
    return adapter.adamw(case.subject, p["params"], p["grads"], p["hyper"], target.device, target.dtype)


def adamw_steps(adapter, case, target):
    """After every step: parameters, first and second moments, and the step's update of the parameters, equal the
    reference update of the variant, each at its own scale; where a side refuses (the refusal the reference expects,
    see `judges.refusals`), the steps before it still compare."""
    tol = tolerance(target.dtype, target.device)

    def steps(actual, expected):
        results = [compare(f"step {t + 1} {key}[{i}]", a, e, tol)
                   for t, (got, want) in enumerate(zip(actual, expected))
                   for key in ("params", "exp_avg", "exp_avg_sq")
                   for i, (a, e) in enumerate(zip(got[key], want[key]))]
        return results + update_comparisons(case.params["params"], actual, expected, target.dtype, tol)

    expected, actual, refusal = refusals(lambda: reference_adamw(case), lambda: run_adamw(adapter, case, target),
                                         adapter, steps)
    if refusal:
        return refusal
    results = steps(actual, expected)
    if all(r.ok for r in results) or target.dtype not in EPS or target.dtype == "float64":
        return results
    # a miss in a reduced precision: judged by how far rounding the parameters and gradients moves the reference
    moved = input_sensitivity(lambda p: keyed(reference_adamw(SubjectCase(case.subject, dict(case.params, **p))),
                                              p["params"]),
                              {"params": case.params["params"], "grads": case.params["grads"]}, target.dtype)
    return judge_conditioned(results, keyed(actual, case.params["params"]), keyed(expected, case.params["params"]),
                             tol, moved)


def keyed(history, initial):
    """AdamW's steps as the comparisons name them: `step t params[i]`, `exp_avg`, `exp_avg_sq` and `update[i]`."""
    out, before = {}, [np.asarray(p, dtype=np.float64) for p in initial]
    for t, state in enumerate(history):
        for key in ("params", "exp_avg", "exp_avg_sq"):
            out.update({f"step {t + 1} {key}[{i}]": np.asarray(a, dtype=np.float64) for i, a in enumerate(state[key])})
        out.update({f"step {t + 1} update[{i}]": np.asarray(a, dtype=np.float64) - before[i]
                    for i, a in enumerate(state["params"])})
        before = [np.asarray(a, dtype=np.float64) for a in state["params"]]
    return out


def update_comparisons(initial, actual, expected, dtype, tol):
    """Each step's update of each parameter, `after - before`, at the update's own scale: a step of lr 1e-4 is seen
    at ~1e-8 in float32, not under the parameter's 1e-4. Besides the tolerance at that scale it may differ by what
    storing the parameter adds (`update_rounding`)."""
    results = []
    before_actual = before_expected = [np.asarray(p, dtype=np.float64) for p in initial]
    for t, (got, want) in enumerate(zip(actual, expected)):
        for i, (a, e) in enumerate(zip(got["params"], want["params"])):
            results.append(compare(f"step {t + 1} update[{i}]", a - before_actual[i], e - before_expected[i], tol,
                                   floor=update_rounding(dtype, t + 1, before_expected[i], e)))
        before_actual, before_expected = got["params"], want["params"]
    return results


def update_rounding(dtype, step, before, after):
    """What storing the parameters adds to a step's update (elementwise), in roundings at the parameter's size: the
    implementation's weight decay (torch's `mul_` by 1 - lr * wd, itself rounded to `dtype`: two; transformers'
    `add_`: one) and its Adam term (`addcdiv_`: one), so at most three per step, and at step 1 one more, where
    `before` is the float64 value it converted; the float64 reference's two per step."""
    size = np.maximum(np.abs(before), np.abs(after))
    return rounding(dtype, 4 if step == 1 else 3, size) + rounding("float64", 2, size)


@st.composite
def decay_cases(draw):
    """Any head, with 1-3 layers, encoder or decoder: what the parameter names depend on (sizes do not change a
    name, so they are fixed: each of the 54 configurations is one model to build)."""
    h = header(draw, [("head", len(HEADS)), ("layers", 3), ("is_decoder", 2)])
    config = dict(vocab_size=8, hidden_size=2, num_hidden_layers=1 + h["layers"], num_attention_heads=1,
                  intermediate_size=4, max_position_embeddings=8, is_decoder=bool(h["is_decoder"]), num_labels=2)
    return SubjectCase(HEADS[h["head"]], {"config": config})


def decay_grouping(adapter, case, target):
    """The parameters the Trainer weight-decays are exactly those the no-decay rule does not exempt."""
    names, decayed = adapter.decay_parameter_names(case.subject, case.params["config"])
    expected = set(optim.decay_parameter_names(names))
    extra, missing = sorted(set(decayed) - expected), sorted(expected - set(decayed))
    ok = not extra and not missing
    return [Comparison("decay parameters", ok, 0.0, "" if ok else
                       f"decayed but exempt by the rule: {extra}; exempted but decayed by the rule: {missing}")]


def offered(variant):
    """adapter -> None where the implementation offers AdamW `variant`, else why a check of it does not apply."""
    def applies(adapter):
        return None if variant in adapter.adamw_variants() else f"{adapter.name} {adapter.version} has no {variant}"
    return applies


CHECKS = [
    *[Check(f"optim.{variant}", "optim", variant, adamw_steps.__doc__,
            (lambda variant: lambda adapter: adamw_cases(variant))(variant), kind="property", prop=adamw_steps,
            every_attention=False, case_type=SubjectCase, applies=offered(variant))
      for variant in VARIANTS],
    Check("optim.no_decay_grouping", "optim", "Trainer", decay_grouping.__doc__, lambda adapter: decay_cases(),
          kind="property", prop=decay_grouping, once=True, case_type=SubjectCase),
]
