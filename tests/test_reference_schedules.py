"""The oracle's own tests for reference.schedules: hand-computed multipliers, edge cases, validation, curves, and
hand-traced runs of the two stateful schedulers.

Every expected number is worked on paper (the arithmetic is in the comment next to it) or follows from a
statement in the module's docstrings; nothing comes from torch or transformers, nor from running the code.
Unless said otherwise the closed forms use W = 4 warmup steps and T = 12 training steps (a decay phase of 8).
"""

import math

import pytest

from reference import ReferenceInputError
from reference import schedules as S

pytestmark = pytest.mark.reference

W, T = 4, 12
SQRT2_2 = math.sqrt(2.0) / 2.0


def m(name, step, **params):
    """The multiplier of schedule `name` after `step` calls; lr_init defaults to 1 like `curve` would pass it."""
    params.setdefault("lr_init", 1.0)
    return S.MULTIPLIERS[name](step, **params)


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def assert_rows(actual, expected):
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_every_schedule_type_has_a_closed_form_or_a_simulation():
    assert set(S.MULTIPLIERS) == {"constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                                  "polynomial", "inverse_sqrt", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                                  "warmup_stable_decay"}
    assert set(S.STATEFUL) == {"reduce_lr_on_plateau", "greedy"}
    assert not set(S.MULTIPLIERS) & set(S.STATEFUL)


# --- closed forms: hand values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 4, 12, 1000])
def test_constant_is_one_everywhere(step):
    assert m("constant", step) == 1.0
    assert m("constant", step, num_warmup_steps=W, num_training_steps=T) == 1.0  # extra kwargs ignored


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),    # 0 / 4
    (2, 0.5),    # 2 / 4
    (3, 0.75),   # 3 / 4
    (4, 1.0),    # t = W: warmup over
    (12, 1.0),
    (50, 1.0),   # no end
])
def test_constant_with_warmup(step, expected):
    assert m("constant_with_warmup", step, num_warmup_steps=W) == approx(expected)


def test_constant_with_warmup_without_warmup_is_one_from_step_zero():
    assert m("constant_with_warmup", 0, num_warmup_steps=0) == 1.0


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),      # warmup 0 / 4
    (2, 0.5),      # 2 / 4
    (4, 1.0),      # (12 - 4) / (12 - 4)
    (8, 0.5),      # (12 - 8) / 8
    (10, 0.25),    # (12 - 10) / 8
    (12, 0.0),     # (12 - 12) / 8
    (15, 0.0),     # max(0, (12 - 15) / 8) = max(0, -3/8)
])
def test_linear(step, expected):
    assert m("linear", step, num_warmup_steps=W, num_training_steps=T) == approx(expected)


def test_linear_without_warmup_starts_at_one():
    # W = 0: (12 - 0) / 12 = 1 at t = 0;  (12 - 3) / 12 = 0.75
    assert m("linear", 0, num_warmup_steps=0, num_training_steps=T) == 1.0
    assert m("linear", 3, num_warmup_steps=0, num_training_steps=T) == approx(0.75)


def test_linear_with_warmup_equal_to_training_steps():
    # W = T = 12: ramp 11/12 at t = 11, then (12 - 12) / max(1, 0) = 0 at T, and max(0, -1/1) = 0 after
    assert m("linear", 11, num_warmup_steps=12, num_training_steps=12) == approx(11 / 12)
    assert m("linear", 12, num_warmup_steps=12, num_training_steps=12) == 0.0
    assert m("linear", 13, num_warmup_steps=12, num_training_steps=12) == 0.0


def test_linear_with_warmup_beyond_training_steps():
    # W = 16 > T = 12: the ramp runs past T (14/16), then max(0, (12 - 16) / max(1, -4)) = 0
    assert m("linear", 14, num_warmup_steps=16, num_training_steps=12) == approx(14 / 16)
    assert m("linear", 16, num_warmup_steps=16, num_training_steps=12) == 0.0


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),                       # warmup 0 / 4
    (2, 0.5),                       # 2 / 4
    (4, 1.0),                       # p = 0: (1 + cos 0) / 2
    (6, (1 + SQRT2_2) / 2),         # p = 2/8: (1 + cos(2 pi 0.5 0.25)) / 2 = (1 + cos(pi/4)) / 2
    (8, 0.5),                       # p = 1/2: (1 + cos(pi/2)) / 2
    (10, (1 - SQRT2_2) / 2),        # p = 3/4: (1 + cos(3 pi/4)) / 2
    (12, 0.0),                      # p = 1: (1 + cos pi) / 2
    (16, 0.5),                      # p = 3/2: the wave continues beyond T: (1 + cos(3 pi/2)) / 2
    (20, 1.0),                      # p = 2: back at the top, (1 + cos 2 pi) / 2
])
def test_cosine(step, expected):
    assert m("cosine", step, num_warmup_steps=W, num_training_steps=T) == approx(expected)


def test_cosine_with_one_full_cycle():
    # c = 1: (1 + cos(2 pi p)) / 2: p = 1/2 -> 0, p = 1 -> 1
    kw = dict(num_warmup_steps=W, num_training_steps=T, num_cycles=1)
    assert m("cosine", 8, **kw) == approx(0.0)
    assert m("cosine", 12, **kw) == approx(1.0)


