"""Train mode: dropout at 0 equals eval mode, gradient checkpointing, feed-forward chunking, dropout's rate and scaling, and optimizer steps end to end."""

import numpy as np

from reference import BertSpec, ReferenceInputError, training
from reference import backward as ref_backward
from reference import dropout as ref_dropout
from reference.masking import acceptance_interval

from ..case import Case
from ..check import CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK, Check
from ..compare import Comparison, compare, tolerance
from ..runner import compare_with_reference, flatten
from .trainer import CHECKS as TRAINER_CHECKS
from .train_cases import (STEPS, chunk_cases, dropout_cases, rate_cases, reference_batch, step_settings,
                          zero_dropout_cases)


class TrainMode:
    """`adapter` seen through train mode: its `run` is the adapter's `train_run` (the outputs of the last run are
    kept in `last`); everything else is the adapter's."""

    def __init__(self, adapter):
        self._adapter = adapter
        self.last = None

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        result = self._adapter.train_run(case, attn, device, dtype)
        self.last = result["outputs"]
        return result["outputs"], result["weights"]


def train_mode(adapter):
    """The one `TrainMode` view of `adapter` (reference outputs are shared per adapter object)."""
    return adapter.__dict__.setdefault("_train_mode_view", TrainMode(adapter))


def eval_equivalence(known):
    """With every dropout probability 0, train mode's outputs, loss and d(loss)/d(logits) equal the reference's
    (under the head's known differences) and eval mode's."""
    class Known:
        pass
    holder = Known()
    holder.known = known

    def prop(adapter, case, target):
        view = train_mode(adapter)
        results = compare_with_reference(holder, case, view, target)
        if view.last is None or any(r.key == "raises" for r in results):
            return results
        trained, view.last = flatten(view.last), None
        evaluated, _ = adapter.run(case.copy(), target.attn, target.device, target.dtype)
        tol = tolerance(target.dtype, target.device)
        for key, value in flatten(evaluated).items():
            results.append(compare(f"train vs eval: {key}", trained[key], value, tol))
        return results
    return prop


def checkpointing(adapter, case, target):
    """Gradient checkpointing on (train mode, dropout 0) gives the same outputs, loss and gradient of every
    parameter as off."""
    off = adapter.train_run(case.copy(), target.attn, target.device, target.dtype, parameter_grads=True)
    on = adapter.train_run(case.copy(), target.attn, target.device, target.dtype, parameter_grads=True,
                           checkpointing=True)
    tol = tolerance(target.dtype, target.device)
    a, b = flatten(off["outputs"]), flatten(on["outputs"])
    results = [compare(key, b[key], a[key], tol) for key in a]
    results += [compare(f"grad {name}", on["grads"][name], g, tol) for name, g in off["grads"].items()]
    return results


def chunking(adapter, case, target):
    """`chunk_size_feed_forward` > 0 (the feed-forward block applied chunk by chunk along the sequence) gives the
    same outputs, loss and d(loss)/d(logits) as 0."""
    whole = Case(case.head, dict(case.config, chunk_size_feed_forward=0), case.weights_seed, case.inputs,
                 case.labels)
    a, _ = adapter.run(whole.copy(), target.attn, target.device, target.dtype)
    b, _ = adapter.run(case.copy(), target.attn, target.device, target.dtype)
    tol = tolerance(target.dtype, target.device)
    a, b = flatten(a), flatten(b)
    return [compare(key, b[key], a[key], tol) for key in a]


def dropout_rates(adapter, config, head):
    """The dropout probabilities of `config` at each kind of site, by the implementation's release's rule."""
    hidden = config.get("hidden_dropout_prob", 0.1)
    return {"hidden": hidden, "attention": config.get("attention_probs_dropout_prob", 0.1),
            "classifier": ref_dropout.classifier_rate(hidden, config.get("classifier_dropout"),
                                                      adapter.has("classifier-dropout"))}


