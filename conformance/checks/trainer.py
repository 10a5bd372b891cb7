"""What transformers' Trainer builds for a default TrainingArguments: its optimizer, parameter groups and schedule."""

import numpy as np

from reference import optim, schedules
from reference.training import TRAINER_DEFAULTS

from ..check import Check
from ..compare import Comparison, compare, tolerance
from .train_cases import zero_dropout_cases

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


CHECKS = [
    Check(f"train.trainer.defaults.{name}", "train", head, trainer_defaults.__doc__,
          zero_dropout_cases(head, labels=labels), kind="property", prop=trainer_defaults, once=True, cpu_only=True,
          applies=lambda adapter: adapter.trainer_unavailable(), max_examples=4)
    for name, head, labels in (("sequence_classification", "BertForSequenceClassification", "class"),
                               ("pretraining", "BertForPreTraining", "pretraining"))
]