def test_cosine_with_warmup_equal_to_training_steps():
    # W = T: p = (t - W) / max(1, 0) = t - W: t = T gives p = 0 -> 1; t = T + 1 gives p = 1 -> 0
    kw = dict(num_warmup_steps=12, num_training_steps=12)
    assert m("cosine", 6, **kw) == approx(0.5)  # 6 / 12
    assert m("cosine", 12, **kw) == approx(1.0)
    assert m("cosine", 13, **kw) == approx(0.0)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),                      # warmup 0 / 4
    (2, 0.5),                      # 2 / 4
    (4, 1.0),                      # p = 0, c p = 0: (1 + cos 0) / 2
    (6, 0.5),                      # p = 1/4, c p = 1/2: (1 + cos(pi/2)) / 2
    (7, (1 - SQRT2_2) / 2),        # p = 3/8, c p = 3/4: (1 + cos(3 pi/4)) / 2
    (8, 1.0),                      # p = 1/2, c p = 1: frac 0 -> hard restart at the top
    (10, 0.5),                     # p = 3/4, c p = 3/2: frac 1/2
    (11, (1 - SQRT2_2) / 2),       # p = 7/8, c p = 7/4: frac 3/4
    (12, 0.0),                     # p = 1: 0 from T on
    (13, 0.0),
    (20, 0.0),                     # p = 2 would be a restart's top if the wave continued; it does not
])
def test_cosine_with_hard_restarts_two_cycles(step, expected):
    kw = dict(num_warmup_steps=W, num_training_steps=T, num_cycles=2)
    assert m("cosine_with_restarts", step, **kw) == approx(expected)


def test_cosine_with_restarts_default_is_one_cycle():
    # c = 1: (1 + cos(pi p)) / 2: p = 1/2 -> 1/2, p = 7/8 -> (1 + cos(7 pi/8)) / 2
    kw = dict(num_warmup_steps=W, num_training_steps=T)
    assert m("cosine_with_restarts", 8, **kw) == approx(0.5)
    assert m("cosine_with_restarts", 11, **kw) == approx((1 + math.cos(7 * math.pi / 8)) / 2)
    assert m("cosine_with_restarts", 12, **kw) == 0.0


POLY = dict(num_warmup_steps=W, num_training_steps=T, lr_init=2.0, lr_end=0.5)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),        # warmup 0 / 4
    (2, 0.5),        # 2 / 4
    (4, 1.0),        # remaining 1: ((2 - 0.5) * 1 + 0.5) / 2 = 1
    (8, 0.4375),     # remaining 1/2: (1.5 * 1/4 + 0.5) / 2 = 0.875 / 2
    (10, 0.296875),  # remaining 1/4: (1.5 * 1/16 + 0.5) / 2 = 0.59375 / 2
    (12, 0.25),      # remaining 0: 0.5 / 2 = lr_end / lr_init
    (13, 0.25),      # after T: lr_end / lr_init
    (100, 0.25),
])
def test_polynomial_power_two(step, expected):
    assert m("polynomial", step, power=2.0, **POLY) == approx(expected)


def test_polynomial_power_one_is_linear_to_lr_end():
    # remaining 1/2: (1.5 * 1/2 + 0.5) / 2 = 0.625;  remaining 3/4 (t = 6): (1.125 + 0.5) / 2 = 0.8125
    assert m("polynomial", 8, **POLY) == approx(0.625)
    assert m("polynomial", 6, **POLY) == approx(0.8125)


def test_polynomial_default_lr_end():
    # lr_end defaults to 1e-7: at T the multiplier is 1e-7 / 1e-3 = 1e-4
    kw = dict(num_warmup_steps=W, num_training_steps=T, lr_init=1e-3)
    assert m("polynomial", T, **kw) == approx(1e-4)
    assert m("polynomial", T + 5, **kw) == approx(1e-4)


def test_polynomial_with_warmup_equal_to_training_steps_refuses_only_step_t():
    kw = dict(num_warmup_steps=4, num_training_steps=4, lr_init=2.0, lr_end=0.5)
    assert m("polynomial", 3, **kw) == approx(0.75)  # warmup 3 / 4
    with pytest.raises(ReferenceInputError):
        m("polynomial", 4, **kw)  # (t - W) / (T - W) = 0 / 0
    assert m("polynomial", 5, **kw) == approx(0.25)  # t > T: lr_end / lr_init


def test_polynomial_with_warmup_beyond_training_steps():
    # W = 16 > T = 12: the ramp runs to 16 (14/16 at 14), then t > T: lr_end / lr_init = 0.25
    kw = dict(num_warmup_steps=16, num_training_steps=12, lr_init=2.0, lr_end=0.5)
    assert m("polynomial", 14, **kw) == approx(14 / 16)
    assert m("polynomial", 16, **kw) == approx(0.25)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),                   # warmup 0 / 4
    (2, 0.5),                   # 2 / 4
    (4, 1.0),                   # timescale s = W = 4: 1 / sqrt((4 + 4 - 4) / 4)
    (16, 0.5),                  # 1 / sqrt((16 + 4 - 4) / 4) = 1 / sqrt(4)
    (40, 1 / math.sqrt(10)),    # 1 / sqrt(40 / 4)
])
def test_inverse_sqrt(step, expected):
    assert m("inverse_sqrt", step, num_warmup_steps=W) == approx(expected)


