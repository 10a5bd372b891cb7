"""Every refusal of the reference states the refusal it expects of an implementation, and transformers (the
installed release) makes exactly that one: get_scheduler's, the stateful schedules', warmup_stable_decay's and the
regression and multi-label label checks'."""

import numpy as np
import pytest
import torch

from conformance.adapters.transformers import TransformersAdapter
from conformance.check import expected_refusal
from conformance.get_scheduler import get_scheduler_arguments
from reference import ReferenceInputError
from reference import losses, schedules

pytestmark = pytest.mark.harness

ADAPTER = TransformersAdapter()


def _refusal(call):
    with pytest.raises(ReferenceInputError) as info:
        call()
    assert info.value.expected is not None, f"no refusal stated for: {info.value}"
    return expected_refusal(info.value, ADAPTER)


def _raised(call):
    try:
        call()
    except Exception as exc:  # what the implementation raises
        return exc
    raise AssertionError("the implementation accepted it")


def _optimizer(groups=1):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)], lr=0.1)


def _get_scheduler(name, **kwargs):
    from transformers.optimization import get_scheduler
    return get_scheduler(name, _optimizer(), **kwargs)


@pytest.mark.parametrize("name, params", [
    ("linear", {"num_training_steps": 5}),
    ("linear", {"num_warmup_steps": 1}),
    ("cosine", {"num_warmup_steps": 1}),
    ("constant_with_warmup", {}),
])
def test_get_scheduler_refusals_are_stated_and_made(name, params):
    want = _refusal(lambda: get_scheduler_arguments(name, params))
    assert want.matches(_raised(lambda: _get_scheduler(name, num_warmup_steps=params.get("num_warmup_steps"),
                                                         num_training_steps=params.get("num_training_steps"))))


def test_get_scheduler_before_its_wsd_branch_states_a_type_error():
    want = _refusal(lambda: get_scheduler_arguments(
        "warmup_stable_decay", {"num_warmup_steps": 1, "num_training_steps": 6, "num_stable_steps": 2,
                                "num_decay_steps": 3}, wsd_branch=False, wsd_training_steps=False))
    assert want.classes == ("TypeError",)

    def old_get_scheduler():  # what 4.41 does: the generic path passes num_training_steps on
        def get_wsd_schedule(optimizer, num_warmup_steps, num_stable_steps, num_decay_steps):
            return None
        return get_wsd_schedule(None, num_warmup_steps=1, num_training_steps=6)
    assert want.matches(_raised(old_get_scheduler))


@pytest.mark.parametrize("simulate", [schedules.reduce_on_plateau, schedules.greedy])
@pytest.mark.parametrize("params", [{"mode": "avg"}, {"threshold_mode": "x"}, {"min_lr": [0.0, 0.0]},
                                    {"factor": 1.0}])
def test_stateful_schedule_refusals_are_stated_and_made(simulate, params):
    want = _refusal(lambda: simulate([1.0], [0.1], **params))
    if simulate is schedules.reduce_on_plateau:
        cls = torch.optim.lr_scheduler.ReduceLROnPlateau
    else:
        cls = getattr(__import__("transformers.optimization", fromlist=["x"]), "GreedyLR", None)
        if cls is None:
            pytest.skip("this release has no GreedyLR")
    assert want.matches(_raised(lambda: cls(_optimizer(), **params)))


def test_warmup_stable_decay_needs_steps_is_stated_and_made_per_release():
    get_wsd_schedule = getattr(__import__("transformers.optimization", fromlist=["x"]), "get_wsd_schedule", None)
    if get_wsd_schedule is None:
        pytest.skip("this release has no warmup_stable_decay")
    want = _refusal(lambda: schedules.curve("warmup_stable_decay", {"num_warmup_steps": 1, "num_decay_steps": 1},
                                            [0.1], 0.1, 3))
    assert want.matches(_raised(lambda: get_wsd_schedule(_optimizer(), num_warmup_steps=1, num_decay_steps=1)))


