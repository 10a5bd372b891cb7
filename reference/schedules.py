"""Learning-rate schedules: closed forms of every multiplier, and simulations of the two stateful schedulers.

A schedule is a multiplier m(t) of a base learning rate: after t calls of `step()`, parameter group g has
learning rate base_g * m(t) (t = 0 right after construction). Beyond `num_training_steps` the formulas keep
going as written (no schedule stops at the end); each docstring says what that gives.

Every closed form takes keyword arguments named as transformers' `get_*_schedule*` functions name them, plus
`lr_init`, the optimizer's default learning rate, which the schedules that take an absolute learning rate
(`lr_end`, `min_lr`) divide by. With several parameter groups of different base learning rates those absolute
values are therefore exact only for the group whose base equals the default.

`validate(name, params, lr_init)` refuses the parameters a schedule does not define, with `ReferenceInputError`.
"""

import math

from .errors import ReferenceInputError, Refusal

# what an implementation is expected to raise for parameters a schedule does not define
ZERO_DIVISION = Refusal("schedule-zero-division", ("ZeroDivisionError",), r"division by zero")
LR_END = Refusal("polynomial-lr-end", ("ValueError",), r"lr_end \(.*\) must be (be )?smaller than initial lr")
MIN_LR = Refusal("min-lr-or-rate", ("ValueError",), r"of min_lr or min_lr_rate should be set")
FACTOR = Refusal("plateau-factor", ("ValueError",), r"Factor should be < 1")
MODE = Refusal("plateau-mode", ("ValueError",), r"mode \S* is unknown!")
"""An unknown mode or threshold_mode: torch's ReduceLROnPlateau and transformers' GreedyLR alike raise ValueError
"mode <m> is unknown!" / "threshold mode <m> is unknown!"."""
LR_LIST = Refusal("plateau-lr-list", ("ValueError",), r"expected \d+ m(in|ax)_lrs, got \d+")
"""A min_lr (or GreedyLR's max_lr) list whose length is not the number of parameter groups."""
WSD_STEPS = Refusal("wsd-needs-steps", ("ValueError",),
                    r"Either num_training_steps or num_stable_steps must be specified")
"""warmup_stable_decay given neither num_training_steps nor num_stable_steps (from 4.49; before, num_stable_steps
is a required argument: the drift change `wsd-warmup-from-min-lr` states that refusal)."""


def _ramp(step, num_warmup_steps):
    """Linear warmup from 0: t / max(1, W) for t < W."""
    return step / max(1, num_warmup_steps)


def _progress(step, num_warmup_steps, num_training_steps):
    """Fraction of the decay phase done: (t - W) / max(1, T - W); exceeds 1 beyond T (and is < 0 never)."""
    return (step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)


def constant(step, **_):
    """m(t) = 1."""
    return 1.0


def constant_with_warmup(step, *, num_warmup_steps, **_):
    """m(t) = t / max(1, W) for t < W, then 1."""
    return _ramp(step, num_warmup_steps) if step < num_warmup_steps else 1.0


def linear(step, *, num_warmup_steps, num_training_steps, **_):
    """Warmup, then linear decay to 0 at T, and 0 after: m(t) = max(0, (T - t) / max(1, T - W))."""
    if step < num_warmup_steps:
        return _ramp(step, num_warmup_steps)
    return max(0.0, (num_training_steps - step) / max(1, num_training_steps - num_warmup_steps))


def cosine(step, *, num_warmup_steps, num_training_steps, num_cycles=0.5, **_):
    """Warmup, then m = max(0, (1 + cos(2 pi c p)) / 2) with p = `_progress` and c = num_cycles (0.5: one half
    wave from 1 to 0 at T). Beyond T the wave continues: with c = 0.5 it rises again after T."""
    if step < num_warmup_steps:
        return _ramp(step, num_warmup_steps)
    p = _progress(step, num_warmup_steps, num_training_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * p)))


def cosine_with_restarts(step, *, num_warmup_steps, num_training_steps, num_cycles=1, **_):
    """Warmup, then c hard restarts: m = (1 + cos(pi * frac(c p))) / 2 for p < 1, and 0 from T on."""
    if step < num_warmup_steps:
        return _ramp(step, num_warmup_steps)
    p = _progress(step, num_warmup_steps, num_training_steps)
    if p >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((float(num_cycles) * p) % 1.0))))


