"""The oracle's own tests for reference.attention and the wider surface of reference.encoder / reference.heads:
relative position scores, the fully-masked-row rules, head_mask, inputs_embeds, recorded attentions and hidden
states, the untied decoder's bias.

Expected values come from explicit loops over queries, keys and heads, closed forms (uniform attention, a zero
head_mask) and invariants; nothing comes from torch or transformers.
"""

import math

import numpy as np
import pytest

from helpers_reference import encoder_weights, head_weights, tiny_spec
from reference import ReferenceInputError, attention, encoder, heads

pytestmark = pytest.mark.reference
TIGHT = dict(rtol=1e-12, atol=1e-12)


def relative_weights(spec, seed=0):
    rng = np.random.default_rng(seed)
    w = encoder_weights(spec, rng, prefix="")
    for n in range(spec.num_hidden_layers):
        w[f"encoder.layer.{n}.attention.self.distance_embedding.weight"] = rng.normal(
            size=(2 * spec.max_position_embeddings - 1, spec.head_size))
    return w


def loop_attention_layer(x, w, spec, prefix, allowed, kind):
    """One attention block with explicit loops over batch, head, query and key (relative scores by their formula)."""
    batch, length, _ = x.shape
    d, heads_ = spec.head_size, spec.num_attention_heads
    p = prefix + "attention.self."
    q = x @ w[p + "query.weight"].T + w[p + "query.bias"]
    k = x @ w[p + "key.weight"].T + w[p + "key.bias"]
    v = x @ w[p + "value.weight"].T + w[p + "value.bias"]
    table = w.get(p + "distance_embedding.weight")
    context = np.zeros_like(x)
    for b in range(batch):
        for h in range(heads_):
            sl = slice(h * d, (h + 1) * d)
            for i in range(length):
                scores = []
                for j in range(length):
                    s = q[b, i, sl] @ k[b, j, sl]
                    if kind != "absolute":
                        e = table[i - j + spec.max_position_embeddings - 1]
                        s += q[b, i, sl] @ e + (k[b, j, sl] @ e if kind == "relative_key_query" else 0.0)
                    scores.append(s / math.sqrt(d))
                scores = np.array(scores)
                keep = allowed[b, i]
                e = np.where(keep, np.exp(scores - scores[keep].max()), 0.0)
                context[b, i, sl] = (e / e.sum()) @ v[b, :, sl]
    o = prefix + "attention.output."
    out = context @ w[o + "dense.weight"].T + w[o + "dense.bias"] + x
    return encoder.layer_norm(out, w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"], spec.layer_norm_eps)


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
@pytest.mark.parametrize("is_decoder", [False, True])
def test_relative_attention_equals_the_loop_formula(kind, is_decoder):
    spec = tiny_spec(position_embedding_type=kind, is_decoder=is_decoder, num_hidden_layers=1)
    w = relative_weights(spec)
    x = np.random.default_rng(3).normal(size=(2, 5, spec.hidden_size))
    mask = np.array([[1, 1, 1, 0, 1], [1, 1, 0, 0, 0]])
    allowed = encoder.allowed_keys(mask, is_decoder)
    got = encoder.self_attention(x, w, spec, allowed, "encoder.layer.0.attention.")
    np.testing.assert_allclose(got, loop_attention_layer(x, w, spec, "encoder.layer.0.", allowed, kind), **TIGHT)


def test_relative_models_add_no_absolute_position_embedding():
    spec = tiny_spec(position_embedding_type="relative_key")
    w = relative_weights(spec)
    ids = np.array([[1, 2, 3]])
    a = encoder.embeddings(w, spec, ids, prefix="")
    w2 = dict(w, **{"embeddings.position_embeddings.weight": w["embeddings.position_embeddings.weight"] + 5.0})
    np.testing.assert_array_equal(encoder.embeddings(w2, spec, ids, prefix=""), a)
    # relative scores depend on distances only: shifting explicit position_ids changes nothing
    out = encoder.bert_model(w, spec, ids, position_ids=np.array([[0, 1, 2]]), prefix="")[0]
    shifted = encoder.bert_model(w, spec, ids, position_ids=np.array([[4, 5, 6]]), prefix="")[0]
    np.testing.assert_array_equal(out, shifted)


def test_relative_scores_refuse_sequences_beyond_the_distance_table():
    q = np.zeros((1, 1, 5, 2))
    with pytest.raises(ReferenceInputError):
        attention.relative_position_scores(q, q, np.zeros((7, 2)), 4, "relative_key")


def test_fully_masked_rules_on_one_row():
    scores = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5]])
    allowed = np.array([[False, False, False], [True, False, True]])
    soft = np.exp(scores[0]) / np.exp(scores[0]).sum()
    rest = np.exp([3.0, 0.5]) / np.exp([3.0, 0.5]).sum()
    expected = {"all_keys": soft, "uniform": np.full(3, 1 / 3), "zero": np.zeros(3)}
    for rule, row in expected.items():
        p = attention.attention_probs(scores, allowed, rule)
        np.testing.assert_allclose(p[0], row, **TIGHT)
        np.testing.assert_allclose(p[1], [rest[0], 0.0, rest[1]], **TIGHT)
        assert p[1, 1] == 0.0
    with pytest.raises(ReferenceInputError):
        attention.attention_probs(scores, allowed, "refuse")