def test_inverse_sqrt_timescales():
    # W = 0: s = 10000: t = 0 -> 1, t = 20000 -> 1 / sqrt((20000 + 10000) / 10000) = 1 / sqrt(3),
    # t = 30000 -> 1 / sqrt(4)
    assert m("inverse_sqrt", 0, num_warmup_steps=0) == approx(1.0)
    assert m("inverse_sqrt", 20_000, num_warmup_steps=0) == approx(1 / math.sqrt(3))
    assert m("inverse_sqrt", 30_000, num_warmup_steps=0) == approx(0.5)
    # explicit s = 1 with W = 4: t = 7 -> 1 / sqrt((7 + 1 - 4) / 1) = 1/2; m(W) = 1 whatever s
    assert m("inverse_sqrt", 7, num_warmup_steps=4, timescale=1) == approx(0.5)
    assert m("inverse_sqrt", 4, num_warmup_steps=4, timescale=1) == approx(1.0)


MIN_LR_RATE = dict(num_warmup_steps=W, num_training_steps=T, min_lr_rate=0.2)


@pytest.mark.parametrize("step, expected", [
    (0, 0.0),                            # warmup 0 / 4
    (2, 0.5),                            # warmup 2 / 4 (not rescaled)
    (4, 1.0),                            # p = 0: 0.2 + 0.8 * 1
    (6, 0.2 + 0.8 * (1 + SQRT2_2) / 2),  # p = 1/4
    (8, 0.6),                            # p = 1/2: 0.2 + 0.8 * 1/2
    (12, 0.2),                           # p = 1: 0.2 + 0.8 * 0
    (16, 0.6),                           # p = 3/2: continues beyond T, rises again
])
def test_cosine_with_min_lr_rate(step, expected):
    assert m("cosine_with_min_lr", step, **MIN_LR_RATE) == approx(expected)


def test_cosine_with_min_lr_absolute_divides_by_lr_init():
    # min_lr = 0.02 with lr_init = 0.1 is the rate 0.2: the same values as above
    kw = dict(num_warmup_steps=W, num_training_steps=T, min_lr=0.02, lr_init=0.1)
    assert m("cosine_with_min_lr", 8, **kw) == approx(0.6)
    assert m("cosine_with_min_lr", 12, **kw) == approx(0.2)


@pytest.mark.parametrize("name", ["cosine_with_min_lr", "cosine_warmup_with_min_lr"])
@pytest.mark.parametrize("step", [0, 2, 8, 12])  # refused at every step, warmup included
def test_min_lr_schedules_need_exactly_one_of_min_lr_and_min_lr_rate(name, step):
    with pytest.raises(ReferenceInputError):
        m(name, step, num_warmup_steps=W, num_training_steps=T)
    with pytest.raises(ReferenceInputError):
        m(name, step, num_warmup_steps=W, num_training_steps=T, min_lr=0.01, min_lr_rate=0.1)


@pytest.mark.parametrize("step, expected", [
    (0, 0.25),                                           # one step ahead: (0 + 1) / 4
    (2, 0.75),                                           # (2 + 1) / 4
    (3, 1.0),                                            # (3 + 1) / 4: the top is reached one step early
    (4, 0.2 + 0.8 * (1 + math.cos(math.pi / 8)) / 2),    # p = (4 - 4 + 1) / 8 = 1/8: cos(2 pi 0.5 / 8)
    (7, 0.6),                                            # p = 4/8
    (11, 0.2),                                           # p = 8/8: the floor is reached one step early
    (12, 0.2 + 0.8 * (1 + math.cos(9 * math.pi / 8)) / 2),  # p = 9/8: continues
])
def test_cosine_warmup_with_min_lr(step, expected):
    assert m("cosine_warmup_with_min_lr", step, **MIN_LR_RATE) == approx(expected)


@pytest.mark.parametrize("step, expected", [
    (0, 0.1),    # w + (1 - w) * 0 / max(1, 4 - 1)
    (1, 0.4),    # 0.1 + 0.9 * 1/3
    (3, 1.0),    # 0.1 + 0.9 * 3/3
])
def test_cosine_warmup_with_min_lr_and_warmup_lr_rate(step, expected):
    assert m("cosine_warmup_with_min_lr", step, warmup_lr_rate=0.1, **MIN_LR_RATE) == approx(expected)


def test_cosine_warmup_with_min_lr_absolute_min_lr_and_no_warmup():
    # W = 0, min_lr 0.05 / lr_init 0.25 = rate 0.2; t = 0 already has p = 1/12 -> (1 + cos(pi/12)) / 2 rescaled
    kw = dict(num_warmup_steps=0, num_training_steps=T, min_lr=0.05, lr_init=0.25)
    assert m("cosine_warmup_with_min_lr", 0, **kw) == approx(0.2 + 0.8 * (1 + math.cos(math.pi / 12)) / 2)
    assert m("cosine_warmup_with_min_lr", 5, **kw) == approx(0.6)  # p = 6/12