def polynomial(step, *, num_warmup_steps, num_training_steps, lr_init, lr_end=1e-7, power=1.0, **_):
    """Warmup, then lr = (lr_init - lr_end) * (1 - p)^power + lr_end for W <= t <= T and lr_end after T; the
    multiplier is lr / lr_init. At W == T the decay phase has length 0: t = T is undefined (division by zero),
    refused with ReferenceInputError."""
    if step < num_warmup_steps:
        return _ramp(step, num_warmup_steps)
    if step > num_training_steps:
        return lr_end / lr_init
    decay_steps = num_training_steps - num_warmup_steps
    if decay_steps == 0:
        raise ReferenceInputError("polynomial decay with num_warmup_steps == num_training_steps: 0/0 at step T",
                                  ZERO_DIVISION)
    remaining = 1 - (step - num_warmup_steps) / decay_steps
    return ((lr_init - lr_end) * remaining ** power + lr_end) / lr_init


def inverse_sqrt(step, *, num_warmup_steps, timescale=None, default_timescale_10000=True, **_):
    """Warmup, then m = 1 / sqrt((t + s - W) / s) with timescale s (default W, or 10000 when W is 0): m(W) = 1.

    Rule before transformers 4.39 (`default_timescale_10000=False`): the default timescale is W even when W is 0,
    where the formula is 0/0 and is refused."""
    if timescale is None:
        timescale = num_warmup_steps or (10_000 if default_timescale_10000 else 0)
    if timescale == 0 and step >= num_warmup_steps:
        raise ReferenceInputError("inverse_sqrt with timescale 0 is 0/0", ZERO_DIVISION)
    if step < num_warmup_steps:
        return _ramp(step, num_warmup_steps)
    return 1.0 / math.sqrt((step + timescale - num_warmup_steps) / timescale)


def _min_lr_rate(lr_init, min_lr=None, min_lr_rate=None):
    if (min_lr is None) == (min_lr_rate is None):
        raise ReferenceInputError("exactly one of min_lr and min_lr_rate must be given", MIN_LR)
    return min_lr / lr_init if min_lr is not None else min_lr_rate


def cosine_with_min_lr(step, *, num_warmup_steps, num_training_steps, lr_init, num_cycles=0.5, min_lr=None,
                       min_lr_rate=None, **_):
    """Warmup, then the cosine wave rescaled to end at r = min_lr_rate (or min_lr / lr_init):
    m = max(0, r + (1 - r) (1 + cos(2 pi c p)) / 2)."""
    r = _min_lr_rate(lr_init, min_lr, min_lr_rate)
    if step < num_warmup_steps:
        return _ramp(step, num_warmup_steps)
    p = _progress(step, num_warmup_steps, num_training_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * p)) * (1 - r) + r)


def cosine_warmup_with_min_lr(step, *, num_warmup_steps, num_training_steps, lr_init, num_cycles=0.5, min_lr=None,
                              min_lr_rate=None, warmup_lr_rate=None, **_):
    """Like `cosine_with_min_lr` but counted one step ahead. Warmup: (t + 1) / max(1, W), or, with a
    warmup_lr_rate w, w + (1 - w) t / max(1, W - 1). Decay: p = (t - W + 1) / max(1, T - W)."""
    r = _min_lr_rate(lr_init, min_lr, min_lr_rate)
    if step < num_warmup_steps:
        if warmup_lr_rate is None:
            return (step + 1.0) / max(1.0, num_warmup_steps)
        return warmup_lr_rate + (1.0 - warmup_lr_rate) * step / max(1, num_warmup_steps - 1)
    p = (step - num_warmup_steps + 1.0) / max(1.0, num_training_steps - num_warmup_steps)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * num_cycles * 2.0 * p)) * (1 - r) + r)


WSD_SHAPES = ("linear", "cosine", "1-sqrt")


