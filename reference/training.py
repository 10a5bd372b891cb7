"""A training loop in numpy float64, step by step: the loss's gradients, clipping by the global norm, AdamW with a
weight-decay group and a no-decay group, and a learning-rate schedule, as a BERT pre-training or fine-tuning loop
runs them (`loss.backward()`, `clip_grad_norm_`, `optimizer.step()`, `scheduler.step()`).
"""

import numpy as np

from . import schedules
from .errors import ReferenceInputError

CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_'s term added to the norm in the clipping factor


def clip_grad_norm(grads, max_norm):
    """Clip gradients by their global L2 norm: with N the L2 norm of all gradients' elements together, every gradient
    is multiplied by min(1, max_norm / (N + 1e-6)). Returns (clipped gradients, N)."""
    norm = float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))
    factor = min(1.0, max_norm / (norm + CLIP_EPS))
    return [np.asarray(g, dtype=np.float64) * factor for g in grads], norm


def adamw_step(param, grad, exp_avg, exp_avg_sq, step, *, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """One step t (1-based) of torch.optim.AdamW: p <- p (1 - lr wd); m <- b1 m + (1 - b1) g;
    v <- b2 v + (1 - b2) g^2; p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    Returns (p, m, v)."""
    b1, b2 = betas
    m = b1 * exp_avg + (1 - b1) * grad
    v = b2 * exp_avg_sq + (1 - b2) * grad * grad
    p = param * (1 - lr * weight_decay)
    denom = np.sqrt(v) / np.sqrt(1 - b2 ** step) + eps
    return p - (lr / (1 - b1 ** step)) * m / denom, m, v


def step(params, aliases, exp_avg, exp_avg_sq, t, batch, gradients, *, decayed, lr, betas=(0.9, 0.999), eps=1e-8,
         weight_decay=0.0, max_norm=None, schedule="linear", num_warmup_steps=0, num_training_steps=1):
    """Step t (0-based: t steps taken before it) of the loop `train` describes, from `params` and the moments
    `exp_avg`, `exp_avg_sq` ({name: array}, zeros before the first step). Returns a dict: `loss` (at `params`),
    `lr`, `norm` (None when not clipped), `grads` (the clipped gradients) and `params`, `exp_avg`, `exp_avg_sq` after
    the step, each {name: array}."""
    multiplier = getattr(schedules, schedule, None)
    if multiplier is None:
        raise ReferenceInputError(f"unknown schedule {schedule!r}")
    names = list(params)
    weights = dict(params, **{alias: params[name] for alias, name in aliases.items()})
    loss, grads = gradients(weights, batch)
    raw = [np.asarray(grads[n], dtype=np.float64) for n in names]
    clipped, norm = clip_grad_norm(raw, max_norm) if max_norm is not None else (raw, None)
    rate = lr * multiplier(t, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, lr_init=lr)
    out = {"loss": loss, "lr": rate, "norm": norm, "grads": dict(zip(names, clipped)), "params": {}, "exp_avg": {},
           "exp_avg_sq": {}}
    for n, g in zip(names, clipped):
        out["params"][n], out["exp_avg"][n], out["exp_avg_sq"][n] = adamw_step(
            np.asarray(params[n], dtype=np.float64), g, exp_avg[n], exp_avg_sq[n], t + 1, lr=rate, betas=betas,
            eps=eps, weight_decay=weight_decay if n in decayed else 0.0)
    return out


def train(params, aliases, batches, gradients, *, num_training_steps=None, **settings):
    """Run one step per batch from `params` ({name: array}, each parameter once; `aliases` {other name: name} for the
    names under which a tied parameter is also read): the gradients of the loss at the current parameters
    (`gradients(weights, batch) -> (loss, {name: grad})`, `weights` holding every name and alias), clipped by the
    global norm to `max_norm` (None: not clipped), then AdamW with weight decay `weight_decay` for the names in
    `decayed` and 0 for the others, at learning rate lr * m(t) of `schedule` (a closed form of
    `reference.schedules`, t the number of steps taken before this one). Returns one dict per step (see `step`).
    `settings`: the keyword arguments of `step`."""
    if num_training_steps is None:
        num_training_steps = len(batches)
    p = {n: np.array(v, dtype=np.float64) for n, v in params.items()}
    m = {n: np.zeros_like(v) for n, v in p.items()}
    v = {n: np.zeros_like(x) for n, x in p.items()}
    history = []
    for t, batch in enumerate(batches):
        out = step(p, aliases, m, v, t, batch, gradients, num_training_steps=num_training_steps, **settings)
        p, m, v = out["params"], out["exp_avg"], out["exp_avg_sq"]
        history.append(out)
    return history



ACCUMULATION_RULES = ("mean", "num_items", "sum")


def accumulation_weights(counts, rule, num_items_in_batch=None):
    """The weight of each micro-batch's mean loss in the loss of one optimizer step accumulated over the k = len(counts)
    micro-batches, micro-batch i having counts[i] counted items (label positions that are not ignored), N their sum
    (or `num_items_in_batch`, where the caller counts the items its own way):
    "mean": 1 / k each (the mean of the micro-batch means: every loss divided by the accumulation steps);
    "num_items": counts[i] / N (the sum of every item's loss divided by N, num_items_in_batch: each item weighs 1 / N
    however the items fall into micro-batches; 0 for a micro-batch without items, whose item sum is empty); "sum": 1
    each (the micro-batch means added undivided)."""
    counts = np.asarray(counts, dtype=np.float64)
    if rule == "mean":
        return np.full(len(counts), 1.0 / len(counts))
    if rule == "num_items":
        total = counts.sum() if num_items_in_batch is None else float(num_items_in_batch)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts == 0, 0.0, counts / total)
    if rule == "sum":
        return np.ones(len(counts))
    raise ReferenceInputError(f"unknown accumulation rule {rule!r}; expected one of {ACCUMULATION_RULES}")


def accumulated_loss(item_losses, rule, num_items_in_batch=None):
    """The loss of one optimizer step from the per-item losses of each of its micro-batches (a list of 1-d arrays),
    under `rule` (see `accumulation_weights`): the sum over micro-batches of weight times the micro-batch's mean; a
    micro-batch without items contributes 0 under "num_items" (its sum is empty) and NaN otherwise (an empty mean).
    Under "num_items" that is sum(every item's loss) / N, N = `num_items_in_batch` where the caller counts the items
    its own way (default: the number of items given)."""
    sums = np.array([float(np.sum(x)) for x in item_losses])
    counts = np.array([np.size(x) for x in item_losses], dtype=np.float64)
    if rule == "num_items":
        return float(sums.sum() / (counts.sum() if num_items_in_batch is None else num_items_in_batch))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return float(np.sum(accumulation_weights(counts, rule) * means))


# The optimizer and schedule transformers' Trainer builds for a default TrainingArguments: AdamW at learning rate
# 5e-5, betas (0.9, 0.999), epsilon 1e-8, weight decay 0 (the decay group, `optim.decay_parameter_names`, first,
# then the exempt parameters), a linear schedule without warmup over the training steps, and gradients clipped
# to a global norm of 1.
TRAINER_DEFAULTS = {"lr": 5e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "schedule": "linear",
                    "num_warmup_steps": 0, "max_norm": 1.0}
