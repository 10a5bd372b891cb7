"""What transformers' Trainer builds for a default TrainingArguments: its optimizer, parameter groups and schedule."""

import numpy as np

from reference import BertSpec, optim, schedules, training
from reference import backward as ref_backward
from reference.training import TRAINER_DEFAULTS

from ..check import CAUSAL_LOSS_FLOAT32, Check
from ..compare import Comparison, compare, tolerance
from .train_cases import reference_batch, zero_dropout_cases

DEFAULT_OPTIMIZER_CHANGE = "trainer-default-adamw-torch"


def _exact(key, got, want):
    ok = got == want
    return Comparison(key, ok, 0.0 if ok else np.inf, "" if ok else f"{key}: {got!r}, expected {want!r}")


def trainer_defaults(adapter, case, target):
    """A Trainer with a default TrainingArguments builds AdamW (transformers.AdamW before 4.32, torch.optim.AdamW
    from it: drift `trainer-default-adamw-torch`) at lr 5e-5, betas (0.9, 0.999), eps 1e-8, weight decay 0, with
    the decay group (the no-decay rule's) first and the exempt parameters second, and a linear schedule without
    warmup over the training steps; one optimizer step with drawn gradients equals the reference AdamW variant's."""
    steps = 1 + case.weights_seed % 4
    got = adapter.trainer_defaults(case.copy(), steps, case.weights_seed + 1)
    d = TRAINER_DEFAULTS
    variant = "torch" if adapter.has(DEFAULT_OPTIMIZER_CHANGE) else "transformers"
    results = [_exact("optimizer", got["optimizer"], variant)]
    names = got["names"]
    decayed = optim.decay_parameter_names(names)
    expected_groups = [g for g in (decayed, [n for n in names if n not in decayed]) if g]
    got_groups = [g["names"] for g in got["groups"] if g["names"]]
    results.append(_exact("parameter groups", [sorted(g) for g in got_groups], [sorted(g) for g in expected_groups]))
    for i, g in enumerate(got["groups"]):
        results += [_exact(f"group {i}: {key}", g[key], d[key]) for key in ("betas", "eps", "weight_decay")]
    tol = tolerance("float64", "cpu")
    want_lrs = [d["lr"] * getattr(schedules, d["schedule"])(t, num_warmup_steps=d["num_warmup_steps"],
                                                             num_training_steps=steps) for t in range(steps + 1)]
    lrs = np.asarray(got["lrs"], dtype=np.float64)
    results.append(compare("learning rates", lrs, np.repeat(np.asarray(want_lrs)[:, None], lrs.shape[1], axis=1),
                           tol, scale=d["lr"]))
    if got["optimizer"] in optim.VARIANTS:
        for n in names:
            want = optim.adamw([got["initial"][n]], [[got["grads"][n]]], lr=d["lr"], betas=d["betas"], eps=d["eps"],
                               weight_decay=d["weight_decay"], variant=variant)[0]["params"][0]
            results.append(compare(f"params {n} after one step", got["params"][n], want, tol))
    return results


NUM_ITEMS_CHANGE = "trainer-num-items-in-batch"
DIVISION_CHANGE = "trainer-accumulation-divides-unless-loss-kwargs"
FORWARD_KWARGS_CHANGE = "bert-forward-takes-kwargs"
CAUSAL_LOSS_CHANGE = "causal-lm-loss-function"
ACCELERATOR_DIVIDES_CHANGE = "trainer-accelerator-divides-accumulated-loss"
ACCELERATOR_FIXED_CHANGE = "trainer-accelerator-num-steps-one"
ACCUMULATION_STEPS = 2


def backward_divisor(adapter, accumulation):
    """What the Trainer's Accelerator divides the loss by in its backward, beyond training_step's own scaling: the
    accumulation steps in 5.2.0-5.5.3 (built with num_steps = gradient_accumulation_steps), else 1."""
    divides = adapter.has(ACCELERATOR_DIVIDES_CHANGE) and not adapter.has(ACCELERATOR_FIXED_CHANGE)
    return accumulation if divides else 1


