"""The oracle's own tests for the backward pass on the model surface's paths (reference.backward_attention): any 2D
or 3D mask, fully masked queries under each rule of reference.attention, relative positions (the distance
embeddings' gradient), head_mask, and a decoder's cross-attention (its weights and the encoder states' gradient).
Every gradient is checked against central finite differences of the reference's forward loss in float64, along a
random direction per parameter; nothing comes from torch or transformers.

The "uniform" rule's gradient is not the derivative of its forward (which does not depend on a fully masked query's
scores): it is softmax's Jacobian at the uniform probabilities, as autograd computes it through the added minimum.
Where every score is 0 (zero query weights) "all_keys" has the same forward, and its exact derivative is that
Jacobian: the finite differences of "all_keys" there are the "uniform" rule's gradient.
"""

import numpy as np
import pytest

import helpers_reference
from helpers_reference import head_weights, numerical_gradient, tiny_spec
from reference import ReferenceInputError, backward

pytestmark = pytest.mark.reference

SMALL = dict(vocab_size=7, hidden_size=4, num_attention_heads=2, intermediate_size=5, max_position_embeddings=6,
             layer_norm_eps=1e-6)
IDS = np.array([[1, 0, 3, 0, 2], [2, 5, 0, 6, 4]])
LEFT = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
RIGHT = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
HOLES = np.array([[1, 0, 1, 0, 1], [0, 1, 1, 0, 1]])
EMPTY_ROW = np.array([[0, 0, 0, 0, 0], [1, 0, 1, 1, 0]])  # the first example's queries see no key
TYPES = np.array([[0, 1, 1, 0, 1], [0, 0, 1, 1, 1]])
TOKENS = np.array([[1, -100, 3, 2, 6], [0, 6, -100, 1, 1]])
CLASSES = np.array([2, 0])
RNG = np.random.default_rng(29)
CUBE = (RNG.random((2, 5, 5)) < 0.5).astype(np.int64)
CUBE[0, 2] = 0  # one query that sees no key
CUBE_SEEN = CUBE.copy()
CUBE_SEEN[:, :, 4] = 1  # every query sees the last key
HEAD_MASK = np.array([0.5, 2.0])
LAYER_HEAD_MASK = np.array([[1.0, 0.0], [0.5, 2.0]])

LABELS = {"BertForSequenceClassification": dict(labels=CLASSES), "BertForMaskedLM": dict(labels=TOKENS),
          "BertLMHeadModel": dict(labels=TOKENS), "BertForTokenClassification": dict(labels=np.where(TOKENS > 0, TOKENS % 3, -100)),
          "BertForPreTraining": dict(labels=TOKENS, next_sentence_label=np.array([1, 0])),
          "BertForQuestionAnswering": dict(start_positions=np.array([1, 4]), end_positions=np.array([3, 9]))}

# case -> (head, spec overrides, inputs besides input_ids and the head's labels)
CASES = {
    "left_padding": ("BertForSequenceClassification", {}, dict(attention_mask=LEFT, token_type_ids=TYPES)),
    "holes": ("BertForTokenClassification", {}, dict(attention_mask=HOLES)),
    "holes_pretraining": ("BertForPreTraining", {}, dict(attention_mask=HOLES)),
    "mask_3d": ("BertForMaskedLM", {}, dict(attention_mask=CUBE_SEEN)),
    "causal_left_padding_all_keys": ("BertLMHeadModel", dict(is_decoder=True),
                                     dict(attention_mask=LEFT, fully_masked="all_keys")),
    "causal_left_padding_zero": ("BertLMHeadModel", dict(is_decoder=True),
                                 dict(attention_mask=LEFT, fully_masked="zero")),
    **{f"empty_row_{rule}": ("BertForSequenceClassification", {}, dict(attention_mask=EMPTY_ROW, fully_masked=rule))
       for rule in ("all_keys", "zero")},
    **{f"mask_3d_{rule}": ("BertForQuestionAnswering", dict(num_labels=2), dict(attention_mask=CUBE, fully_masked=rule))
       for rule in ("all_keys", "zero")},
    **{f"{kind}_{head}": (head, dict(position_embedding_type=kind, **({"is_decoder": True} if head == "BertLMHeadModel" else {})),
                          dict(attention_mask=HOLES if head != "BertLMHeadModel" else RIGHT))
       for kind in ("relative_key", "relative_key_query")
       for head in ("BertForSequenceClassification", "BertForMaskedLM", "BertLMHeadModel")},
    "head_mask": ("BertForMaskedLM", {}, dict(attention_mask=HOLES, head_mask=HEAD_MASK)),
    "head_mask_layers": ("BertForSequenceClassification", {}, dict(head_mask=LAYER_HEAD_MASK)),
    "head_mask_pretraining": ("BertForPreTraining", {}, dict(head_mask=LAYER_HEAD_MASK, token_type_ids=TYPES)),
    "everything": ("BertForTokenClassification", dict(position_embedding_type="relative_key_query"),
                   dict(attention_mask=CUBE, fully_masked="zero", head_mask=LAYER_HEAD_MASK)),
}