def test_all_keys_rule_equals_an_additive_mask_of_minus_10000():
    """The "all_keys" rule is what adding -10000 to masked scores gives (exactly, in float64, for small scores)."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 6))
    allowed = rng.integers(0, 2, (4, 6)).astype(bool)
    allowed[0] = False
    additive = scores + np.where(allowed, 0.0, -10000.0)
    e = np.exp(additive - additive.max(-1, keepdims=True))
    np.testing.assert_allclose(attention.attention_probs(scores, allowed, "all_keys"), e / e.sum(-1, keepdims=True),
                               rtol=1e-9, atol=1e-12)


def test_uniform_rule_gives_the_mean_of_the_values_for_a_fully_padded_example():
    spec = tiny_spec(num_hidden_layers=1)
    w = encoder_weights(spec, np.random.default_rng(1), prefix="")
    x = np.random.default_rng(2).normal(size=(1, 3, spec.hidden_size))
    allowed = encoder.allowed_keys(np.zeros((1, 3), dtype=np.int64), False, "uniform")
    record = []
    encoder.self_attention(x, w, spec, allowed, "encoder.layer.0.attention.", fully_masked="uniform", record=record)
    np.testing.assert_allclose(record[0], np.full((1, spec.num_attention_heads, 3, 3), 1 / 3), **TIGHT)
    with pytest.raises(ReferenceInputError):
        encoder.allowed_keys(np.zeros((1, 3), dtype=np.int64), False)


def test_head_mask_zero_removes_a_head_and_one_changes_nothing():
    spec = tiny_spec()
    w = encoder_weights(spec, np.random.default_rng(1), prefix="")
    ids = np.array([[1, 2, 3, 4]])
    plain = encoder.bert_model(w, spec, ids, prefix="")[0]
    ones = encoder.bert_model(w, spec, ids, prefix="", head_mask=np.ones(spec.num_attention_heads))[0]
    np.testing.assert_array_equal(ones, plain)
    # head 0 off in layer 0 only: that layer's context has zeros in head 0's slice; check via recorded probabilities
    mask = np.ones((spec.num_hidden_layers, spec.num_attention_heads))
    mask[0, 0] = 0.0
    record = {}
    out = encoder.bert_model(w, spec, ids, prefix="", head_mask=mask, record=record)[0]
    assert (record["attentions"][0][:, 0] == 0).all() and (record["attentions"][1][:, 0] > 0).all()
    assert not np.allclose(out, plain)
    # all heads off in every layer: each attention block is LayerNorm(dense bias + x)
    record = {}
    encoder.bert_model(w, spec, ids, prefix="", head_mask=np.zeros(spec.num_attention_heads), record=record)
    x = record["hidden_states"][0]
    o = "encoder.layer.0.attention.output."
    expected = encoder.layer_norm(x + w[o + "dense.bias"], w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"],
                                  spec.layer_norm_eps)
    got = encoder.self_attention(x, w, spec, encoder.allowed_keys(np.ones((1, 4)), False), "encoder.layer.0.attention.",
                                 head_mask=np.zeros(spec.num_attention_heads))
    np.testing.assert_allclose(got, expected, **TIGHT)


def test_inputs_embeds_of_the_word_embeddings_equal_input_ids():
    spec = tiny_spec()
    w = head_weights("BertForMaskedLM", spec)
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    embeds = w["bert.embeddings.word_embeddings.weight"][ids]
    a = heads.masked_lm(w, spec, ids)
    b = heads.masked_lm(w, spec, None, surface={"inputs_embeds": embeds})
    np.testing.assert_array_equal(b["logits"], a["logits"])
    with pytest.raises(ReferenceInputError):
        encoder.embeddings(w, spec, ids, inputs_embeds=embeds)


def test_multiple_choice_flattens_its_surface_inputs_as_it_flattens_its_ids():
    """[B, C, L] multiple choice with inputs_embeds [B, C, L, H] (the word embeddings of its ids) and a mask with a
    fully masked row gives the scores of its ids, and every choice's row scores as that row alone does."""
    spec = tiny_spec()
    w = head_weights("BertForMultipleChoice", spec)
    ids = np.array([[[1, 2, 3], [4, 5, 6]], [[2, 2, 0], [7, 1, 3]]])
    mask = np.array([[[1, 1, 0], [0, 0, 0]], [[1, 1, 1], [0, 1, 1]]])
    surface = {"fully_masked": "uniform", "record": {}}
    a = heads.multiple_choice(w, spec, ids, mask, surface=surface)
    embeds = w["bert.embeddings.word_embeddings.weight"][ids]
    b = heads.multiple_choice(w, spec, None, mask, surface=dict(surface, inputs_embeds=embeds, record={}))
    np.testing.assert_array_equal(b["logits"], a["logits"])
    assert [h.shape for h in surface["record"]["hidden_states"]] == [(4, 3, spec.hidden_size)] * (
        spec.num_hidden_layers + 1)
    for i in range(2):
        for c in range(2):
            one = heads.multiple_choice(w, spec, ids[i:i + 1, c:c + 1], mask[i:i + 1, c:c + 1],
                                        surface={"fully_masked": "uniform"})
            np.testing.assert_allclose(one["logits"][0, 0], a["logits"][i, c], **TIGHT)