def recorded(adapter, case, target):
    """Run `case` in train mode recording its dropout calls (sdpa: attention-probability dropout set to 0, since
    sdpa drops inside its kernel, unobservably); returns (case run, result, expected sites [(site, p)], calls of
    p > 0 [(p, input, output)], rates)."""
    if target.attn != "eager":
        case = Case(case.head, dict(case.config, attention_probs_dropout_prob=0.0), case.weights_seed, case.inputs,
                    case.labels)
    result = adapter.train_run(case.copy(), target.attn, target.device, target.dtype, seed=case.weights_seed % 2**31,
                               record=True)
    rates = dropout_rates(adapter, case.config, case.head)
    sites = ref_dropout.sites(case.head, case.config["num_hidden_layers"], rates)
    calls = [call for call in result["dropout"] if call[0] > 0]
    return case, result, sites, calls, rates


def _sites_and_scaling(sites, calls, tol):
    """The calls match the sites (count, probability), and every kept element is its input / (1 - p)."""
    names = [f"{site} p={p}" for site, p in sites]
    made = [f"p={p} {tuple(x.shape)}" for p, x, _ in calls]
    same = len(sites) == len(calls) and all(np.isclose(p, q) for (_, p), (q, _, _) in zip(sites, calls))
    results = [Comparison("dropout sites", same, 0.0 if same else np.inf,
                          "" if same else f"dropout calls {made}, expected sites {names}")]
    for (site, p), (_, x, y) in zip(sites, calls):
        kept = y != 0
        results.append(compare(f"{site}: kept elements = input / (1 - p)", y[kept], x[kept] / (1 - p), tol))
    return results


def dropout_placement(adapter, case, target):
    """Train mode with drawn dropout probabilities: dropout is called once per site of BERT (embeddings; per layer
    the attention probabilities on eager, the attention output, the feed-forward output; the classifier) at the
    site's rate (the classifier's: `classifier_dropout`, or `hidden_dropout_prob` where None or before 4.10), kept
    elements are scaled by 1 / (1 - p), and the outputs equal the reference's forward pass with the same keep-masks
    applied at BERT's sites."""
    case, result, sites, calls, rates = recorded(adapter, case, target)
    tol = tolerance(target.dtype, target.device)
    results = _sites_and_scaling(sites, calls, tol)
    masks = [y != 0 for _, _, y in calls]
    try:
        expected = ref_dropout.forward(case.head, result["weights"], BertSpec.from_mapping(case.config), case.inputs,
                                       masks, rates)
    except ReferenceInputError as exc:
        return results + [Comparison("placement", False, np.inf, f"the keep-masks do not fit BERT's sites: {exc}")]
    actual = result["outputs"]
    return results + [compare(key, actual[key], value, tol) for key, value in expected.items()]


RATE_ALPHA = 1e-6


def dropout_rate_tests(adapter, case, target):
    """At every site the number of zeroed elements (of those whose input is not 0) is within the Binomial(n, p)
    acceptance interval at a false-alarm rate of 1e-6 per case (Bonferroni over the sites), and kept elements are
    input / (1 - p)."""
    case, result, sites, calls, _ = recorded(adapter, case, target)
    results = _sites_and_scaling(sites, calls, tolerance(target.dtype, target.device))
    for (site, p), (_, x, y) in zip(sites, calls):
        live = x != 0
        n, k = int(live.sum()), int((live & (y == 0)).sum())
        lo, hi = acceptance_interval(n, p, RATE_ALPHA / max(len(sites), 1))
        ok = lo <= k <= hi
        half = max((hi - lo) / 2, 1)
        results.append(Comparison(f"{site}: zeroed share", ok, abs(k - (lo + hi) / 2) / half,
                                  "" if ok else f"{site}: {k} of {n} zeroed, outside the Binomial({n}, {p}) "
                                                f"acceptance interval [{lo}, {hi}]"))
    return results


MLM_SPECIAL_TOKENS = 5  # [PAD] [UNK] [CLS] [SEP] [MASK]: the adapter's collator tokenizer has them at ids 0-4


