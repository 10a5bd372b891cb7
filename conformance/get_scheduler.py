"""What a release's `get_scheduler` passes on to a schedule: the plumbing between the Trainer's arguments and the
schedule functions, whose rules changed across releases (the flags; see the drift catalog's `get-scheduler-*`
changes). The schedule check compares a schedule built through `get_scheduler` with the reference's curve of
the arguments this says arrive."""

from reference import ReferenceInputError
from reference.errors import Refusal
from reference.schedules import STATEFUL

STEP_COUNTS = ("num_warmup_steps", "num_training_steps")

# what get_scheduler raises where it refuses (the same class and message in every release checked, 4.4.2-5.24.0)
NEEDS_WARMUP = Refusal("get-scheduler-needs-warmup", ("ValueError",), r"requires `num_warmup_steps`")
NEEDS_TOTAL = Refusal("get-scheduler-needs-training-steps", ("ValueError",), r"requires `num_training_steps`")
WSD_TAKES_NO_TOTAL = Refusal("get-scheduler-wsd-takes-no-training-steps", ("TypeError",),
                             r"unexpected keyword argument 'num_training_steps'")
"""Before 4.42 get_scheduler passes num_training_steps to get_wsd_schedule, whose signature lacks it: the call in
get_scheduler raises TypeError."""


def get_scheduler_arguments(name, params, *, specific_kwargs=True, inverse_sqrt_kwargs=True, wsd_branch=True,
                            wsd_training_steps=True):
    """The keyword arguments `get_scheduler(name, optimizer, num_warmup_steps, num_training_steps,
    scheduler_specific_kwargs)` hands to schedule `name`'s own function, for a user who means `params` and passes
    them as the Trainer does: the two step counts as themselves (None when absent), everything else as
    `scheduler_specific_kwargs` (the Trainer's `lr_scheduler_kwargs`). Raises ReferenceInputError where
    get_scheduler refuses.

    - constant: nothing;
    - reduce_lr_on_plateau, greedy: the specific kwargs;
    - every other schedule requires num_warmup_steps; constant_with_warmup gets it alone, inverse_sqrt gets it and
      the specific kwargs;
    - warmup_stable_decay: both step counts (num_training_steps may be None) and the specific kwargs;
    - the rest require num_training_steps and get both step counts and the specific kwargs.

    Rules of earlier releases (the flags, each True from the release named):
    - `specific_kwargs` (4.36): before, there are no specific kwargs; the schedule's defaults hold, and
      reduce_lr_on_plateau gets nothing;
    - `inverse_sqrt_kwargs` (5.4): before, inverse_sqrt gets num_warmup_steps alone (a timescale is dropped);
    - `wsd_branch` (4.42): before, warmup_stable_decay takes the path of the rest: num_training_steps required and
      passed on, which the schedule of those releases does not take, so it is refused either way;
    - `wsd_training_steps` (4.49): before, warmup_stable_decay gets num_warmup_steps and the specific kwargs only.
    """
    warmup, total = params.get("num_warmup_steps"), params.get("num_training_steps")
    specific = {k: v for k, v in params.items() if k not in STEP_COUNTS} if specific_kwargs else {}
    if name == "constant":
        return {}
    if name in STATEFUL:
        return specific
    if warmup is None:
        raise ReferenceInputError(f"get_scheduler: {name} requires num_warmup_steps", NEEDS_WARMUP)
    if name == "constant_with_warmup":
        return {"num_warmup_steps": warmup}
    if name == "inverse_sqrt":
        return dict({"num_warmup_steps": warmup}, **(specific if inverse_sqrt_kwargs else {}))
    if name == "warmup_stable_decay" and wsd_branch:
        steps = {"num_warmup_steps": warmup, "num_training_steps": total} if wsd_training_steps else \
            {"num_warmup_steps": warmup}
        return dict(steps, **specific)
    if total is None:
        raise ReferenceInputError(f"get_scheduler: {name} requires num_training_steps", NEEDS_TOTAL)
    if name == "warmup_stable_decay":
        raise ReferenceInputError("get_scheduler passes num_training_steps, which this warmup_stable_decay does not "
                                  "take", WSD_TAKES_NO_TOTAL)
    return dict({"num_warmup_steps": warmup, "num_training_steps": total}, **specific)