WSD = dict(num_warmup_steps=4, num_decay_steps=4, num_training_steps=12, min_lr_ratio=0.2)  # stable S = 12-4-4 = 4


@pytest.mark.parametrize("step, expected", [
    (0, 0.2),       # linear warmup p = 0, rescaled: 0.2 + 0.8 * 0
    (2, 0.6),       # p = 1/2: 0.2 + 0.8 * 1/2
    (4, 1.0),       # stable from W = 4 ...
    (7, 1.0),       # ... to W + S - 1 = 7
    (8, 1.0),       # decay p = 0: cosine (1 + cos 0) / 2 = 1
    (9, 0.2 + 0.8 * (1 + SQRT2_2) / 2),  # p = 1/4: (1 + cos(pi/4)) / 2
    (10, 0.6),      # p = 1/2: (1 + cos(pi/2)) / 2 = 1/2 -> 0.2 + 0.4
    (12, 0.2),      # after W + S + D: r
    (40, 0.2),
])
def test_warmup_stable_decay_default_shapes(step, expected):
    assert m("warmup_stable_decay", step, **WSD) == approx(expected)


@pytest.mark.parametrize("warmup_type, step, expected", [
    ("cosine", 1, (1 - SQRT2_2) / 2),   # p = 1/4: (1 - cos(pi/4)) / 2, r = 0
    ("cosine", 2, 0.5),                 # (1 - cos(pi/2)) / 2
    ("1-sqrt", 3, 0.5),                 # p = 3/4: 1 - sqrt(1/4)
    ("linear", 3, 0.75),
])
def test_warmup_stable_decay_warmup_shapes(warmup_type, step, expected):
    kw = dict(WSD, min_lr_ratio=0.0, warmup_type=warmup_type)
    assert m("warmup_stable_decay", step, **kw) == approx(expected)


@pytest.mark.parametrize("decay_type, step, expected", [
    ("linear", 9, 0.75),    # p = 1/4: 1 - 1/4
    ("linear", 11, 0.25),   # p = 3/4
    ("1-sqrt", 9, 0.5),     # p = 1/4: 1 - sqrt(1/4)
    ("1-sqrt", 8, 1.0),     # p = 0
    ("cosine", 11, (1 - SQRT2_2) / 2),  # p = 3/4: (1 + cos(3 pi/4)) / 2
])
def test_warmup_stable_decay_decay_shapes(decay_type, step, expected):
    kw = dict(WSD, min_lr_ratio=0.0, decay_type=decay_type)
    assert m("warmup_stable_decay", step, **kw) == approx(expected)


def test_warmup_stable_decay_with_stable_steps_instead_of_training_steps():
    # W = 4, S = 2, D = 4: stable at 4, 5; decay 6..9 (p = 1/2 at 8); r from 10 on
    kw = dict(num_warmup_steps=4, num_stable_steps=2, num_decay_steps=4, decay_type="linear", min_lr_ratio=0.2)
    assert m("warmup_stable_decay", 5, **kw) == 1.0
    assert m("warmup_stable_decay", 6, **kw) == approx(1.0)     # p = 0
    assert m("warmup_stable_decay", 8, **kw) == approx(0.6)     # 0.2 + 0.8 * (1 - 1/2)
    assert m("warmup_stable_decay", 10, **kw) == approx(0.2)


def test_warmup_stable_decay_stable_steps_win_over_training_steps():
    # with both, S = 2 is used, not T - W - D = 100 - 8 = 92
    kw = dict(num_warmup_steps=4, num_stable_steps=2, num_decay_steps=4, num_training_steps=100,
              decay_type="linear", min_lr_ratio=0.0)
    assert m("warmup_stable_decay", 8, **kw) == approx(0.5)
    assert m("warmup_stable_decay", 10, **kw) == 0.0
    assert m("warmup_stable_decay", 50, **kw) == 0.0


# --- invariants over all closed forms ----------------------------------------------------------------------------

ALL_PARAMS = {
    "constant": {},
    "constant_with_warmup": dict(num_warmup_steps=W),
    "linear": dict(num_warmup_steps=W, num_training_steps=T),
    "cosine": dict(num_warmup_steps=W, num_training_steps=T),
    "cosine_with_restarts": dict(num_warmup_steps=W, num_training_steps=T, num_cycles=3),
    "polynomial": dict(num_warmup_steps=W, num_training_steps=T, lr_end=1e-4, power=1.5),
    "inverse_sqrt": dict(num_warmup_steps=W),
    "cosine_with_min_lr": dict(num_warmup_steps=W, num_training_steps=T, min_lr_rate=0.1),
    "cosine_warmup_with_min_lr": dict(num_warmup_steps=W, num_training_steps=T, min_lr_rate=0.1),
    "warmup_stable_decay": dict(num_warmup_steps=W, num_decay_steps=4, num_training_steps=T),
}


@pytest.mark.parametrize("name", sorted(ALL_PARAMS))
def test_multipliers_are_between_zero_and_one(name):
    for t in range(0, 3 * T):
        assert 0.0 <= m(name, t, lr_init=1e-3, **ALL_PARAMS[name]) <= 1.0 + 1e-15, t


