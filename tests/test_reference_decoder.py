"""The oracle's own tests for reference.decoder: cross-attention against loops over positions and heads, the
incremental pass against the full one, the decoder without encoder states against reference.encoder's causal
BertModel, and the refusals. Nothing comes from torch or transformers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers_reference import _dense, _layer_norm, encoder_weights, tiny_spec
from reference import ReferenceInputError, decoder, encoder
from reference.activations import activation

pytestmark = pytest.mark.reference

SETTINGS = settings(max_examples=30, deadline=None)
TIGHT = dict(rtol=1e-12, atol=1e-12)


def decoder_weights(spec, seed=0):
    """Encoder weights plus each layer's crossattention block."""
    rng = np.random.default_rng(seed)
    w = encoder_weights(spec, rng)
    h = spec.hidden_size
    for n in range(spec.num_hidden_layers):
        layer = f"bert.encoder.layer.{n}.crossattention."
        for part in ("query", "key", "value"):
            _dense(w, rng, layer + "self." + part, h, h)
        _dense(w, rng, layer + "output.dense", h, h)
        _layer_norm(w, rng, layer + "output.LayerNorm", h)
    return w


def draw(seed, batch=2, length=5, enc_length=4, spec=None):
    spec = spec or tiny_spec(is_decoder=True, add_cross_attention=True)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, spec.vocab_size, (batch, length))
    mask = (rng.random((batch, length)) < 0.7).astype(np.int64)
    mask[:, 0] = 1
    enc = rng.normal(size=(batch, enc_length, spec.hidden_size))
    enc_mask = (rng.random((batch, enc_length)) < 0.6).astype(np.int64)
    enc_mask[:, -1] = 1
    return spec, decoder_weights(spec, seed), ids, mask, enc, enc_mask


def loop_attention(xq, xkv, w, spec, visible, prefix):
    """An attention block written with loops over batch, query and head (dense, residual and LayerNorm after)."""
    p, size = prefix + "self.", spec.head_size
    q = xq @ w[p + "query.weight"].T + w[p + "query.bias"]
    k = xkv @ w[p + "key.weight"].T + w[p + "key.bias"]
    v = xkv @ w[p + "value.weight"].T + w[p + "value.bias"]
    context = np.zeros_like(q)
    for b in range(xq.shape[0]):
        for i in range(xq.shape[1]):
            for h in range(spec.num_attention_heads):
                s = slice(h * size, (h + 1) * size)
                keys = [j for j in range(xkv.shape[1]) if visible(b, i, j)]
                scores = np.array([q[b, i, s] @ k[b, j, s] for j in keys]) / np.sqrt(size)
                e = np.exp(scores - scores.max())
                context[b, i, s] = sum(pj * v[b, j, s] for pj, j in zip(e / e.sum(), keys))
    o = prefix + "output."
    out = context @ w[o + "dense.weight"].T + w[o + "dense.bias"] + xq
    return encoder.layer_norm(out, w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"], spec.layer_norm_eps)


def loop_decoder(w, spec, ids, mask, enc, enc_mask):
    """The decoder with cross-attention, written from loops (`loop_attention`) and the encoder's embeddings."""
    x = encoder.embeddings(w, spec, ids)
    act = activation(spec.hidden_act)
    for n in range(spec.num_hidden_layers):
        p = f"bert.encoder.layer.{n}."
        x = loop_attention(x, x, w, spec, lambda b, i, j: mask[b, j] == 1 and j <= i, p + "attention.")
        x = loop_attention(x, enc, w, spec, lambda b, i, j: enc_mask[b, j] == 1, p + "crossattention.")
        h = act(x @ w[p + "intermediate.dense.weight"].T + w[p + "intermediate.dense.bias"])
        h = h @ w[p + "output.dense.weight"].T + w[p + "output.dense.bias"] + x
        x = encoder.layer_norm(h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], spec.layer_norm_eps)
    return x


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_cross_attention_decoder_equals_loops(seed):
    spec, w, ids, mask, enc, enc_mask = draw(seed)
    hidden, pooled, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=enc,
                                              encoder_attention_mask=enc_mask)
    np.testing.assert_allclose(hidden, loop_decoder(w, spec, ids, mask, enc, enc_mask), **TIGHT)
    np.testing.assert_allclose(pooled, encoder.pooler(hidden, w), **TIGHT)


@SETTINGS
@given(st.integers(0, 2**32 - 1))
def test_without_encoder_states_it_is_the_causal_bert_model(seed):
    spec, w, ids, mask, _, _ = draw(seed)
    hidden, pooled, _ = decoder.decoder_model(w, spec, ids, mask)
    expected, expected_pooled = encoder.bert_model(w, spec, ids, mask)
    np.testing.assert_allclose(hidden, expected, **TIGHT)
    np.testing.assert_allclose(pooled, expected_pooled, **TIGHT)


def test_masked_encoder_positions_do_not_matter_and_visible_ones_do():
    spec, w, ids, mask, enc, enc_mask = draw(3)
    enc_mask[:] = [1, 0, 1, 0]
    base, _, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
    moved = enc.copy()
    moved[:, 1] += 5.0
    same, _, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=moved, encoder_attention_mask=enc_mask)
    np.testing.assert_array_equal(same, base)
    moved[:, 2] += 5.0
    other, _, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=moved,
                                        encoder_attention_mask=enc_mask)
    assert np.abs(other - base).min() > 0  # every decoder position sees encoder position 2


def test_no_encoder_mask_means_every_encoder_position():
    spec, w, ids, mask, enc, _ = draw(4)
    a, _, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=enc)
    b, _, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=enc,
                                    encoder_attention_mask=np.ones(enc.shape[:2], dtype=np.int64))
    np.testing.assert_array_equal(a, b)