def test_recorded_hidden_states_and_attentions():
    spec = tiny_spec(num_hidden_layers=3)
    w = encoder_weights(spec, np.random.default_rng(1), prefix="")
    ids, mask = np.array([[1, 2, 3, 4]]), np.array([[1, 1, 0, 1]])
    record = {}
    last, _ = encoder.bert_model(w, spec, ids, mask, prefix="", record=record)
    assert len(record["hidden_states"]) == 4 and len(record["attentions"]) == 3
    np.testing.assert_array_equal(record["hidden_states"][-1], last)
    np.testing.assert_array_equal(record["hidden_states"][0], encoder.embeddings(w, spec, ids, prefix=""))
    for probs in record["attentions"]:
        assert probs.shape == (1, spec.num_attention_heads, 4, 4)
        np.testing.assert_allclose(probs.sum(-1), 1.0, **TIGHT)
        assert (probs[..., 2] == 0).all()


def test_untied_decoder_uses_its_own_bias_only_under_the_own_rule():
    spec = tiny_spec(tie_word_embeddings=False)
    w = head_weights("BertForMaskedLM", spec)
    w["cls.predictions.decoder.weight"] = np.random.default_rng(5).normal(size=(spec.vocab_size, spec.hidden_size))
    w["cls.predictions.decoder.bias"] = w["cls.predictions.bias"] + 1.0
    ids = np.array([[1, 2, 3]])
    shared = heads.masked_lm(w, spec, ids)["logits"]
    own = heads.masked_lm(w, spec, ids, decoder_bias="own")["logits"]
    np.testing.assert_allclose(own - shared, 1.0, **TIGHT)
    tied = tiny_spec()
    np.testing.assert_array_equal(heads.masked_lm(w, tied, ids, decoder_bias="own")["logits"],
                                  heads.masked_lm(w, tied, ids)["logits"])


def test_a_3d_mask_is_a_key_mask_per_query():
    spec = tiny_spec()
    w = encoder_weights(spec, np.random.default_rng(1), prefix="")
    ids, mask = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[1, 1, 0], [1, 0, 1]])
    same = np.repeat(mask[:, None, :], 3, axis=1)
    np.testing.assert_array_equal(encoder.bert_model(w, spec, ids, same, prefix="")[0],
                                  encoder.bert_model(w, spec, ids, mask, prefix="")[0])
    cube = np.array([[[1, 0, 0], [1, 1, 0], [0, 1, 1]], [[0, 0, 1], [1, 1, 1], [1, 0, 0]]])
    x = encoder.embeddings(w, spec, ids, prefix="")
    allowed = encoder.allowed_keys(cube, False)
    np.testing.assert_array_equal(allowed, cube.astype(bool))
    layer = "encoder.layer.0."
    np.testing.assert_allclose(encoder.self_attention(x, w, spec, allowed, layer + "attention."),
                               loop_attention_layer(x, w, spec, layer, allowed, "absolute"), **TIGHT)