def collated(adapter, case):
    """A pre-training case's batch as pre-training builds it: the MLM collator's input_ids and labels
    (mlm_probability 0.5, seeded by the case) from the case's token rows, taken as given, with the case's NSP labels.
    The case unchanged for other heads, an adapter without a collator, a vocabulary without words beside the special
    tokens, or a draw that selected no position."""
    vocab = case.config["vocab_size"]
    if case.head != "BertForPreTraining" or not hasattr(adapter, "mlm_collate") or vocab <= MLM_SPECIAL_TOKENS:
        return case
    ids, labels = adapter.mlm_collate(vocab, case.inputs["input_ids"].tolist(), {"mlm": True, "mlm_probability": 0.5},
                                      case.weights_seed % 2**31)
    if (labels == -100).all():
        return case
    return Case(case.head, case.config, case.weights_seed, dict(case.inputs, input_ids=ids.astype(np.int64)),
                dict(case.labels, labels=labels.astype(np.int64)))


def _steps_tolerance(adapter, case, target):
    """The target's tolerance; float32's for the causal LM where its loss is computed in float32 (known difference
    causal-lm-loss-float32: the loss, and so every gradient and step, rounded to float32)."""
    if case.head == "BertLMHeadModel" and CAUSAL_LOSS_FLOAT32.holds(adapter):
        return tolerance("float32", target.device)
    return tolerance(target.dtype, target.device)


def optimizer_steps(adapter, case, target):
    """STEPS training steps on the case's batch (pre-training: the MLM collator's output, see `collated`; train mode,
    dropout 0; backward, clip_grad_norm_, AdamW with the Trainer's weight-decay and no-decay groups, linear warmup
    schedule), each compared with the reference's step
    (`reference.training.step` on `reference.backward.gradients`) from the implementation's own parameters and
    moments before it: learning rate, loss, gradient norm, parameters and both AdamW moments after it.

    Tolerances: a gradient is computed from weights and activations of size ~1 (drawn so; LayerNorm keeps them so),
    so it errs by up to atol at scale 1 however small it is: the gradient norm and the first moment are compared at
    scale 1, the second moment (v <- b2 v + (1 - b2) g^2) at the largest gradient G (at least atol); AdamW divides
    the first moment by the root of the second, so a parameter's step errs by up to
    lr * min(3.2, 3 atol / (sqrt(v_hat) + eps)) (3.2: the most |m_hat| / sqrt(v_hat) can be within 3 steps), the
    floor of its comparison: large only where a gradient is 0 up to rounding (a LayerNorm of width 2, a single
    choice), which AdamW's division turns into a step of any direction."""
    case = collated(adapter, case)
    settings = step_settings(case)
    run = adapter.train_steps(case.copy(), settings, STEPS, target.device, target.dtype)
    spec = BertSpec.from_mapping(case.config)
    batch = reference_batch(adapter, case)
    names, tol = run["names"], _steps_tolerance(adapter, case, target)
    b1, b2 = settings["betas"]
    params = {n: run["initial"][n] for n in names}
    exp_avg = {n: np.zeros_like(params[n]) for n in names}
    exp_avg_sq = {n: np.zeros_like(params[n]) for n in names}
    results = []
    for t, got in enumerate(run["steps"]):
        want = training.step(params, run["aliases"], exp_avg, exp_avg_sq, t, batch,
                             lambda weights, b: ref_backward.gradients(case.head, weights, spec, **b),
                             decayed=set(run["decayed"]), lr=settings["lr"], betas=settings["betas"],
                             eps=settings["eps"], weight_decay=settings["weight_decay"], max_norm=settings["max_norm"],
                             num_warmup_steps=settings["num_warmup_steps"],
                             num_training_steps=settings["num_training_steps"])
        scale = max(float(np.max(np.abs(g), initial=0.0)) for g in want["grads"].values())
        results += [compare(f"step {t}: lr", np.asarray(got["lr"]), np.full(len(got["lr"]), want["lr"]), tol),
                    compare(f"step {t}: loss", got["loss"], want["loss"], tol),
                    compare(f"step {t}: gradient norm", got["norm"], want["norm"], tol, scale=1.0)]
        for n in names:
            if n not in got["exp_avg"]:
                results.append(Comparison(f"step {t}: {n}", False, np.inf, f"step {t}: {n} has no AdamW state"))
                continue
            v_hat = np.sqrt(want["exp_avg_sq"][n] / (1 - b2 ** (t + 1)))
            floor = want["lr"] * np.minimum(3.2, 3 * tol.atol / (v_hat + settings["eps"]))
            results += [compare(f"step {t}: exp_avg {n}", got["exp_avg"][n], want["exp_avg"][n], tol, scale=1.0),
                        compare(f"step {t}: exp_avg_sq {n}", got["exp_avg_sq"][n], want["exp_avg_sq"][n], tol,
                                scale=max(scale, tol.atol)),
                        compare(f"step {t}: params {n}", got["params"][n], want["params"][n], tol, floor=floor)]
        params, exp_avg, exp_avg_sq = got["params"], got["exp_avg"], got["exp_avg_sq"]
    return results