@pytest.mark.parametrize("loss, torch_loss, logits, labels", [
    (losses.mse, torch.nn.functional.mse_loss, np.zeros((3, 2)), np.zeros((3, 3))),
    (losses.bce_with_logits, torch.nn.functional.binary_cross_entropy_with_logits, np.zeros((3, 2)), np.zeros((3, 3))),
    (losses.bce_with_logits, torch.nn.functional.binary_cross_entropy_with_logits, np.zeros((3, 2)),
     np.zeros((3, 2), dtype=np.int64)),
    (losses.bce_with_logits, torch.nn.functional.binary_cross_entropy_with_logits, np.zeros((3, 2)),
     np.zeros((3, 2), dtype=bool)),
])
def test_regression_and_multi_label_refusals_are_stated_and_made(loss, torch_loss, logits, labels):
    want = _refusal(lambda: loss(logits, labels))
    assert want.matches(_raised(lambda: torch_loss(torch.tensor(logits), torch.tensor(labels))))


@pytest.mark.parametrize("hyper", [{"lr": -1e-3}, {"eps": -1e-8}, {"betas": (1.0, 0.999)}, {"betas": (0.9, 1.5)},
                                   {"betas": (-0.1, 0.999)}])
@pytest.mark.parametrize("variant", ["torch", "transformers"])
def test_adamw_refusals_are_each_variants_own(variant, hyper):
    """torch.optim.AdamW and transformers.AdamW name a bad hyper-parameter in their own words; each variant's
    refusal matches its own optimizer's exception and not the other's."""
    from reference import optim
    want = _refusal(lambda: optim.adamw([[1.0]], [[[0.1]]], variant=variant, **hyper))
    other = _refusal(lambda: optim.adamw([[1.0]], [[[0.1]]], variant=({"torch", "transformers"} - {variant}).pop(),
                                         **hyper))
    if variant == "transformers":
        cls = getattr(__import__("transformers"), "AdamW", None)
        if cls is None:
            pytest.skip("this release has no transformers.AdamW")
    else:
        cls = torch.optim.AdamW
    exc = _raised(lambda: cls([torch.nn.Parameter(torch.zeros(1))], **hyper))
    assert want.matches(exc) and not other.matches(exc)


def test_transformers_adamw_takes_a_negative_weight_decay():
    from reference import optim
    assert optim.adamw([[1.0]], [[[0.1]]], variant="transformers", weight_decay=-0.1)
    with pytest.raises(ReferenceInputError):
        optim.adamw([[1.0]], [[[0.1]]], variant="torch", weight_decay=-0.1)



@pytest.mark.parametrize("ignore", [-100, -1])
def test_out_of_range_labels_never_draw_the_ports_ignored_label(ignore):
    """transformers ignores -100: the small negatives are -1..-99; a port that ignores -1 (pytorch-pretrained-bert's
    pre-training, masked LM and NSP heads) gets -2..-100, -100 being an ordinary out-of-range label there."""
    from hypothesis import find, given, settings
    from conformance.checks.errors import corrupted, near_negatives
    from conformance.strategies import cases
    assert near_negatives(ignore) == [n for n in range(-1, -101, -1) if n != ignore] and len(near_negatives(ignore)) == 99
    valid = find(cases("BertForMaskedLM", ["gelu"], labels="tokens", ignore_index=ignore), lambda case: True,
                 settings=settings(database=None, max_examples=1))
    drawn = set()

    @settings(max_examples=100, database=None, deadline=None)
    @given(case=corrupted(__import__("hypothesis").strategies.just(valid.copy()), "out_of_range", ignore))
    def one_bad_label(case):
        changed = case.labels["labels"] != valid.labels["labels"]
        assert changed.sum() <= 1
        drawn.update(int(v) for v in case.labels["labels"][changed])

    one_bad_label()
    assert ignore not in drawn and any(-100 <= v < 0 for v in drawn), sorted(drawn)
