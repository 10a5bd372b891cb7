"""AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization") and the no-decay parameter rule.

Two variants of the update are in use, and they differ in three places:

- `"torch"` (torch.optim.AdamW, Kingma & Ba's Algorithm 1 with decoupled decay): decay first,
  p <- p (1 - lr wd); then m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
  p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). Epsilon sits *after* the bias correction of v.
  With amsgrad the running maximum of v replaces v in the denominator.
- `"transformers"` (the `transformers.AdamW` of the original BERT recipe): moments as above; the step is
  p <- p - lr_t * m / (sqrt(v) + eps) with lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) when `correct_bias`, else
  lr_t = lr. Epsilon sits *before* the bias correction; decay comes *after* the step, on the updated
  parameter: p <- p - lr wd p.
"""

import re

import numpy as np

from .errors import ReferenceInputError, Refusal

# torch.optim.AdamW's own messages for each hyper-parameter out of its domain
_INVALID = {"lr": r"Invalid learning rate: \S+$", "eps": r"Invalid epsilon value: \S+$", "beta1": r"Invalid beta parameter at index 0",
            "beta2": r"Invalid beta parameter at index 1", "weight_decay": r"Invalid weight_decay value"}
# transformers.AdamW's (4.4.2-4.49: "[0.0, 1.0[" before 4.5, "[0.0, 1.0)" after); it does not check weight_decay
_INVALID_TRANSFORMERS = {"lr": r"Invalid learning rate: \S+ - should be >= 0\.0",
                         "eps": r"Invalid epsilon value: \S+ - should be >= 0\.0",
                         "beta1": r"Invalid beta parameter: \S+ - should be in \[0\.0, 1\.0[\[)]",
                         "beta2": r"Invalid beta parameter: \S+ - should be in \[0\.0, 1\.0[\[)]"}

VARIANTS = ("torch", "transformers")


def _check(lr, betas, eps, weight_decay, variant="torch"):
    """Refuse hyper-parameters outside AdamW's domain: lr < 0, eps < 0, a beta outside [0, 1), and for the torch
    variant weight_decay < 0 (transformers.AdamW takes a negative decay and computes with it). The refusal expected
    is a ValueError with the variant's own message for the parameter."""
    b1, b2 = betas
    messages = _INVALID if variant == "torch" else _INVALID_TRANSFORMERS
    bad = [name for name, wrong in (("lr", lr < 0), ("eps", eps < 0), ("beta1", not 0.0 <= b1 < 1.0),
                                    ("beta2", not 0.0 <= b2 < 1.0), ("weight_decay", weight_decay < 0))
           if wrong and name in messages]
    if bad:
        raise ReferenceInputError(f"invalid AdamW hyper-parameters lr={lr} betas={betas} eps={eps} "
                                  f"weight_decay={weight_decay}",
                                  Refusal("adamw-hyperparameter", ("ValueError",), "|".join(messages[b] for b in bad)))


def adamw(params, grads, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, variant="torch",
          correct_bias=True, amsgrad=False):
    """Run AdamW from fresh state over a sequence of gradients.

    `params`: the initial parameter arrays (a list); `grads`: one list of gradient arrays per step. Returns one
    dict per step with `params`, `exp_avg` (m) and `exp_avg_sq` (v) after that step, each a list of arrays.
    `correct_bias` exists only in the transformers variant; `amsgrad` only in the torch one.
    """
    if variant not in VARIANTS:
        raise ReferenceInputError(f"unknown AdamW variant {variant!r}")
    if variant == "torch" and not correct_bias:
        raise ReferenceInputError("torch's AdamW always corrects the bias")
    if variant == "transformers" and amsgrad:
        raise ReferenceInputError("transformers' AdamW has no amsgrad")
    _check(lr, betas, eps, weight_decay, variant)
    b1, b2 = betas
    p = [np.array(x, dtype=np.float64) for x in params]
    m = [np.zeros_like(x) for x in p]
    v = [np.zeros_like(x) for x in p]
    v_max = [np.zeros_like(x) for x in p]
    history = []
    for t, step_grads in enumerate(grads, start=1):
        for i, g in enumerate(step_grads):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != p[i].shape:
                raise ReferenceInputError(f"gradient shape {g.shape} does not match parameter shape {p[i].shape}")
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            if variant == "torch":
                p[i] = p[i] * (1 - lr * weight_decay)
                if amsgrad:
                    v_max[i] = np.maximum(v_max[i], v[i])
                denom = np.sqrt(v_max[i] if amsgrad else v[i]) / np.sqrt(1 - b2 ** t) + eps
                p[i] = p[i] - (lr / (1 - b1 ** t)) * m[i] / denom
            else:
                step_size = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) if correct_bias else lr
                p[i] = p[i] - step_size * m[i] / (np.sqrt(v[i]) + eps)
                p[i] = p[i] - lr * weight_decay * p[i]
        history.append({"params": [x.copy() for x in p], "exp_avg": [x.copy() for x in m],
                        "exp_avg_sq": [x.copy() for x in v]})
    return history


# --- which parameters get weight decay ---------------------------------------------------------------------------

NO_DECAY_PATTERNS = (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)")
"""Lower-cased parameter names matching any of these get no weight decay."""


def decays(name):
    """The no-decay rule of BERT fine-tuning: biases and normalisation weights get no weight decay, every other
    parameter does. A parameter is exempt when its lower-cased dotted name contains "bias", "layernorm" or
    "rmsnorm", or has a component "norm" or ending in "_norm". (The original recipe listed "bias" and
    "LayerNorm.weight"; on BERT's names the two rules agree.)"""
    lowered = name.lower()
    return not any(re.search(pattern, lowered) for pattern in NO_DECAY_PATTERNS)


def decay_parameter_names(names):
    """The names among `names` (a model's parameter names) that get weight decay, in the given order."""
    return [n for n in names if decays(n)]