HEAD_CASES = (  # (name, head, label rule, strategy keywords)
    ("base", "BertModel", "none", {}),
    ("pretraining", "BertForPreTraining", "pretraining", {}),
    ("masked_lm", "BertForMaskedLM", "tokens", {}),
    ("causal_lm", "BertLMHeadModel", "tokens", {"is_decoder": True}),
    ("next_sentence", "BertForNextSentencePrediction", "class", {}),
    ("sequence_classification", "BertForSequenceClassification", "class", {}),
    ("multiple_choice", "BertForMultipleChoice", "class", {"num_labels": 1}),
    ("token_classification", "BertForTokenClassification", "tokens", {}),
    ("question_answering", "BertForQuestionAnswering", "qa", {"num_labels": 2}),
)
KNOWN = {"BertLMHeadModel": (CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK)}
EXAMPLES = 4  # per target: each example runs a model two or three times, and the suite's time is shared
DROPOUT_EXAMPLES = 10


def _checks():
    checks = []
    for name, head, labels, kw in HEAD_CASES:
        known = KNOWN.get(head, ())
        checks.append(Check(f"train.eval_equivalence.{name}", "train", head, eval_equivalence.__doc__,
                            zero_dropout_cases(head, labels=labels, **kw), kind="property",
                            prop=eval_equivalence(known), known=known, max_examples=EXAMPLES))
    for name, head, labels, kw in HEAD_CASES:
        if name in ("base", "masked_lm", "causal_lm", "next_sentence", "question_answering"):
            continue  # no dropout site of their own: the encoder's are seen through the others
        checks.append(Check(f"train.dropout.{name}", "train", head, dropout_placement.__doc__,
                            dropout_cases(head, labels="none", **kw), kind="property", prop=dropout_placement,
                            max_examples=DROPOUT_EXAMPLES))
    for name, head in (("base", "BertModel"), ("sequence_classification", "BertForSequenceClassification"),
                       ("token_classification", "BertForTokenClassification")):
        checks.append(Check(f"train.dropout_rates.{name}", "train", head, dropout_rate_tests.__doc__,
                            rate_cases(head), kind="property", prop=dropout_rate_tests, every_attention=False,
                            once=True, max_examples=2, shrink=False))
    for name, head, labels, kw in HEAD_CASES:
        if name in ("pretraining", "sequence_classification", "question_answering"):
            checks.append(Check(f"train.checkpointing.{name}", "train", head, checkpointing.__doc__,
                                zero_dropout_cases(head, labels=labels, **kw), kind="property", prop=checkpointing,
                                max_examples=EXAMPLES))
    for name, head, labels, kw in HEAD_CASES:
        if name != "base":  # BertModel has no loss
            checks.append(Check(f"train.steps.{name}", "train", head, optimizer_steps.__doc__,
                                zero_dropout_cases(head, labels=labels, **kw), kind="property", prop=optimizer_steps,
                                known=tuple(k for k in KNOWN.get(head, ()) if k is CAUSAL_LOSS_FLOAT32), once=True,
                                max_examples=EXAMPLES))
    checks.append(Check("train.chunking", "train", "BertForPreTraining", chunking.__doc__,
                        chunk_cases("BertForPreTraining", labels="pretraining"), kind="property", prop=chunking,
                        max_examples=EXAMPLES))
    return checks


CHECKS = _checks() + TRAINER_CHECKS
