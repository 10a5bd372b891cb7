"""The oracle's own tests for reference.encoder, reference.activations and reference.config.

Expected values are worked on paper (arithmetic in the comments) or are invariants of the architecture (causality,
padding, first-token pooling); nothing comes from torch or transformers.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers_reference import encoder_weights, tiny_spec
from reference import BertSpec, ReferenceInputError, activations, encoder

pytestmark = pytest.mark.reference

SETTINGS = settings(max_examples=50, deadline=None)
TIGHT = dict(rtol=0.0, atol=1e-12)


def model(spec, seed=0, prefix="bert."):
    return encoder_weights(spec, np.random.default_rng(seed), prefix=prefix)


def random_ids(spec, shape, seed=1):
    return np.random.default_rng(seed).integers(0, spec.vocab_size, shape)


# --- layer norm ---------------------------------------------------------------------------------------------------


@SETTINGS
@given(arrays(np.float64, (3, 8), elements=st.floats(-100.0, 100.0, allow_nan=False)))
def test_layer_norm_normalises_to_mean_0_variance_1(x):
    x = x + np.linspace(0.0, 1.0, 8)  # rarely constant rows, so the assume below seldom rejects
    assume((x.std(axis=-1) > 1e-3).all())
    y = encoder.layer_norm(x, np.ones(8), np.zeros(8), 0.0)
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose((y**2).mean(axis=-1), 1.0, rtol=1e-12)  # biased variance
    # the affine part is applied after normalising
    w, b = np.linspace(0.5, 2.0, 8), np.linspace(-1.0, 1.0, 8)
    np.testing.assert_allclose(encoder.layer_norm(x, w, b, 0.0), y * w + b, rtol=1e-14, atol=1e-14)


def test_layer_norm_hand_computed_with_eps_inside_the_root():
    one = np.ones(2)
    # [1, -1]: mean 0, variance 1, eps 1 -> [1, -1] / sqrt(2)
    np.testing.assert_allclose(encoder.layer_norm(np.array([1.0, -1.0]), one, 0 * one, 1.0),
                               [1 / math.sqrt(2), -1 / math.sqrt(2)], rtol=1e-15)
    # [0, 3]: mean 1.5, variance 2.25, eps 0.25 -> [-1.5, 1.5] / sqrt(2.5); then * [2, 3] + [1, -1]
    y = encoder.layer_norm(np.array([0.0, 3.0]), np.array([2.0, 3.0]), np.array([1.0, -1.0]), 0.25)
    s = 1.5 / math.sqrt(2.5)
    np.testing.assert_allclose(y, [1.0 - 2 * s, -1.0 + 3 * s], rtol=1e-15)


def test_layer_norm_of_a_constant_row_is_the_bias():
    # x - mean is exactly 0 (3 * 8 / 8 = 3), so with eps > 0 the output is exactly the bias, not NaN
    bias = np.arange(8.0) - 3.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = encoder.layer_norm(np.full((2, 8), 3.0), np.linspace(1, 2, 8), bias, 1e-12)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, (2, 8)))


# --- attention masking ------------------------------------------------------------------------------------------


@st.composite
def scores_and_allowed(draw):
    b, q, k = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    scores = draw(arrays(np.float64, (b, q, k), elements=st.floats(-1000.0, 1000.0, allow_nan=False)))
    allowed = draw(arrays(np.bool_, (b, q, k)))
    allowed[..., draw(st.integers(0, k - 1))] = True  # every query sees a key
    return scores, allowed


@SETTINGS
@given(scores_and_allowed())
def test_masked_softmax_zero_at_disallowed_keys_and_rows_sum_to_1(problem):
    scores, allowed = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = encoder.masked_softmax(scores, allowed)
    assert (p[~allowed] == 0.0).all()
    assert (p >= 0.0).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-13)
    # on allowed keys it is the ordinary softmax of the allowed scores alone
    for idx in np.ndindex(*scores.shape[:-1]):
        keep = allowed[idx]
        s = scores[idx][keep]
        e = np.exp(s - s.max())
        np.testing.assert_allclose(p[idx][keep], e / e.sum(), rtol=1e-12, atol=1e-300)


def test_masked_softmax_hand_computed():
    # allowed keys 0 and 2 with scores 0 and log 3: [1/4, 0, 3/4]; key 1's huge score is ignored
    p = encoder.masked_softmax(np.array([[[0.0, 500.0, math.log(3.0)]]]), np.array([[[True, False, True]]]))
    np.testing.assert_allclose(p, [[[0.25, 0.0, 0.75]]], rtol=1e-15)


def test_allowed_keys_encoder_and_decoder():
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    enc = encoder.allowed_keys(mask, is_decoder=False)
    np.testing.assert_array_equal(enc[0], [[1, 1, 0]] * 3)  # every query sees the unpadded keys
    np.testing.assert_array_equal(enc[1], np.ones((3, 3)))
    dec = encoder.allowed_keys(mask, is_decoder=True)
    np.testing.assert_array_equal(dec[0], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])  # causal and padded
    np.testing.assert_array_equal(dec[1], [[1, 0, 0], [1, 1, 0], [1, 1, 1]])


@pytest.mark.parametrize("bad", [[[1, 2, 1]], [[1, 0.5, 1]], [[1, -1, 1]], [[1.0, np.nan, 1.0]]])
def test_allowed_keys_refuses_mask_values_other_than_0_and_1(bad):
    with pytest.raises(ReferenceInputError):
        encoder.allowed_keys(np.array(bad), is_decoder=False)


def test_allowed_keys_refuses_a_query_that_sees_no_key():
    with pytest.raises(ReferenceInputError):
        encoder.allowed_keys(np.array([[1, 1], [0, 0]]), is_decoder=False)  # fully padded example
    with pytest.raises(ReferenceInputError):
        encoder.allowed_keys(np.array([[0, 1, 1]]), is_decoder=True)  # decoder query 0 sees only padded key 0


# --- the encoder ----------------------------------------------------------------------------------------------------


def test_decoder_position_t_does_not_depend_on_later_tokens():
    spec = tiny_spec(is_decoder=True)
    w = model(spec)
    ids = random_ids(spec, (2, 6))
    hidden, _ = encoder.bert_model(w, spec, ids, add_pooling_layer=False)
    rng = np.random.default_rng(7)
    for t in range(5):
        changed = ids.copy()
        changed[:, t + 1:] = (ids[:, t + 1:] + rng.integers(1, spec.vocab_size, (2, 5 - t))) % spec.vocab_size
        other, _ = encoder.bert_model(w, spec, changed, add_pooling_layer=False)
        np.testing.assert_allclose(other[:, : t + 1], hidden[:, : t + 1], **TIGHT)
        assert (np.abs(other[:, t + 1:] - hidden[:, t + 1:]).max(axis=-1) > 1e-6).all()


def test_encoder_position_t_does_depend_on_later_tokens():
    # the same change as above reaches the earlier positions of a bidirectional encoder
    spec = tiny_spec()
    w = model(spec)
    ids = random_ids(spec, (1, 6))
    changed = ids.copy()
    changed[0, 5] = (ids[0, 5] + 1) % spec.vocab_size
    a, _ = encoder.bert_model(w, spec, ids)
    b, _ = encoder.bert_model(w, spec, changed)
    assert (np.abs(a[0, :5] - b[0, :5]).max(axis=-1) > 1e-6).all()


@pytest.mark.parametrize("is_decoder", [False, True])
def test_padded_keys_do_not_influence_other_positions(is_decoder):
    spec = tiny_spec(is_decoder=is_decoder)
    w = model(spec)
    ids = random_ids(spec, (2, 5))
    types = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    hidden, pooled = encoder.bert_model(w, spec, ids, mask, types)
    changed_ids, changed_types = ids.copy(), types.copy()
    changed_ids[0, 3:] = (ids[0, 3:] + 5) % spec.vocab_size
    changed_types[0, 3:] = 1 - types[0, 3:]
    other, other_pooled = encoder.bert_model(w, spec, changed_ids, mask, changed_types)
    np.testing.assert_allclose(other[0, :3], hidden[0, :3], **TIGHT)
    np.testing.assert_allclose(other[1], hidden[1], **TIGHT)
    np.testing.assert_allclose(other_pooled, pooled, **TIGHT)
    assert (np.abs(other[0, 3:] - hidden[0, 3:]).max(axis=-1) > 1e-6).all()  # padded queries still get outputs
    # the unpadded positions equal the encoding of the truncated, unpadded sequence
    short, short_pooled = encoder.bert_model(w, spec, ids[:1, :3], None, types[:1, :3])
    np.testing.assert_allclose(hidden[0, :3], short[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pooled[0], short_pooled[0], rtol=1e-12, atol=1e-12)


def test_examples_of_a_batch_are_independent():
    spec = tiny_spec()
    w = model(spec)
    ids = random_ids(spec, (3, 4))
    hidden, pooled = encoder.bert_model(w, spec, ids)
    for b in range(3):
        alone, alone_pooled = encoder.bert_model(w, spec, ids[b: b + 1])
        np.testing.assert_allclose(alone[0], hidden[b], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(alone_pooled[0], pooled[b], rtol=1e-12, atol=1e-12)


def test_pooler_uses_only_the_first_token():
    rng = np.random.default_rng(3)
    seq = rng.normal(size=(2, 4, 8))
    w = {"bert.pooler.dense.weight": rng.normal(size=(8, 8)), "bert.pooler.dense.bias": rng.normal(size=8)}
    pooled = encoder.pooler(seq, w)
    # tanh(W h_0 + b), written out entry by entry
    for b in range(2):
        for j in range(8):
            weight, bias = w["bert.pooler.dense.weight"], w["bert.pooler.dense.bias"]
            z = sum(weight[j, i] * seq[b, 0, i] for i in range(8)) + bias[j]
            assert math.isclose(pooled[b, j], math.tanh(z), rel_tol=1e-13, abs_tol=1e-15)
    changed = seq.copy()
    changed[:, 1:] = rng.normal(size=(2, 3, 8))
    np.testing.assert_array_equal(encoder.pooler(changed, w), pooled)
    changed[:, 0] += 0.1
    assert not np.allclose(encoder.pooler(changed, w), pooled)


def test_bert_model_pooled_output_is_pooler_of_last_hidden_state():
    spec = tiny_spec()
    w = model(spec)
    hidden, pooled = encoder.bert_model(w, spec, random_ids(spec, (2, 4)))
    np.testing.assert_array_equal(pooled, encoder.pooler(hidden, w))
    assert encoder.bert_model(w, spec, random_ids(spec, (2, 4)), add_pooling_layer=False)[1] is None


def test_embeddings_hand_assembled():
    spec = tiny_spec()
    w = model(spec)
    ids, types = np.array([[3, 0, 12]]), np.array([[0, 1, 1]])
    e = "bert.embeddings."
    got = encoder.embeddings(w, spec, ids, types)
    for t in range(3):
        x = w[e + "word_embeddings.weight"][ids[0, t]] + w[e + "position_embeddings.weight"][t] \
            + w[e + "token_type_embeddings.weight"][types[0, t]]
        mean = sum(x) / 8
        var = sum((v - mean) ** 2 for v in x) / 8
        normalised = (x - mean) / math.sqrt(var + spec.layer_norm_eps)
        expected = normalised * w[e + "LayerNorm.weight"] + w[e + "LayerNorm.bias"]
        np.testing.assert_allclose(got[0, t], expected, rtol=1e-13, atol=1e-14)
    # defaults: position ids 0..L-1, token types 0
    explicit = encoder.embeddings(w, spec, ids, np.zeros((1, 3), int), np.arange(3)[None])
    np.testing.assert_array_equal(encoder.embeddings(w, spec, ids), explicit)
    # explicit position ids are used
    assert not np.allclose(encoder.embeddings(w, spec, ids, types, np.array([[5, 6, 7]])), got)


def test_decoder_first_position_attends_only_to_itself():
    # softmax over a single key is exactly 1: the context of position 0 is that key's value vector
    spec = tiny_spec(is_decoder=True, num_hidden_layers=1)
    w = model(spec, prefix="")
    ids = random_ids(spec, (1, 4))
    x = encoder.embeddings(w, spec, ids, prefix="")
    allowed = encoder.allowed_keys(np.ones((1, 4), int), True)
    out = encoder.self_attention(x, w, spec, allowed, "encoder.layer.0.attention.")
    p = "encoder.layer.0.attention."
    v0 = w[p + "self.value.weight"] @ x[0, 0] + w[p + "self.value.bias"]
    dense = w[p + "output.dense.weight"] @ v0 + w[p + "output.dense.bias"]
    expected = encoder.layer_norm(dense + x[0, 0], w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"],
                                  spec.layer_norm_eps)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12, atol=1e-12)


def test_hidden_act_is_used_and_unknown_names_are_refused():
    ids = random_ids(tiny_spec(), (1, 4))
    w = model(tiny_spec())
    gelu, _ = encoder.bert_model(w, tiny_spec(hidden_act="gelu"), ids)
    relu, _ = encoder.bert_model(w, tiny_spec(hidden_act="relu"), ids)
    assert np.abs(gelu - relu).max() > 1e-3
    with pytest.raises(ReferenceInputError):
        encoder.bert_model(w, tiny_spec(hidden_act="no_such_activation"), ids)


# --- refused input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(input_ids=np.array([[1, 13]])),  # = vocab_size
        dict(input_ids=np.array([[-1, 2]])),
        dict(input_ids=np.array([[1.0, 2.0]])),  # float ids
        dict(input_ids=np.array([1, 2])),  # 1-D
        dict(input_ids=np.ones((1, 2, 3), int)),  # 3-D
        dict(input_ids=np.ones((1, 17), int)),  # longer than max_position_embeddings = 16
        dict(input_ids=np.ones((1, 3), int), token_type_ids=np.array([[0, 1, 2]])),  # = type_vocab_size
        dict(input_ids=np.ones((1, 3), int), position_ids=np.array([[0, 1, 16]])),
        dict(input_ids=np.ones((1, 3), int), attention_mask=np.array([[1, 2, 1]])),
        dict(input_ids=np.ones((1, 3), int), attention_mask=np.array([[1.0, 0.5, 1.0]])),
        dict(input_ids=np.ones((2, 3), int), attention_mask=np.array([[1, 1, 1], [0, 0, 0]])),  # fully padded row
        dict(input_ids=np.ones((2, 3), int), attention_mask=np.ones((2, 4), int)),  # shape mismatch
    ],
    ids=["id_eq_vocab", "id_negative", "id_float", "ids_1d", "ids_3d", "too_long", "token_type", "position",
         "mask_2", "mask_half", "mask_fully_padded", "mask_shape"],
)
def test_bert_model_refuses_bad_input(kwargs):
    spec = tiny_spec()
    with pytest.raises(ReferenceInputError):
        encoder.bert_model(model(spec), spec, **kwargs)


def test_spec_refuses_hidden_size_not_divisible_by_heads():
    with pytest.raises(ReferenceInputError):
        BertSpec(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ReferenceInputError):
        BertSpec.from_mapping({"hidden_size": 8, "num_attention_heads": 3})
    assert BertSpec(hidden_size=12, num_attention_heads=3).head_size == 4


def test_spec_refuses_unknown_problem_type():
    with pytest.raises(ReferenceInputError):
        BertSpec(problem_type="ranking")


def test_spec_from_mapping():
    spec = BertSpec.from_mapping({"hidden_size": 16, "num_attention_heads": 4, "architectures": ["BertModel"],
                                  "id2label": {0: "a", 1: "b", 2: "c"}, "hidden_dropout_prob": 0.1})
    assert (spec.hidden_size, spec.num_attention_heads, spec.num_labels, spec.head_size) == (16, 4, 3, 4)
    assert BertSpec.from_mapping({"num_labels": 5, "id2label": {0: "a"}}).num_labels == 5  # explicit wins
    assert BertSpec.from_mapping({}) == BertSpec()


# --- activations --------------------------------------------------------------------------------------------------

SQRT2 = math.sqrt(2.0)
TANH_C = math.sqrt(2.0 / math.pi)


def _values():
    e = math.e
    return [
        ("gelu", 0.0, 0.0),
        ("gelu", 1.0, 0.5 * (1 + math.erf(1 / SQRT2))),  # = Phi(1) = 0.8413447460685429
        ("gelu", -1.0, -0.5 * (1 - math.erf(1 / SQRT2))),  # = -(1 - Phi(1)) = -0.15865525393145707
        ("gelu", 3.0, 1.5 * (1 + math.erf(3 / SQRT2))),
        ("gelu_python", 1.0, 0.5 * (1 + math.erf(1 / SQRT2))),
        ("gelu_new", 1.0, 0.5 * (1 + math.tanh(TANH_C * (1 + 0.044715)))),  # 0.8411919906082768
        ("gelu_pytorch_tanh", -2.0, -(1 + math.tanh(TANH_C * (-2 - 0.044715 * 8)))),
        ("gelu_python_tanh", 1.0, 0.5 * (1 + math.tanh(TANH_C * 1.044715))),
        ("gelu_accurate", 1.0, 0.5 * (1 + math.tanh(TANH_C * 1.044715))),
        ("gelu_fast", 1.0, 0.5 * (1 + math.tanh(0.7978845608 * 1.044715))),
        ("gelu_10", 20.0, 10.0),  # gelu(20) = 20 clipped to 10
        ("gelu_10", 5.0, 2.5 * (1 + math.erf(5 / SQRT2))),  # 4.999998566742141, inside the clip
        ("quick_gelu", 1.0, 1 / (1 + math.exp(-1.702))),
        ("quick_gelu", -2.0, -2 / (1 + math.exp(3.404))),
        ("relu", -2.0, 0.0),
        ("relu", 3.0, 3.0),
        ("relu2", 3.0, 9.0),
        ("relu2", -3.0, 0.0),
        ("relu6", 7.0, 6.0),
        ("relu6", 2.5, 2.5),
        ("relu6", -1.0, 0.0),
        ("leaky_relu", -2.0, -0.02),
        ("leaky_relu", 2.0, 2.0),
        ("silu", 1.0, 1 / (1 + 1 / e)),  # 0.7310585786300049
        ("swish", -1.0, -1 / (1 + e)),
        ("mish", 1.0, (e * e + 2 * e) / (e * e + 2 * e + 2)),  # tanh(log(1 + e)) = ((1+e)^2 - 1) / ((1+e)^2 + 1)
        ("mish", 0.0, 0.0),
        ("sigmoid", 0.0, 0.5),
        ("sigmoid", math.log(3.0), 0.75),
        ("sigmoid", -math.log(3.0), 0.25),
        ("tanh", 1.0, (e * e - 1) / (e * e + 1)),
        ("linear", -2.5, -2.5),
    ]


@pytest.mark.parametrize("name,x,expected", _values(), ids=lambda v: str(v))
def test_activation_values_worked_on_paper(name, x, expected):
    got = activations.activation(name)(np.array([x]))
    np.testing.assert_allclose(got, [expected], rtol=1e-14, atol=1e-16)


def test_every_activation_name_has_a_worked_value():
    assert {name for name, _, _ in _values()} == set(activations.ACTIVATIONS)


def test_gelu_approximations_are_close_but_not_equal():
    x = np.linspace(-6.0, 6.0, 1201)
    exact, approx = activations.gelu(x), activations.gelu_tanh(x)
    diff = np.abs(exact - approx)
    assert diff.max() < 5e-4  # the tanh approximation's worst error is about 4.7e-4
    assert diff[np.abs(x - 1.0) < 1e-9][0] > 1e-4  # 0.84134 vs 0.84119 at x = 1
    fast = activations.gelu_fast(x)
    assert np.abs(fast - approx).max() < 1e-11  # only the rounding of sqrt(2/pi) to 10 digits differs
    assert (fast != approx).any()
    np.testing.assert_allclose(activations.quick_gelu(x), x / (1 + np.exp(-1.702 * x)), rtol=1e-14, atol=1e-300)


def test_activations_are_stable_at_plus_minus_1000():
    x = np.array([-1000.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(activations.sigmoid(x), [0.0, 1.0])
        np.testing.assert_array_equal(activations.silu(x), [-0.0, 1000.0])
        np.testing.assert_array_equal(activations.softplus(x), [0.0, 1000.0])
        np.testing.assert_array_equal(activations.mish(x), [-0.0, 1000.0])
        np.testing.assert_array_equal(activations.gelu(x), [-0.0, 1000.0])
        np.testing.assert_array_equal(activations.gelu_10(x), [-0.0, 10.0])


def test_unknown_activation_is_refused():
    with pytest.raises(ReferenceInputError):
        activations.activation("gelu_exact")
    with pytest.raises(ReferenceInputError):
        activations.activation("GELU")