def surface_weights(head, spec, seed=3):
    """The head's random weights, plus each layer's distance embeddings for a relative position type and its
    cross-attention block with `spec.add_cross_attention`."""
    w = head_weights(head, spec, seed=seed)
    rng = np.random.default_rng(seed + 1)
    prefix = "" if head == "BertModel" else "bert."
    h = spec.hidden_size
    for n in range(spec.num_hidden_layers):
        layer = f"{prefix}encoder.layer.{n}."
        if spec.position_embedding_type != "absolute":
            w[layer + "attention.self.distance_embedding.weight"] = rng.normal(
                size=(2 * spec.max_position_embeddings - 1, spec.head_size))
        if spec.add_cross_attention:
            c = layer + "crossattention."
            for part in ("self.query", "self.key", "self.value", "output.dense"):
                w[c + part + ".weight"] = rng.normal(0.0, 1.5 / np.sqrt(h), (h, h))
                w[c + part + ".bias"] = rng.normal(0.0, 0.1, h)
            w[c + "output.LayerNorm.weight"] = 1.0 + 0.1 * rng.normal(size=h)
            w[c + "output.LayerNorm.bias"] = 0.1 * rng.normal(size=h)
    return w


def setup(case, **overrides):
    head, spec_overrides, inputs = CASES[case]
    spec = tiny_spec(**{**SMALL, **spec_overrides, **overrides})
    return head, spec, surface_weights(head, spec), dict(input_ids=IDS, **inputs, **LABELS[head])


def loss_of(head, spec, kwargs):
    return lambda weights: backward.forward(head, weights, spec, **kwargs)["loss"]


def assert_directional(head, spec, weights, kwargs, grads, loss=None):
    helpers_reference.assert_directional(loss or loss_of(head, spec, kwargs), spec, weights, grads)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_parameter_matches_finite_differences(case):
    head, spec, weights, kwargs = setup(case)
    loss, grads = backward.gradients(head, weights, spec, **kwargs)
    assert set(grads) == set(weights)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
    assert_directional(head, spec, weights, kwargs, grads)


@pytest.mark.parametrize("kind", ["relative_key", "relative_key_query"])
def test_relative_positions_distance_embeddings_entry_by_entry(kind):
    """Every row of the distance table: read rows (distances -4..4 of a length-5 sequence) get d loss, the others 0;
    the absolute position table, which a relative type never reads, gets exactly 0."""
    head, spec, weights, kwargs = setup(f"{kind}_BertForSequenceClassification", num_hidden_layers=1)
    _, grads = backward.gradients(head, weights, spec, **kwargs)
    name = "bert.encoder.layer.0.attention.self.distance_embedding.weight"
    loss = loss_of(head, spec, kwargs)
    numeric = numerical_gradient(lambda t: loss(dict(weights, **{name: t})), weights[name], h=1e-6)
    np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8)
    unread = np.r_[0, 10]  # max_position_embeddings 6: rows 0..10, distances -5..5; a length 5 reads 1..9
    assert not grads[name][unread].any() and grads[name][1:10].any()
    assert not grads["bert.embeddings.position_embeddings.weight"].any()


def test_uniform_rule_is_softmax_jacobian_at_uniform():
    """With zero query weights every score is 0: "all_keys" and "uniform" compute the same forward, and the
    "uniform" gradient (including the fully masked queries' rows) is the finite difference of "all_keys"."""
    for case, mask in (("empty_row_all_keys", EMPTY_ROW), ("mask_3d_all_keys", CUBE)):
        head, spec, weights, kwargs = setup(case)
        for n in range(spec.num_hidden_layers):
            for part in ("weight", "bias"):
                weights[f"bert.encoder.layer.{n}.attention.self.query.{part}"] = np.zeros_like(
                    weights[f"bert.encoder.layer.{n}.attention.self.query.{part}"])
        uniform = dict(kwargs, fully_masked="uniform")
        loss, grads = backward.gradients(head, weights, spec, **uniform)
        assert loss == pytest.approx(backward.forward(head, weights, spec, **kwargs)["loss"], rel=1e-12)
        assert_directional(head, spec, weights, uniform, grads, loss=loss_of(head, spec, kwargs))
        # the rows that see no key do pass gradient to the query weights, unlike "zero"
        _, zero = backward.gradients(head, weights, spec, **dict(kwargs, fully_masked="zero"))
        query = "bert.encoder.layer.0.attention.self.query.weight"
        assert not np.allclose(grads[query], zero[query])