def test_decoder_outputs_do_not_see_later_tokens():
    spec, w, ids, mask, enc, enc_mask = draw(5)
    base, _, _ = decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=enc, encoder_attention_mask=enc_mask)
    changed = ids.copy()
    changed[:, 3:] = (changed[:, 3:] + 1) % spec.vocab_size
    out, _, _ = decoder.decoder_model(w, spec, changed, mask, encoder_hidden_states=enc,
                                      encoder_attention_mask=enc_mask)
    np.testing.assert_array_equal(out[:, :3], base[:, :3])


def random_chunks(rng, length):
    sizes = []
    while sum(sizes) < length:
        sizes.append(int(rng.integers(1, length - sum(sizes) + 1)))
    return sizes


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.booleans(), st.booleans())
def test_incremental_equals_full_pass(seed, cross, explicit):
    spec, w, ids, mask, enc, enc_mask = draw(seed, length=6)
    rng = np.random.default_rng(seed)
    types = rng.integers(0, spec.type_vocab_size, ids.shape)
    positions = rng.integers(0, spec.max_position_embeddings, ids.shape) if explicit else None
    kw = dict(encoder_hidden_states=enc, encoder_attention_mask=enc_mask) if cross else {}
    full, _, full_cache = decoder.decoder_model(w, spec, ids, mask, types, positions, **kw)
    for chunks in ([1] * 6, [6], random_chunks(rng, 6)):
        got = decoder.decode_incremental(w, spec, ids, chunks, mask, types, positions, **kw)
        np.testing.assert_allclose(got, full, **TIGHT)


def test_cache_holds_keys_in_position_order_and_positions_continue():
    spec, w, ids, mask, _, _ = draw(6, length=5)
    _, _, full_cache = decoder.decoder_model(w, spec, ids, mask)
    _, _, cache = decoder.decoder_model(w, spec, ids[:, :2], mask[:, :2])
    _, _, cache = decoder.decoder_model(w, spec, ids[:, 2:], mask, cache=cache)
    for (k, v), (fk, fv) in zip(cache, full_cache):
        np.testing.assert_allclose(k, fk, **TIGHT)
        np.testing.assert_allclose(v, fv, **TIGHT)
    # the second step's default positions are 2, 3, 4: as explicit ones
    _, _, first = decoder.decoder_model(w, spec, ids[:, :2], mask[:, :2])
    a, _, _ = decoder.decoder_model(w, spec, ids[:, 2:], mask, cache=first)
    b, _, _ = decoder.decoder_model(w, spec, ids[:, 2:], mask, position_ids=np.tile([2, 3, 4], (2, 1)), cache=first)
    np.testing.assert_array_equal(a, b)


def test_refusals():
    spec, w, ids, mask, enc, enc_mask = draw(7)
    with pytest.raises(ReferenceInputError, match="hides every encoder position"):
        decoder.decoder_model(w, spec, ids, mask, encoder_hidden_states=enc, encoder_attention_mask=0 * enc_mask)
    plain = tiny_spec(is_decoder=True)
    with pytest.raises(ReferenceInputError, match="without cross-attention"):
        decoder.decoder_model(w, plain, ids, mask, encoder_hidden_states=enc)
    with pytest.raises(ReferenceInputError, match="covers"):
        decoder.decoder_model(w, spec, ids, mask[:, :3])
    with pytest.raises(ReferenceInputError, match="sum to the length"):
        decoder.decode_incremental(w, spec, ids, [2, 2], mask)
    with pytest.raises(ReferenceInputError, match="is_decoder"):
        decoder.decoder_model(w, tiny_spec(), ids, mask)
    with pytest.raises(ReferenceInputError, match="need is_decoder") as refused:
        decoder.decoder_model({}, tiny_spec(add_cross_attention=True), ids, mask)
    assert refused.value.expected is decoder.CROSS_NOT_DECODER
    with pytest.raises(ReferenceInputError, match="without cross-attention") as refused:
        decoder.decoder_model({}, plain, ids, mask, encoder_hidden_states=enc)  # before any weight is read
    assert refused.value.expected is decoder.NO_CROSS_LAYERS


def test_cross_causal_when_square_rule_of_4_41_sdpa():
    ones = np.ones((1, 3), dtype=np.int64)
    # square and unmasked: decoder position i sees encoder positions 0..i
    np.testing.assert_array_equal(decoder.cross_allowed(ones, 3, causal_when_square=True)[0], np.tril(np.ones((3, 3))))
    # not square, or a mask with a 0 somewhere in the batch, or one query: every visible encoder position
    assert decoder.cross_allowed(ones, 2, causal_when_square=True).all()
    assert decoder.cross_allowed(ones, 1, causal_when_square=True)[:, :, :1].all()
    padded = np.array([[1, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(decoder.cross_allowed(padded, 3, causal_when_square=True),
                                  decoder.cross_allowed(padded, 3))
    # in a model: the first decoder position sees encoder position 0 only, so moving the others leaves it alone
    spec, w, ids, _, enc, _ = draw(8, length=4, enc_length=4)
    base, _, _ = decoder.decoder_model(w, spec, ids, encoder_hidden_states=enc, cross_causal_when_square=True)
    moved = enc.copy()
    moved[:, 1:] += 3.0
    out, _, _ = decoder.decoder_model(w, spec, ids, encoder_hidden_states=moved, cross_causal_when_square=True)
    np.testing.assert_array_equal(out[:, 0], base[:, 0])
    assert np.abs(out[:, 1] - base[:, 1]).min() > 0