def accumulation_rule(adapter, head):
    """The rule (`reference.training.accumulation_weights`) by which `head`'s accumulated step weighs its
    micro-batches' mean losses under the release's Trainer: "mean" before num_items_in_batch (4.46); from it, a head
    whose forward takes **kwargs gets the count and the loss is not divided (the causal LM: "num_items", its loss
    divides its sum by the count; a classification head, whose loss is its own mean: "sum"); any other head's loss is
    divided only when no count was passed ("sum": the Trainer passes one) until 4.48.1, then unless the forward takes
    **kwargs ("mean")."""
    if not adapter.has(NUM_ITEMS_CHANGE):
        return "mean"
    causal = head == "BertLMHeadModel"
    if adapter.has(FORWARD_KWARGS_CHANGE) or (causal and adapter.has(CAUSAL_LOSS_CHANGE)):
        return "num_items" if causal else "sum"
    return "mean" if adapter.has(DIVISION_CHANGE) else "sum"


def _label_counts(head, micro):
    """Per micro-batch: the items its loss counts (labels not -100; the causal LM's after the shift), and the items the
    Trainer counts for num_items_in_batch (labels not -100, unshifted: its shifted count, from 5.19, is for models whose
    `loss_type` maps to ForCausalLMLoss, and BertLMHeadModel's is None, its loss ForCausalLMLoss by fallback; so the
    causal LM's sum is divided by a count that includes each row's first label, never a target)."""
    loss_counts = [int(np.sum(mb["labels"][..., 1:] != -100 if head == "BertLMHeadModel" else mb["labels"] != -100))
                   for mb in micro]
    return loss_counts, int(sum(np.sum(mb["labels"] != -100) for mb in micro))


def _adamw_scheduled(initial, grads, steps, variant):
    """The default AdamW (weight decay 0) after len(grads) steps from `initial` under the default linear schedule
    over `steps` steps: with no decay each step moves p by lr_t times a direction that depends on the gradients
    alone, the direction of step t being the difference of reference.optim.adamw's (at lr 1, from 0) steps t and t-1."""
    d = TRAINER_DEFAULTS
    runs = optim.adamw([np.zeros_like(initial)], [[g] for g in grads], lr=1.0, betas=d["betas"], eps=d["eps"],
                       weight_decay=0.0, variant=variant)
    p, before = np.array(initial, dtype=np.float64), np.zeros_like(initial)
    for t, run in enumerate(runs):
        rate = d["lr"] * schedules.linear(t, num_warmup_steps=0, num_training_steps=steps)
        p = p + rate * (run["params"][0] - before)
        before = run["params"][0]
    return {"params": p, "exp_avg_sq": runs[-1]["exp_avg_sq"][0]}