def test_zero_rule_fully_masked_example_gives_nothing_to_values():
    """Under "zero" a query that sees no key has output 0: an example whose every query sees nothing reads no value,
    so its embedding rows get gradient only through the residual path (the loss still depends on them)."""
    head, spec, weights, kwargs = setup("empty_row_zero")
    _, grads = backward.gradients(head, weights, spec, **kwargs)
    assert all(np.isfinite(g).all() for g in grads.values())


def test_fully_masked_refused_without_rule():
    head, spec, weights, kwargs = setup("empty_row_zero")
    kwargs.pop("fully_masked")
    with pytest.raises(ReferenceInputError, match="no key"):
        backward.gradients(head, weights, spec, **kwargs)


ENC = RNG.normal(size=(2, 3, 4))
ENC_MASK = np.array([[1, 1, 0], [1, 1, 1]])
CROSS = dict(is_decoder=True, add_cross_attention=True)
CROSS_CASES = {
    "cross": dict(encoder_hidden_states=ENC),
    "cross_masks": dict(attention_mask=RIGHT, encoder_hidden_states=ENC, encoder_attention_mask=ENC_MASK,
                        token_type_ids=TYPES),
    "cross_square_causal": dict(encoder_hidden_states=RNG.normal(size=(2, 5, 4)), cross_causal_when_square=True),
}


@pytest.mark.parametrize("case", sorted(CROSS_CASES))
def test_cross_attention_matches_finite_differences(case):
    """BertLMHeadModel with cross-attention: every parameter (the crossattention blocks included) and the encoder
    states, entry by entry."""
    spec = tiny_spec(**SMALL, **CROSS)
    weights = surface_weights("BertLMHeadModel", spec)
    kwargs = dict(input_ids=IDS, labels=TOKENS, **CROSS_CASES[case])
    loss, grads = backward.gradients("BertLMHeadModel", weights, spec, **kwargs)
    assert set(grads) == set(weights) | {"encoder_hidden_states"}
    assert any(name.endswith("crossattention.self.key.weight") and grads[name].any() for name in grads)
    assert_directional("BertLMHeadModel", spec, weights, kwargs, grads)
    states = kwargs["encoder_hidden_states"]
    numeric = numerical_gradient(
        lambda s: backward.forward("BertLMHeadModel", weights, spec, **dict(kwargs, encoder_hidden_states=s))["loss"],
        states, h=1e-6)
    np.testing.assert_allclose(grads["encoder_hidden_states"], numeric, rtol=1e-5, atol=1e-8)
    if "encoder_attention_mask" in kwargs:  # a hidden encoder position gets nothing
        assert not grads["encoder_hidden_states"][0, 2].any()


def test_bert_model_cross_attention_backward_of_output_gradients():
    spec = tiny_spec(**SMALL, **CROSS)
    weights = surface_weights("BertModel", spec)
    r_hidden, r_pooled = RNG.normal(size=(2, 5, 4)), RNG.normal(size=(2, 4))
    inputs = dict(input_ids=IDS, encoder_hidden_states=ENC, encoder_attention_mask=ENC_MASK)
    grads = backward.backward("BertModel", weights, spec, {"last_hidden_state": r_hidden, "pooler_output": r_pooled},
                              **inputs)

    def scalar(w):
        out = backward.forward("BertModel", w, spec, **inputs)
        return (out["last_hidden_state"] * r_hidden).sum() + (out["pooler_output"] * r_pooled).sum()

    assert_directional("BertModel", spec, weights, inputs, grads, loss=scalar)


def test_cross_attention_refusals():
    spec = tiny_spec(**SMALL, **CROSS)
    weights = surface_weights("BertLMHeadModel", spec)
    with pytest.raises(ReferenceInputError, match="cross-attention is covered"):
        backward.gradients("BertLMHeadModel", weights, spec, input_ids=IDS, labels=TOKENS, encoder_hidden_states=ENC,
                           head_mask=HEAD_MASK)
    with pytest.raises(ReferenceInputError, match="hides every encoder position"):
        backward.gradients("BertLMHeadModel", weights, spec, input_ids=IDS, labels=TOKENS, encoder_hidden_states=ENC,
                           encoder_attention_mask=np.array([[0, 0, 0], [1, 1, 1]]))