@pytest.mark.parametrize("name", [n for n in sorted(ALL_PARAMS) if n not in ("constant", "cosine_warmup_with_min_lr")])
def test_warmup_ramps_linearly_from_zero(name):
    # every schedule with a plain warmup gives t / W during it (wsd with r = 0 and linear warmup too)
    for t in range(W):
        assert m(name, t, lr_init=1e-3, **ALL_PARAMS[name]) == approx(t / W)


# --- validate and curve ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params, lr_init", [
    ("polynomial", dict(num_warmup_steps=0, num_training_steps=5, lr_end=1e-3), 1e-3),  # lr_end == lr_init
    ("polynomial", dict(num_warmup_steps=0, num_training_steps=5, lr_end=2e-3), 1e-3),  # lr_end > lr_init
    ("polynomial", dict(num_warmup_steps=0, num_training_steps=5), 1e-7),  # default lr_end 1e-7 == lr_init
    ("cosine_with_min_lr", dict(num_warmup_steps=0, num_training_steps=5), 1e-3),
    ("cosine_with_min_lr", dict(num_warmup_steps=0, num_training_steps=5, min_lr=1e-5, min_lr_rate=0.1), 1e-3),
    ("cosine_warmup_with_min_lr", dict(num_warmup_steps=0, num_training_steps=5), 1e-3),
    ("cosine_warmup_with_min_lr", dict(num_warmup_steps=0, num_training_steps=5, min_lr=0.0, min_lr_rate=0.0), 1e-3),
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2), 1e-3),  # neither T nor S
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2, num_training_steps=5, warmup_type="exp"), 1e-3),
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2, num_stable_steps=2, decay_type="step"), 1e-3),
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2, num_training_steps=5, decay_type=None), 1e-3),
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2, num_training_steps=5, warmup_type="1_sqrt"),
     1e-3),
])
def test_validate_refuses(name, params, lr_init):
    with pytest.raises(ReferenceInputError):
        S.validate(name, params, lr_init)
    with pytest.raises(ReferenceInputError):
        S.curve(name, params, [lr_init], lr_init, 3)  # curve validates before computing anything


@pytest.mark.parametrize("name, params, lr_init", [
    ("polynomial", dict(num_warmup_steps=0, num_training_steps=5, lr_end=0.999e-3), 1e-3),
    ("polynomial", dict(num_warmup_steps=0, num_training_steps=5), 1e-3),
    ("cosine_with_min_lr", dict(num_warmup_steps=0, num_training_steps=5, min_lr=0.0), 1e-3),
    ("cosine_warmup_with_min_lr", dict(num_warmup_steps=0, num_training_steps=5, min_lr_rate=0.0), 1e-3),
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2, num_stable_steps=0), 1e-3),
    ("warmup_stable_decay", dict(num_warmup_steps=1, num_decay_steps=2, num_training_steps=5,
                                 warmup_type="1-sqrt", decay_type="1-sqrt"), 1e-3),
    ("linear", dict(num_warmup_steps=0, num_training_steps=5, lr_end=1.0), 1e-3),  # lr_end only matters to polynomial
    ("constant", {}, 0.0),
])
def test_validate_accepts(name, params, lr_init):
    assert S.validate(name, params, lr_init) is None


def test_curve_linear_with_two_groups():
    # W = 2, T = 4: multipliers 0, 1/2, 1, 1/2, 0, 0 for t = 0..5; each group scales its own base
    rows = S.curve("linear", dict(num_warmup_steps=2, num_training_steps=4), [1e-3, 2e-3], 1e-3, 5)
    assert_rows(rows, [[0.0, 0.0], [0.5e-3, 1e-3], [1e-3, 2e-3], [0.5e-3, 1e-3], [0.0, 0.0], [0.0, 0.0]])


def test_curve_polynomial_divides_absolute_lr_end_by_lr_init():
    # lr_init 1e-3, lr_end 1e-4, W = 0, T = 2, power 1:
    #   t = 0: (0.9e-3 * 1 + 1e-4) / 1e-3 = 1;  t = 1: (0.9e-3 / 2 + 1e-4) / 1e-3 = 0.55;  t >= 2: 1e-4 / 1e-3 = 0.1
    # the group whose base is lr_init ends exactly at lr_end; a group with base 1e-2 ends at 1e-3, not lr_end
    params = dict(num_warmup_steps=0, num_training_steps=2, lr_end=1e-4)
    rows = S.curve("polynomial", params, [1e-3, 1e-2], 1e-3, 3)
    assert_rows(rows, [[1e-3, 1e-2], [0.55e-3, 0.55e-2], [1e-4, 1e-3], [1e-4, 1e-3]])


def test_curve_polynomial_with_lr_init_different_from_the_base():
    # lr_init 2e-3 (the optimizer default), a single group at base 1e-3, lr_end 1e-4, W = 0, T = 2:
    #   t = 0: 1e-3 * (1.9e-3 + 1e-4) / 2e-3 = 1e-3;  t = 1: 1e-3 * (0.95e-3 + 1e-4) / 2e-3 = 5.25e-4
    #   t = 2: 1e-3 * 1e-4 / 2e-3 = 5e-5, half of lr_end
    rows = S.curve("polynomial", dict(num_warmup_steps=0, num_training_steps=2, lr_end=1e-4), [1e-3], 2e-3, 2)
    assert_rows(rows, [[1e-3], [5.25e-4], [5e-5]])