def warmup_stable_decay(step, *, num_warmup_steps, num_decay_steps, num_training_steps=None, num_stable_steps=None,
                        warmup_type="linear", decay_type="cosine", min_lr_ratio=0.0, num_cycles=0.5,
                        warmup_from_min_lr=True, **_):
    """Three phases, each rescaled to [r, 1] with r = min_lr_ratio: warmup over W steps rising with `warmup_type`
    (linear p, cosine (1 - cos(pi p)) / 2, 1-sqrt 1 - sqrt(1 - p)); stable at 1 for S steps (S given, else
    T - W - D); decay over D steps falling with `decay_type` (linear 1 - p, cosine (1 + cos(2 pi c p)) / 2,
    1-sqrt 1 - sqrt(p)); r after W + S + D.

    Rule of transformers 4.41-4.48 (`warmup_from_min_lr=False`): the warmup rises linearly from 0, not from r."""
    if num_stable_steps is None:
        num_stable_steps = num_training_steps - num_warmup_steps - num_decay_steps
    r = min_lr_ratio
    if step < num_warmup_steps:
        p = step / max(1, num_warmup_steps)
        if not warmup_from_min_lr:
            return p
        f = {"linear": p, "cosine": 0.5 * (1.0 - math.cos(math.pi * p)), "1-sqrt": 1.0 - math.sqrt(1.0 - p)}
        return max(0.0, f[warmup_type] * (1.0 - r) + r)
    if step < num_warmup_steps + num_stable_steps:
        return 1.0
    if step < num_warmup_steps + num_stable_steps + num_decay_steps:
        p = (step - num_warmup_steps - num_stable_steps) / max(1, num_decay_steps)
        f = {"linear": 1.0 - p, "cosine": 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * p)),
             "1-sqrt": 1.0 - math.sqrt(p)}
        return max(0.0, f[decay_type] * (1.0 - r) + r)
    return r


MULTIPLIERS = {
    "constant": constant,
    "constant_with_warmup": constant_with_warmup,
    "linear": linear,
    "cosine": cosine,
    "cosine_with_restarts": cosine_with_restarts,
    "polynomial": polynomial,
    "inverse_sqrt": inverse_sqrt,
    "cosine_with_min_lr": cosine_with_min_lr,
    "cosine_warmup_with_min_lr": cosine_warmup_with_min_lr,
    "warmup_stable_decay": warmup_stable_decay,
}
"""Closed-form schedules by their `SchedulerType` value."""


def validate(name, params, lr_init):
    """Refuse parameters the schedule does not define (raises ReferenceInputError):

    - polynomial: lr_end must be below the initial learning rate;
    - cosine_with_min_lr, cosine_warmup_with_min_lr: exactly one of min_lr, min_lr_rate;
    - warmup_stable_decay: num_training_steps or num_stable_steps given; warmup/decay types among WSD_SHAPES.
    """
    if name == "polynomial" and not lr_init > params.get("lr_end", 1e-7):
        raise ReferenceInputError(f"lr_end ({params.get('lr_end', 1e-7)}) must be smaller than lr ({lr_init})", LR_END)
    if name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        _min_lr_rate(lr_init, params.get("min_lr"), params.get("min_lr_rate"))
    if name == "warmup_stable_decay":
        if params.get("num_training_steps") is None and params.get("num_stable_steps") is None:
            raise ReferenceInputError("warmup_stable_decay needs num_training_steps or num_stable_steps", WSD_STEPS)
        for key in ("warmup_type", "decay_type"):
            if params.get(key, "linear") not in WSD_SHAPES:
                raise ReferenceInputError(f"unknown {key} {params[key]!r}", Refusal(
                    "wsd-shape", ("ValueError",), rf"Unknown {key.split('_')[0]} type"))


def curve(name, params, base_lrs, lr_init, steps, rules=None):
    """Learning rates of every group after 0..steps calls of `step()`: a list of `steps + 1` lists.

    `params` are the schedule's keyword arguments; `base_lrs` the groups' initial learning rates; `lr_init` the
    optimizer's default learning rate; `rules` selects a schedule's rule of an earlier release (see its
    docstring)."""
    validate(name, params, lr_init)
    f = MULTIPLIERS[name]
    rows = []
    for t in range(steps + 1):
        try:
            rows.append([base * f(t, lr_init=lr_init, **params, **(rules or {})) for base in base_lrs])
        except ReferenceInputError as exc:  # undefined from step t on: the steps before it are kept
            exc.computed = rows
            raise
    return rows


# --- stateful schedulers, simulated from a sequence of metrics -------------------------------------------------


def _improves(current, best, mode, threshold, threshold_mode):
    """Whether `current` beats `best`: by more than `threshold` ("abs") or by the factor 1 -+ threshold ("rel")."""
    if mode == "min":
        return current < (best * (1.0 - threshold) if threshold_mode == "rel" else best - threshold)
    return current > (best * (1.0 + threshold) if threshold_mode == "rel" else best + threshold)


