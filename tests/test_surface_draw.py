"""The surface checks' drawing (conformance.checks.surface_draw): every head of a check is drawn, the sub-cases of
a batch share head, config and weight seed, 4D masks have their kind's dtype and shape, a batch reads back."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.checks.surface_cases import SurfaceCase
from conformance.checks.surface_draw import (FLAT_MASK_HEADS, MASK_4D_KINDS, SUBCASES, SURFACE_HEADS, SurfaceBatch,
                                             mask_4d_of, surface_batches)
from reference.activations import ACTIVATIONS

ACTS = sorted(ACTIVATIONS)


def no_narrowing(head):
    return {}


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_batches_share_head_config_and_seed_and_draw_4d_masks(data):
    batch = data.draw(surface_batches(FLAT_MASK_HEADS, ACTS, {"mask": "any"}, no_narrowing, mask_4d=True))
    first = batch.cases[0]
    assert len(batch.cases) == SUBCASES
    for case in batch.cases:
        assert isinstance(case, SurfaceCase)
        assert (case.head, case.config, case.weights_seed) == (first.head, first.config, first.weights_seed)
        ids = case.inputs["input_ids"]
        assert ids.max() < case.config["vocab_size"]
        mask = case.inputs["attention_mask"]
        assert mask.ndim == 4 and mask.shape[1] in (1, case.config["num_attention_heads"])
        assert mask.shape[::2] == ids.shape and mask.shape[3] == ids.shape[1]
    assert first.config["is_decoder"] == (first.head == "BertLMHeadModel")
    if first.head == "BertForQuestionAnswering":
        assert first.config["num_labels"] == 2
    assert SurfaceBatch.from_json(batch.to_json()).to_json() == batch.to_json()


def test_every_head_is_drawn():
    seen = set()

    @settings(max_examples=400, deadline=None, database=None, derandomize=True)
    @given(st.data())
    def draw(data):
        seen.add(data.draw(surface_batches(SURFACE_HEADS, ACTS, {}, no_narrowing)).head)
    draw()
    assert seen == set(SURFACE_HEADS)


def test_mask_4d_kinds():
    raw = np.arange(2 * 3 * 4 * 4, dtype=np.int64)
    dtypes = {"int": np.int64, "bool": np.bool_, "float_keep": np.float64, "additive": np.float64}
    for kind in MASK_4D_KINDS:
        mask = mask_4d_of(kind, 3, raw, 2, 4)
        assert mask.shape == (2, 3, 4, 4) and mask.dtype == dtypes[kind]
        if kind != "additive":
            assert np.isin(mask, (0, 1)).all()


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.large_base_example])
@given(st.data())
def test_multiple_choice_draws_every_feature_as_its_flattened_rows(data):
    """Multiple choice's surface inputs are [batch, choices, length] (inputs_embeds [.., hidden]), its mask any
    pattern per flattened row, and the reference flattens them as the head does."""
    features = {"mask": "any", "inputs_embeds": True, "head_mask": True, "hidden_states": True, "attentions": True}
    batch = data.draw(surface_batches(("BertForMultipleChoice",), ACTS, features, no_narrowing))
    for case in batch.cases:
        embeds, mask = case.inputs["inputs_embeds"], case.inputs["attention_mask"]
        assert embeds.ndim == 4 and mask.shape == embeds.shape[:3] and "input_ids" not in case.inputs
        assert embeds.shape[-1] == case.config["hidden_size"]
