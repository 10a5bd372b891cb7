"""Learning-rate schedules: every schedule's curve, built by its own function and as the Trainer builds it
(`get_scheduler`), against the reference's closed form or simulation; and a catalog check that fails when a release
adds a schedule without a reference.

A case is a `SubjectCase` (the schedule and its parameters, JSON throughout, so that a failure prints a runnable
reproduction).
"""

import numpy as np
from hypothesis import strategies as st

from reference import schedules

from ..case import SubjectCase
from ..check import Check
from ..compare import Comparison, compare, tolerance
from ..get_scheduler import get_scheduler_arguments
from ..judges import refusals
from ..strategies import header_and_bytes

SCHEDULES = tuple(schedules.MULTIPLIERS) + tuple(schedules.STATEFUL)


# --- schedules -------------------------------------------------------------------------------------------------

LRS = (1e-5, 3e-4, 1e-3, 0.01, 0.1, 0.5, 1.0)
METRICS = 40  # the longest metric sequence of a stateful schedule

# Few choices per case, as in conformance.strategies: a case is a header of one-byte fields, `low + byte % count`,
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


def lr_header(draw, extra=(), tail=0):
    """The base lrs of 1-3 parameter groups and `lr_init` (the first group's, or another), plus `extra` fields and
    `tail` more bytes, in one choice (`header_and_bytes`): (header, bytes, base_lrs, lr_init)."""
    h, tail_bytes = header_and_bytes(draw, [("groups", 3), ("lr0", 7), ("lr1", 7), ("lr2", 7), ("lr_init", 8)] +
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
    h, _, base_lrs, lr_init = lr_header(draw, SCHEDULE_FIELDS)
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
    return SubjectCase(name, {"schedule": p, "base_lrs": base_lrs, "lr_init": lr_init, "steps": steps,
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
    h, metric_bytes, base_lrs, _ = lr_header(draw, STATEFUL_FIELDS, tail=METRICS)
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
    return SubjectCase(name, {"schedule": p, "base_lrs": base_lrs, "lr_init": base_lrs[0], "metrics": metrics,
                               "resume_at": None if resume == 0 else resume - 1})


def schedule_strategy(name):
    if name in schedules.STATEFUL:
        return lambda adapter: stateful_schedule_cases(name)
    return lambda adapter: schedule_cases(name, wsd_v2=adapter.has("wsd-warmup-from-min-lr"))


def get_scheduler_rules(adapter):
    """The rules of `get_scheduler`'s argument passing that the implementation's release follows (see
    `conformance.get_scheduler` and conformance.drift)."""
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
        return ref(get_scheduler_arguments(name, p["schedule"], **get_scheduler_rules(adapter)))

    def lrs(actual, expected):  # also the steps before a refusing step (see judges.refusals)
        return [compare("lr[step, group]", actual, expected, tolerance("float64"))]

    results = []
    for via, reference_call in (("function", lambda: ref(p["schedule"])), ("get_scheduler", forwarded)):
        expected, actual, refusal = refusals(reference_call, lambda: adapter.lr_curve(
            name, p["schedule"], p["base_lrs"], p["lr_init"], steps=p.get("steps"), metrics=p.get("metrics"),
            resume_at=p.get("resume_at"), via=via), adapter, lrs)
        prefix = "" if via == "function" else "get_scheduler: "
        results += [Comparison(prefix + r.key, r.ok, r.ratio, r.message and prefix + r.message)
                    for r in refusal or lrs(actual, expected)]
    return results


def schedule_catalog(adapter, case, target):
    """Every schedule the installed version offers (`SchedulerType`) has a reference; a new one fails until it
    gets one."""
    missing = sorted(set(adapter.schedule_names()) - set(SCHEDULES))
    return [Comparison("schedules without a reference", not missing, 0.0, f"no reference for {missing}")]


def _offered(name):
    def applies(adapter):
        return None if name in adapter.schedule_names() else f"{adapter.name} {adapter.version} has no {name!r} schedule"
    return applies


CHECKS = [
    Check("schedule.catalog", "schedule", "SchedulerType", schedule_catalog.__doc__,
          lambda adapter: st.just(SubjectCase("SchedulerType")), kind="property", prop=schedule_catalog, once=True,
          max_examples=1, case_type=SubjectCase),
    *[Check(f"schedule.{name}", "schedule", name, schedule_curve.__doc__, schedule_strategy(name), kind="property",
            prop=schedule_curve, once=True, case_type=SubjectCase, applies=_offered(name))
      for name in SCHEDULES],
]