def reduce_on_plateau(metrics, base_lrs, *, mode="min", factor=0.1, patience=10, threshold=1e-4,
                      threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
    """Learning rates after each `step(metric)` of reduce-on-plateau (torch's ReduceLROnPlateau semantics).

    A metric that improves on the best so far (see `_improves`) resets the count of bad epochs, otherwise it
    grows by one. During a cooldown (`cooldown` steps after a reduction) bad epochs are not counted. When the
    count exceeds `patience`, each group's lr becomes max(lr * factor, min_lr), kept only if it drops by more than
    `eps`; the count resets and the cooldown starts. Returns one list of group lrs per metric.
    """
    if factor >= 1.0:
        raise ReferenceInputError("factor must be < 1", FACTOR)
    if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
        raise ReferenceInputError(f"unknown mode {mode!r} or threshold_mode {threshold_mode!r}", MODE)
    min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(base_lrs)
    if len(min_lrs) != len(base_lrs):
        raise ReferenceInputError("a min_lr list needs one value per parameter group", LR_LIST)
    lrs = list(base_lrs)
    best = math.inf if mode == "min" else -math.inf
    bad = cooldown_left = 0
    out = []
    for metric in metrics:
        current = float(metric)
        if _improves(current, best, mode, threshold, threshold_mode):
            best, bad = current, 0
        else:
            bad += 1
        if cooldown_left > 0:
            cooldown_left -= 1
            bad = 0
        if bad > patience:
            for i, lr in enumerate(lrs):
                new = max(lr * factor, min_lrs[i])
                if lr - new > eps:
                    lrs[i] = new
            cooldown_left, bad = cooldown, 0
        out.append(list(lrs))
    return out


def greedy(metrics, base_lrs, *, mode="min", factor=0.95, patience=10, threshold=1e-6, threshold_mode="abs",
           cooldown=0, warmup=0, min_lr=1e-3, max_lr=1.0, eps=1e-8, smooth=False, window_size=50,
           reset_start=500, verbose=False):
    """Learning rates after each `step(metric)` of GreedyLR (arXiv 2512.14527), as transformers documents it.

    Optionally smooth the metric by a running mean over the last `window_size` values. While a cooldown (after a
    decrease) or a warmup (after an increase) runs, count nothing. Otherwise an improvement on the best (see
    `_improves`) adds a good epoch and clears the bad ones, anything else the reverse. More than `patience` good
    epochs: lr = min(lr / factor, max_lr) per group (kept if it rises by more than eps), start the warmup, and
    re-arm the reset counter. More than `patience` bad epochs: lr = max(lr * factor, min_lr) (kept if it drops by
    more than eps), start the cooldown; if every group then sits at or below its min_lr, count down `reset_start`
    such reductions and at 0 go back to the initial lrs and a fresh state.
    """
    if factor >= 1.0:
        raise ReferenceInputError("factor must be < 1", FACTOR)
    if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
        raise ReferenceInputError(f"unknown mode {mode!r} or threshold_mode {threshold_mode!r}", MODE)
    n = len(base_lrs)
    min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
    max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * n
    if len(min_lrs) != n or len(max_lrs) != n:
        raise ReferenceInputError("min_lr and max_lr lists need one value per parameter group", LR_LIST)

    def fresh():
        return dict(best=math.inf if mode == "min" else -math.inf, good=0, bad=0, cooldown=0, warmup=0, window=[])

    lrs, state, resets_left, out = list(base_lrs), fresh(), reset_start, []
    for metric in metrics:
        current = float(metric)
        if smooth:
            state["window"] = (state["window"] + [current])[-window_size:]
            current = sum(state["window"]) / len(state["window"])
        if state["cooldown"] > 0:
            state["cooldown"] -= 1
            state["good"] = state["bad"] = 0
        elif state["warmup"] > 0:
            state["warmup"] -= 1
            state["good"] = state["bad"] = 0
        else:
            if _improves(current, state["best"], mode, threshold, threshold_mode):
                state["best"], state["bad"], state["good"] = current, 0, state["good"] + 1
            else:
                state["bad"], state["good"] = state["bad"] + 1, 0
            if state["good"] > patience:
                for i, lr in enumerate(lrs):
                    new = min(lr / factor, max_lrs[i])
                    if new - lr > eps:
                        lrs[i] = new
                resets_left = reset_start
                state["warmup"], state["good"] = warmup, 0
            elif state["bad"] > patience:
                for i, lr in enumerate(lrs):
                    new = max(lr * factor, min_lrs[i])
                    if lr - new > eps:
                        lrs[i] = new
                if all(lr <= m for lr, m in zip(lrs, min_lrs)):
                    resets_left -= 1
                    if resets_left <= 0:
                        lrs, resets_left, state = list(base_lrs), reset_start, fresh()
                state["cooldown"], state["bad"] = cooldown, 0
        out.append(list(lrs))
    return out


STATEFUL = {"reduce_lr_on_plateau": reduce_on_plateau, "greedy": greedy}
"""Schedulers driven by a metric, by their `SchedulerType` value."""