def test_curve_cosine_with_min_lr_absolute_with_two_groups():
    # min_lr 1e-4 / lr_init 1e-3 = rate 0.1; W = 0, T = 2: t = 0 -> 1, t = 1 -> 0.1 + 0.9 / 2 = 0.55, t = 2 -> 0.1
    params = dict(num_warmup_steps=0, num_training_steps=2, min_lr=1e-4)
    rows = S.curve("cosine_with_min_lr", params, [1e-3, 4e-3], 1e-3, 2)
    assert_rows(rows, [[1e-3, 4e-3], [0.55e-3, 2.2e-3], [1e-4, 4e-4]])


def test_curve_has_steps_plus_one_rows_and_starts_at_the_base_without_warmup():
    rows = S.curve("constant", {}, [0.1, 0.2, 0.3], 0.1, 7)
    assert len(rows) == 8
    assert all(row == [0.1, 0.2, 0.3] for row in rows)


def test_curve_polynomial_with_warmup_equal_to_training_steps_fails_only_when_step_t_is_reached():
    params = dict(num_warmup_steps=3, num_training_steps=3, lr_end=1e-4)
    assert_rows(S.curve("polynomial", params, [1e-3], 1e-3, 2), [[0.0], [1e-3 / 3], [2e-3 / 3]])
    with pytest.raises(ReferenceInputError):
        S.curve("polynomial", params, [1e-3], 1e-3, 3)


# --- reduce on plateau -------------------------------------------------------------------------------------------


def test_plateau_patience():
    # factor 1/2, patience 2, threshold 0:
    # 10 best | 9 best | 9 bad 1 | 9 bad 2 | 9 bad 3 > 2 -> 0.5, bad 0 | 8 best | 8 bad 1 | 8 bad 2 | 8 bad 3 -> 0.25
    out = S.reduce_on_plateau([10, 9, 9, 9, 9, 8, 8, 8, 8], [1.0], factor=0.5, patience=2, threshold=0.0)
    assert_rows(out, [[1.0]] * 4 + [[0.5]] * 4 + [[0.25]])


def test_plateau_cooldown_ignores_bad_epochs():
    # patience 0, cooldown 2, all metrics 5:
    # t1 best | t2 bad 1 > 0 -> 0.5, cooldown 2 | t3 cooldown 2 -> 1, bad cleared | t4 cooldown 1 -> 0, cleared
    # | t5 bad 1 -> 0.25, cooldown 2 | t6 in cooldown
    out = S.reduce_on_plateau([5] * 6, [1.0], factor=0.5, patience=0, threshold=0.0, cooldown=2)
    assert_rows(out, [[1.0], [0.5], [0.5], [0.5], [0.25], [0.25]])
    # without cooldown every equal metric is a bad epoch beyond patience 0
    out = S.reduce_on_plateau([5] * 4, [1.0], factor=0.5, patience=0, threshold=0.0)
    assert_rows(out, [[1.0], [0.5], [0.25], [0.125]])


def test_plateau_relative_and_absolute_threshold():
    metrics = [100, 95, 89]
    # rel 0.1: 95 < 100 * 0.9 = 90? no -> bad -> 0.5;  89 < 90 -> improves
    rel = S.reduce_on_plateau(metrics, [1.0], factor=0.5, patience=0, threshold=0.1, threshold_mode="rel")
    assert_rows(rel, [[1.0], [0.5], [0.5]])
    # abs 0.1: 95 < 100 - 0.1 -> improves; 89 < 95 - 0.1 -> improves
    absolute = S.reduce_on_plateau(metrics, [1.0], factor=0.5, patience=0, threshold=0.1, threshold_mode="abs")
    assert_rows(absolute, [[1.0], [1.0], [1.0]])
    # abs 6: 95 < 94? no -> 0.5; 89 < 94 (best still 100) -> improves
    absolute6 = S.reduce_on_plateau(metrics, [1.0], factor=0.5, patience=0, threshold=6.0, threshold_mode="abs")
    assert_rows(absolute6, [[1.0], [0.5], [0.5]])


def test_plateau_default_threshold_is_relative_1e_4():
    # 1 -> 0.99995: needs < 1 * (1 - 1e-4) = 0.9999 -> bad; 0.9998 < 0.9999 -> improves
    out = S.reduce_on_plateau([1.0, 0.99995, 0.9998], [1.0], factor=0.5, patience=0)
    assert_rows(out, [[1.0], [0.5], [0.5]])


def test_plateau_mode_max():
    metrics = [1, 2, 2, 3]
    # max: 1 best | 2 > 1 best | 2 > 2? no -> 0.5 | 3 best
    assert_rows(S.reduce_on_plateau(metrics, [1.0], mode="max", factor=0.5, patience=0, threshold=0.0),
                [[1.0], [1.0], [0.5], [0.5]])
    # the same metrics under min: 1 best, then every one is bad
    assert_rows(S.reduce_on_plateau(metrics, [1.0], mode="min", factor=0.5, patience=0, threshold=0.0),
                [[1.0], [0.5], [0.25], [0.125]])
    # max with rel 0.5: 2 > 1 * 1.5 best | 2 bad -> 0.5 | 3 > 2 * 1.5? no -> 0.25
    assert_rows(S.reduce_on_plateau(metrics, [1.0], mode="max", factor=0.5, patience=0, threshold=0.5),
                [[1.0], [1.0], [0.5], [0.25]])