def trainer_accumulation(adapter, case, target):
    """Two optimizer steps of a default Trainer with gradient_accumulation_steps 2 (the batch's rows split in two
    micro-batches, each through `training_step` with the Trainer's num_items_in_batch where it passes one): the step's
    loss and gradient weigh the micro-batches' mean-loss gradients by the release's rule (`accumulation_rule`: the
    mean of the means, every item over the total count, or the means added), the count is the labels not -100 (the
    gradient divided again by the accumulation steps where the Accelerator's backward does, `backward_divisor`); the
    gradient clipped to norm 1, then the default AdamW and linear schedule: loss, gradient, learning rate and
    parameters of each step equal the reference's own trajectory from the same initial weights."""
    d = TRAINER_DEFAULTS
    rows = len(next(iter(case.inputs.values())))
    acc = min(ACCUMULATION_STEPS, rows)
    steps = 2
    got = adapter.trainer_accumulation(case.copy(), steps, acc)
    spec = BertSpec.from_mapping(case.config)
    variant = "torch" if adapter.has(DEFAULT_OPTIMIZER_CHANGE) else "transformers"
    rule = accumulation_rule(adapter, case.head)
    batch = reference_batch(adapter, case)
    micro = [{k: np.array_split(v, acc)[i] if isinstance(v, np.ndarray) else v for k, v in batch.items()}
             for i in range(acc)]
    loss_counts, trainer_count = _label_counts(case.head, micro)
    weights = training.accumulation_weights(loss_counts, rule, trainer_count)
    divisor = backward_divisor(adapter, acc)
    names = got["names"]
    tol = tolerance("float32" if CAUSAL_LOSS_FLOAT32.holds(adapter) and case.head == "BertLMHeadModel"
                    else "float64", "cpu")
    params, history, results = dict(got["initial"]), [], []
    for t, step in enumerate(got["steps"]):
        if step["num_items"] is not None:
            results.append(_exact(f"step {t}: num_items_in_batch", step["num_items"], float(trainer_count)))
        weighted = dict(params, **{a: params[n] for a, n in got["aliases"].items()})
        total, loss = {n: np.zeros_like(params[n]) for n in names}, 0.0
        for w, mb in zip(weights, micro):
            if w == 0:  # a micro-batch without counted items adds nothing under num_items_in_batch
                continue
            mean_loss, grads = ref_backward.gradients(case.head, weighted, spec, **mb)
            loss += w * mean_loss
            for n in names:
                total[n] = total[n] + w / divisor * np.asarray(grads[n], dtype=np.float64)
        if rule == "num_items" and trainer_count == 0:  # the sum of no items over a count of 0
            loss = np.nan
        results.append(compare(f"step {t}: loss ({rule})", np.asarray(step["loss"]), np.asarray(loss), tol))
        results += [compare(f"step {t}: gradient {n} ({rule})", step["grads"][n], total[n], tol, scale=1.0)
                    for n in names]
        clipped, _ = training.clip_grad_norm([total[n] for n in names], d["max_norm"])
        history.append(clipped)
        lr = d["lr"] * schedules.linear(t, num_warmup_steps=0, num_training_steps=steps)
        results.append(compare(f"step {t}: lr", np.asarray(step["lr"]), np.asarray(lr), tol, scale=d["lr"]))
        params = {}
        for i, n in enumerate(names):
            runs = _adamw_scheduled(got["initial"][n], [h[i] for h in history], steps, variant)
            params[n] = runs["params"]
            v_hat = np.sqrt(runs["exp_avg_sq"] / (1 - d["betas"][1] ** (t + 1)))
            floor = lr * np.minimum(3.2, 3 * tol.atol / (v_hat + d["eps"]))
            results.append(compare(f"step {t}: params {n}", step["params"][n], params[n], tol, floor=floor))
    return results


CHECKS = [
    Check(f"train.trainer.defaults.{name}", "train", head, trainer_defaults.__doc__,
          zero_dropout_cases(head, labels=labels), kind="property", prop=trainer_defaults, once=True, cpu_only=True,
          applies=lambda adapter: adapter.trainer_unavailable(), max_examples=4)
    for name, head, labels in (("sequence_classification", "BertForSequenceClassification", "class"),
                               ("pretraining", "BertForPreTraining", "pretraining"))
]
CHECKS += [
    Check(f"train.trainer.accumulation.{name}", "train", head, trainer_accumulation.__doc__,
          zero_dropout_cases(head, labels=labels, **kw), kind="property", prop=trainer_accumulation, once=True,
          known=(CAUSAL_LOSS_FLOAT32,) if head == "BertLMHeadModel" else (), cpu_only=True, applies=lambda adapter: adapter.trainer_unavailable(), max_examples=4)
    for name, head, labels, kw in (("sequence_classification", "BertForSequenceClassification", "class", {}),
                                   ("token_classification", "BertForTokenClassification", "tokens", {}),
                                   ("causal_lm", "BertLMHeadModel", "tokens", {"is_decoder": True}))
]
