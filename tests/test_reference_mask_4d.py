"""The oracle's own tests for 4D attention masks (reference.attention.mask_4d through reference.encoder): a keep-mask
and an additive bias, per example or per head, against explicit loops over batch, head, query and key; the mask is
the whole mask (no causal mask added); refusals. Nothing comes from torch or transformers."""

import math

import numpy as np
import pytest

from helpers_reference import encoder_weights, tiny_spec
from reference import ReferenceInputError, attention, encoder

pytestmark = pytest.mark.reference
TIGHT = dict(rtol=1e-12, atol=1e-12)


def loop_probs(x, w, spec, prefix, allowed, bias):
    """Attention probabilities [B, H, L, L] of one layer by explicit loops: exp(s + bias) over the allowed keys."""
    batch, length, _ = x.shape
    d, heads = spec.head_size, spec.num_attention_heads
    p = prefix + "attention.self."
    q = x @ w[p + "query.weight"].T + w[p + "query.bias"]
    k = x @ w[p + "key.weight"].T + w[p + "key.bias"]
    probs = np.zeros((batch, heads, length, length))
    for b in range(batch):
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            hb = h if allowed.shape[1] > 1 else 0
            for i in range(length):
                s = [q[b, i, sl] @ k[b, j, sl] / math.sqrt(d) + bias[b, hb, i, j] for j in range(length)]
                keep = allowed[b, hb, i]
                e = [math.exp(s[j] - max(s[m] for m in range(length) if keep[m])) if keep[j] else 0.0
                     for j in range(length)]
                probs[b, h, i] = np.array(e) / sum(e)
    return probs


def first_layer_probs(mask, rule, is_decoder=False, fully_masked="refuse"):
    spec = tiny_spec(num_hidden_layers=1, is_decoder=is_decoder)
    w = encoder_weights(spec, np.random.default_rng(0), prefix="")
    ids = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    record = {}
    encoder.bert_model(w, spec, ids, mask, prefix="", mask_4d=rule, fully_masked=fully_masked, record=record)
    x = record["hidden_states"][0]
    return record["attentions"][0], x, w, spec


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("is_decoder", [False, True])
def test_keep_mask_equals_the_loop_formula_and_adds_no_causal_mask(heads, is_decoder):
    mask = np.random.default_rng(1).integers(0, 2, (2, heads, 4, 4))
    mask[..., 0] = 1
    probs, x, w, spec = first_layer_probs(mask, "keep", is_decoder)
    expected = loop_probs(x, w, spec, "encoder.layer.0.", mask.astype(bool), np.zeros(mask.shape))
    np.testing.assert_allclose(probs, expected, **TIGHT)
    assert (probs[np.broadcast_to(mask == 0, probs.shape)] == 0).all()


@pytest.mark.parametrize("dtype", [np.float64, np.int64, bool])
@pytest.mark.parametrize("heads", [1, 2])
def test_additive_mask_is_a_bias_on_the_scaled_scores(dtype, heads):
    rng = np.random.default_rng(2)
    values = rng.choice([0.0, -1.0, 0.5, 2.0, -10000.0], (2, heads, 4, 4)) if dtype is np.float64 \
        else rng.integers(0, 2, (2, heads, 4, 4))
    mask = values.astype(dtype)
    probs, x, w, spec = first_layer_probs(mask, "additive", is_decoder=True)
    expected = loop_probs(x, w, spec, "encoder.layer.0.", np.ones(mask.shape, dtype=bool), mask.astype(np.float64))
    np.testing.assert_allclose(probs, expected, rtol=1e-9, atol=1e-12)


def test_an_additive_mask_of_zeros_is_no_mask_and_a_row_constant_changes_nothing():
    zeros = np.zeros((2, 1, 4, 4))
    probs, *_ = first_layer_probs(zeros, "additive")
    plain, *_ = first_layer_probs(None, "refuse")
    np.testing.assert_allclose(probs, plain, **TIGHT)
    shifted, *_ = first_layer_probs(zeros + np.array([3.0, -7.0, 0.0, 1.5])[None, None, :, None], "additive")
    np.testing.assert_allclose(shifted, plain, rtol=1e-12, atol=1e-14)


def test_a_keep_mask_equals_the_3d_mask_it_broadcasts():
    spec = tiny_spec()
    w = encoder_weights(spec, np.random.default_rng(3), prefix="")
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    cube = np.array([[[1, 0, 0], [1, 1, 0], [0, 1, 1]], [[1, 1, 1], [0, 0, 1], [1, 0, 1]]])
    a = encoder.bert_model(w, spec, ids, cube, prefix="")[0]
    b = encoder.bert_model(w, spec, ids, cube[:, None], prefix="", mask_4d="keep")[0]
    np.testing.assert_allclose(a, b, **TIGHT)


def test_fully_masked_rows_of_a_keep_mask_follow_the_rule():
    mask = np.ones((2, 1, 4, 4), dtype=bool)
    mask[0, 0, 1] = False
    with pytest.raises(ReferenceInputError):
        first_layer_probs(mask, "keep")
    probs, *_ = first_layer_probs(mask, "keep", fully_masked="zero")
    assert (probs[0, :, 1] == 0).all()
    probs, *_ = first_layer_probs(mask, "keep", fully_masked="uniform")
    np.testing.assert_allclose(probs[0, :, 1], 0.25, **TIGHT)


def test_refusals():
    with pytest.raises(ReferenceInputError):
        first_layer_probs(np.ones((2, 1, 4, 4)), "refuse")
    with pytest.raises(ReferenceInputError):
        attention.mask_4d(np.ones((2, 3, 4, 4)), "keep", 2)  # neither 1 nor num_heads heads
    with pytest.raises(ReferenceInputError):
        attention.mask_4d(np.full((1, 1, 2, 2), 0.5), "keep", 2)
    with pytest.raises(ReferenceInputError):
        first_layer_probs(np.ones((2, 1, 3, 3)), "keep")  # not the input's length


def test_a_decoder_adds_its_causal_mask_to_a_3d_mask_only_with_causal_3d():
    spec = tiny_spec(is_decoder=True)
    cube = np.ones((1, 3, 3), dtype=np.int64)
    assert encoder.allowed_keys(cube, True).sum() == 6  # lower triangle
    assert encoder.allowed_keys(cube, True, causal_3d=False).all()
    w = encoder_weights(spec, np.random.default_rng(4), prefix="")
    ids = np.array([[1, 2, 3]])
    whole = encoder.bert_model(w, spec, ids, cube, prefix="", causal_3d=False)[0]
    bidirectional = encoder.bert_model(w, tiny_spec(is_decoder=False), ids, cube, prefix="")[0]
    np.testing.assert_allclose(whole, bidirectional, **TIGHT)