def test_plateau_min_lr_floor_per_group():
    # factor 1/2, patience 0, groups at 1 and 0.1, min_lr 0.3 for both:
    # group 0: 1 -> 0.5 -> max(0.25, 0.3) = 0.3 -> stays (0.3 - 0.3 = 0 is not > eps)
    # group 1: max(0.05, 0.3) = 0.3 would raise it: 0.1 - 0.3 < 0, not kept, stays 0.1
    out = S.reduce_on_plateau([1, 1, 1, 1], [1.0, 0.1], factor=0.5, patience=0, threshold=0.0, min_lr=0.3)
    assert_rows(out, [[1.0, 0.1], [0.5, 0.1], [0.3, 0.1], [0.3, 0.1]])
    # a list gives each group its own floor: group 1 floor 0.01: 0.1 -> 0.05 -> 0.025 -> 0.0125
    out = S.reduce_on_plateau([1, 1, 1, 1], [1.0, 0.1], factor=0.5, patience=0, threshold=0.0, min_lr=[0.3, 0.01])
    assert_rows(out, [[1.0, 0.1], [0.5, 0.05], [0.3, 0.025], [0.3, 0.0125]])


def test_plateau_eps_skips_tiny_reductions():
    # 1e-8 -> 5e-9 drops by 5e-9, not more than eps 1e-8: kept at 1e-8; with eps 1e-9 it is kept
    out = S.reduce_on_plateau([1, 1], [1e-8], factor=0.5, patience=0, threshold=0.0)
    assert_rows(out, [[1e-8], [1e-8]])
    out = S.reduce_on_plateau([1, 1], [1e-8], factor=0.5, patience=0, threshold=0.0, eps=1e-9)
    assert_rows(out, [[1e-8], [5e-9]])


def test_plateau_returns_one_row_per_metric_and_copies():
    out = S.reduce_on_plateau([3, 2, 1], [0.1, 0.2])
    assert out == [[0.1, 0.2]] * 3
    out[0][0] = 99.0
    assert out[1][0] == 0.1
    assert S.reduce_on_plateau([], [0.1]) == []


@pytest.mark.parametrize("simulate", [S.reduce_on_plateau, S.greedy])
@pytest.mark.parametrize("kwargs", [dict(factor=1.0), dict(factor=2.0), dict(mode="mean"), dict(threshold_mode="pct")])
def test_stateful_refusals(simulate, kwargs):
    with pytest.raises(ReferenceInputError):
        simulate([1.0, 2.0], [0.1], **kwargs)


# --- greedy ------------------------------------------------------------------------------------------------------

GREEDY = dict(factor=0.5, patience=1, threshold=0.0, min_lr=0.1, max_lr=1.0)


def test_greedy_increases_after_patience_plus_one_improvements():
    # 10 good 1 | 9 good 2 > 1 -> 0.25 / 0.5 = 0.5, good 0 | 8 good 1 | 7 good 2 -> 1.0 | 6 good 1 | 5 good 2 ->
    # min(2, max_lr 1) = 1: no rise, stays
    out = S.greedy([10, 9, 8, 7, 6, 5], [0.25], **GREEDY)
    assert_rows(out, [[0.25], [0.5], [0.5], [1.0], [1.0], [1.0]])


def test_greedy_decreases_after_patience_plus_one_bad_epochs_down_to_min_lr():
    # 10 good 1 | 10 bad 1 | 10 bad 2 > 1 -> 0.125 | bad 1 | bad 2 -> max(0.0625, 0.1) = 0.1 | bad 1 | bad 2 -> stays
    out = S.greedy([10] * 7, [0.25], **GREEDY)
    assert_rows(out, [[0.25], [0.25], [0.125], [0.125], [0.1], [0.1], [0.1]])


def test_greedy_mode_max_and_relative_threshold():
    # max: 1, 2 improve -> good 2 > 1 -> 0.5
    assert_rows(S.greedy([1, 2], [0.25], mode="max", **GREEDY), [[0.25], [0.5]])
    # rel 0.1, min: 10 good 1 | 9.5 < 9? no, bad 1 | 9.5 bad 2 -> 0.125
    kw = dict(GREEDY, threshold=0.1, threshold_mode="rel")
    assert_rows(S.greedy([10, 9.5, 9.5], [0.25], **kw), [[0.25], [0.25], [0.125]])


def test_greedy_warmup_after_an_increase_counts_nothing():
    # patience 0, warmup 2: 10 good -> 0.5, warmup 2 | 9 skipped (warmup 1) | 8 skipped (warmup 0, best still 10)
    # | 7 < 10 good -> 1.0, warmup 2 | 6 skipped
    out = S.greedy([10, 9, 8, 7, 6], [0.25], **dict(GREEDY, patience=0, warmup=2))
    assert_rows(out, [[0.5], [0.5], [0.5], [1.0], [1.0]])


def test_greedy_cooldown_after_a_decrease_counts_nothing():
    # patience 0, cooldown 1, max_lr 0.25 (no rise possible): 10 good -> stays 0.25 | 10 bad -> 0.125, cooldown 1
    # | skipped | bad -> max(0.0625, 0.1) = 0.1, cooldown 1 | skipped | bad -> stays 0.1
    kw = dict(GREEDY, patience=0, cooldown=1, max_lr=0.25)
    out = S.greedy([10] * 6, [0.25], **kw)
    assert_rows(out, [[0.25], [0.125], [0.125], [0.1], [0.1], [0.1]])


def test_greedy_resets_after_reset_start_reductions_at_the_floor():
    # patience 1, reset_start 2: 10 good 1 | bad 1 | bad 2 -> 0.125 | bad 1 | bad 2 -> 0.1, at the floor: 2 -> 1
    # | bad 1 | bad 2 -> 0.1, at the floor: 1 -> 0: back to 0.25 and a fresh state | 10 < inf good 1 | 10 bad 1
    out = S.greedy([10] * 9, [0.25], **dict(GREEDY, reset_start=2))
    assert_rows(out, [[0.25], [0.25], [0.125], [0.125], [0.1], [0.1], [0.25], [0.25], [0.25]])


def test_greedy_increase_rearms_the_reset_counter():
    # patience 0, reset_start 2:
    # 10 good -> 0.5 | 10 bad -> 0.25 | bad -> 0.125 | bad -> 0.1 at floor (2 -> 1) | 9 good -> 0.2, re-armed to 2
    # | 9 bad -> 0.1 at floor (2 -> 1) | bad at floor (1 -> 0): reset to 0.25 | 9 < inf good -> 0.5
    out = S.greedy([10, 10, 10, 10, 9, 9, 9, 9], [0.25], **dict(GREEDY, patience=0, reset_start=2))
    assert_rows(out, [[0.5], [0.25], [0.125], [0.1], [0.2], [0.1], [0.25], [0.5]])


def test_greedy_reset_needs_every_group_at_its_floor():
    # groups 0.25 (floor 0.1) and 1.0 (floor 0.01), patience 0, reset_start 1, max 1:
    # 10 good -> [0.5, 1.0] | bad -> [0.25, 0.5] | bad -> [0.125, 0.25] | bad -> [0.1, 0.125]: group 1 above its floor,
    # no reset
    kw = dict(GREEDY, patience=0, reset_start=1, min_lr=[0.1, 0.01], max_lr=[1.0, 1.0])
    out = S.greedy([10, 10, 10, 10], [0.25, 1.0], **kw)
    assert_rows(out, [[0.5, 1.0], [0.25, 0.5], [0.125, 0.25], [0.1, 0.125]])


def test_greedy_per_group_limits_must_match_the_groups():
    with pytest.raises(ReferenceInputError):
        S.greedy([1.0], [0.1, 0.2], min_lr=[0.01])
    with pytest.raises(ReferenceInputError):
        S.greedy([1.0], [0.1, 0.2], max_lr=[1.0, 1.0, 1.0])


def test_greedy_smoothing_window():
    raw = [10, 2, 8, 4]
    # window 2: smoothed 10, 6, 5, 6: good 1 | good 2 -> 0.5 | 5 < 6 good 1 | 6 bad 1
    assert_rows(S.greedy(raw, [0.25], smooth=True, window_size=2, **GREEDY), [[0.25], [0.5], [0.5], [0.5]])
    # unsmoothed: good 1 | good 2 -> 0.5 | 8 bad 1 | 4 bad 2 -> 0.25
    assert_rows(S.greedy(raw, [0.25], **GREEDY), [[0.25], [0.5], [0.5], [0.25]])
    # window 1 is the raw metric
    assert S.greedy(raw, [0.25], smooth=True, window_size=1, **GREEDY) == S.greedy(raw, [0.25], **GREEDY)


def test_greedy_smoothing_is_a_running_mean():
    # window 50 over 4 values: 10, 6, 6.67, 6 (24/4): good 1 | good 2 -> 0.5 | bad 1 | 6 < 6? no: bad 2 -> 0.25
    raw = [10, 2, 8, 4]
    assert_rows(S.greedy(raw, [0.25], smooth=True, **GREEDY), [[0.25], [0.5], [0.5], [0.25]])
    # window 3: 10, 6, 20/3, 14/3: good 1 | good 2 -> 0.5 | bad 1 | 14/3 < 6 good 1
    assert_rows(S.greedy(raw, [0.25], smooth=True, window_size=3, **GREEDY), [[0.25], [0.5], [0.5], [0.5]])


def test_greedy_eps_skips_tiny_changes():
    # 1e-8 * 2 = 2e-8 rises by 1e-8, not more than eps 1e-8
    kw = dict(factor=0.5, patience=0, threshold=0.0, min_lr=0.0, max_lr=1.0)
    assert_rows(S.greedy([1], [1e-8], **kw), [[1e-8]])
    assert_rows(S.greedy([1], [1e-8], eps=1e-9, **kw), [[2e-8]])
