"""The oracle's own tests for reference.backward: every parameter's gradient of every head's loss against central
finite differences of the reference's forward loss, in float64; the [PAD] row rule, the tied decoder's sum, and the
activation derivatives. Nothing comes from torch or transformers.

Each parameter is checked along a random direction D (d/dt loss(w + t D) against sum(grad * D)); the word
embeddings, where the [PAD] row rule lives, entry by entry.
"""

import numpy as np
import pytest

import helpers_reference
from helpers_reference import directional, head_weights, numerical_gradient, tiny_spec
from reference import ReferenceInputError, activations, backward, heads

pytestmark = pytest.mark.reference

RNG = np.random.default_rng(17)
IDS = np.array([[1, 0, 3, 0, 2], [2, 5, 0, 6, 4]])  # 0 is the [PAD] id: it occurs, also under the mask
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
TYPES = np.array([[0, 1, 1, 0, 1], [0, 0, 1, 1, 1]])
POSITIONS = np.array([[5, 0, 2, 2, 1], [0, 1, 2, 3, 4]])
BASE = dict(input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES)
TOKENS = np.array([[1, -100, 3, 2, 6], [0, 6, -100, 1, 1]])
WORD = "bert.embeddings.word_embeddings.weight"
DECODER = "cls.predictions.decoder.weight"
MC_IDS = RNG.integers(0, 7, (2, 3, 4))
MC_MASK = np.array([[[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], [[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]])

# case -> (head, spec overrides, keyword arguments of the head function)
CASES = {
    "pretraining": ("BertForPreTraining", {}, dict(BASE, labels=TOKENS, next_sentence_label=np.array([1, 0]))),
    "pretraining_positions": ("BertForPreTraining", {}, dict(BASE, position_ids=POSITIONS, labels=TOKENS,
                                                              next_sentence_label=np.array([-100, 1]))),
    "masked_lm": ("BertForMaskedLM", {}, dict(BASE, labels=TOKENS)),
    "masked_lm_untied": ("BertForMaskedLM", dict(tie_word_embeddings=False), dict(BASE, labels=TOKENS)),
    "masked_lm_ignore_index": ("BertForMaskedLM", {}, dict(BASE, labels=np.where(TOKENS < 0, 7, TOKENS),
                                                            ignore_index=7)),
    "causal_lm": ("BertLMHeadModel", dict(is_decoder=True), dict(BASE, labels=TOKENS)),
    "causal_lm_num_items": ("BertLMHeadModel", dict(is_decoder=True), dict(BASE, labels=TOKENS, num_items_in_batch=3)),
    "next_sentence": ("BertForNextSentencePrediction", {}, dict(BASE, labels=np.array([1, 0]))),
    "seq_single_label": ("BertForSequenceClassification", {}, dict(BASE, labels=np.array([2, 0]))),
    "seq_regression": ("BertForSequenceClassification", dict(num_labels=1), dict(BASE, labels=np.array([0.3, -1.2]))),
    "seq_multi_label": ("BertForSequenceClassification", {}, dict(BASE, labels=np.array([[1.0, 0, 0.5], [0, 0, 1]]))),
    "multiple_choice": ("BertForMultipleChoice", {}, dict(input_ids=MC_IDS, attention_mask=MC_MASK,
                                                          labels=np.array([2, 0]))),
    "token_classification": ("BertForTokenClassification", {}, dict(BASE, labels=np.where(TOKENS > 0, TOKENS % 3, -100))),
    "token_classification_mask_rule": ("BertForTokenClassification", {},
                                       dict(BASE, labels=TOKENS % 3, loss_uses_attention_mask=True)),
    "question_answering": ("BertForQuestionAnswering", dict(num_labels=2),
                           dict(BASE, start_positions=np.array([-1, 9]), end_positions=np.array([[3], [1]]))),
}
SMALL = dict(vocab_size=7, hidden_size=4, num_attention_heads=2, intermediate_size=5, max_position_embeddings=6,
             layer_norm_eps=1e-6)


def setup(case, **overrides):
    head, spec_overrides, kwargs = CASES[case]
    spec = tiny_spec(**{**SMALL, **spec_overrides, **overrides})
    weights = head_weights(head, spec, seed=3)
    if not spec.tie_word_embeddings and DECODER in weights:
        weights[DECODER] = RNG.normal(size=weights[WORD].shape)
    return head, spec, weights, kwargs


def loss_of(head, spec, kwargs):
    return lambda weights: heads.HEADS[head](weights, spec, **kwargs)["loss"]


def assert_directional(head, spec, weights, kwargs, grads, skip=()):
    helpers_reference.assert_directional(loss_of(head, spec, kwargs), spec, weights, grads, skip)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_parameter_matches_finite_differences(case):
    head, spec, weights, kwargs = setup(case)
    loss, grads = backward.gradients(head, weights, spec, **kwargs)
    assert set(grads) == set(weights)
    assert loss == pytest.approx(float(heads.HEADS[head](weights, spec, **kwargs)["loss"]), rel=1e-15)
    for name, g in grads.items():
        assert g.shape == np.shape(weights[name]) and np.isfinite(g).all(), name
    assert_directional(head, spec, weights, kwargs, grads)


@pytest.mark.parametrize("act", sorted(activations.ACTIVATIONS))
def test_every_activation(act):
    for case in ("masked_lm", "seq_single_label"):  # the activation in the encoder and in the MLM transform
        head, spec, weights, kwargs = setup(case, hidden_act=act, num_hidden_layers=1)
        _, grads = backward.gradients(head, weights, spec, **kwargs)
        assert_directional(head, spec, weights, kwargs, grads)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_activation_derivative(name):
    x = np.concatenate([np.linspace(-7.3, 7.1, 57), [-25.3, -11.9, 11.7, 25.1]])  # no kink within 1e-6 of a point
    f = activations.activation(name)
    numeric = (f(x + 1e-6) - f(x - 1e-6)) / 2e-6
    np.testing.assert_allclose(activations.activation_derivative(name)(x), numeric, rtol=1e-6, atol=1e-8)


def test_activation_derivative_at_kinks_follows_torch():
    zero = np.array([0.0])
    assert activations.activation_derivative("relu")(zero)[0] == 0.0
    assert activations.activation_derivative("leaky_relu")(zero)[0] == 0.01
    assert activations.activation_derivative("relu6")(np.array([0.0, 6.0])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("case", ["masked_lm", "causal_lm", "pretraining", "seq_single_label", "question_answering"])
def test_word_embeddings_entry_by_entry(case):
    """Every row but [PAD]'s is d loss; [PAD]'s row gets only the tied decoder's share (zero without a decoder),
    although the loss depends on it through the lookup."""
    head, spec, weights, kwargs = setup(case, num_hidden_layers=1)
    _, grads = backward.gradients(head, weights, spec, **kwargs)
    loss = loss_of(head, spec, kwargs)

    def with_word(w):
        return loss({k: (w if v is weights[WORD] else v) for k, v in weights.items()})

    numeric = numerical_gradient(with_word, weights[WORD], h=1e-6)
    pad = spec.pad_token_id
    rows = np.arange(spec.vocab_size) != pad
    np.testing.assert_allclose(grads[WORD][rows], numeric[rows], rtol=1e-5, atol=1e-7)
    assert np.abs(numeric[pad]).max() > 1e-6  # the loss does depend on the [PAD] row
    if DECODER in weights:  # the decoder's share alone: untie, and differentiate the decoder's copy
        untied = dict(weights, **{DECODER: weights[WORD].copy()})
        untied_spec = tiny_spec(**{**SMALL, **CASES[case][1], "num_hidden_layers": 1, "tie_word_embeddings": False})
        decoder_share = numerical_gradient(lambda d: loss_of(head, untied_spec, kwargs)(dict(untied, **{DECODER: d})),
                                           untied[DECODER], h=1e-6)
        np.testing.assert_allclose(grads[WORD][pad], decoder_share[pad], rtol=1e-5, atol=1e-7)
        assert np.array_equal(grads[DECODER], grads[WORD])
    else:
        assert not grads[WORD][pad].any()


def test_tied_decoder_gets_the_sum_of_both_uses():
    head, spec, weights, kwargs = setup("pretraining")
    _, tied = backward.gradients(head, weights, spec, **kwargs)
    untied_spec = tiny_spec(**{**SMALL, "tie_word_embeddings": False})
    untied_weights = dict(weights, **{DECODER: weights[WORD].copy()})
    _, untied = backward.gradients(head, untied_weights, untied_spec, **kwargs)
    np.testing.assert_allclose(tied[WORD], untied[WORD] + untied[DECODER], rtol=1e-13, atol=1e-15)
    assert np.array_equal(tied[DECODER], tied[WORD])
    assert tied["cls.predictions.decoder.bias"] is tied["cls.predictions.bias"]
    assert not untied[WORD][spec.pad_token_id].any()


@pytest.mark.parametrize("pad", [3, None])
def test_other_pad_token_id(pad):
    head, spec, weights, kwargs = setup("seq_single_label", pad_token_id=pad)
    _, grads = backward.gradients(head, weights, spec, **kwargs)
    assert_directional(head, spec, weights, kwargs, grads)
    if pad is None:  # no padding row: id 0 gets its gradient
        assert grads[WORD][0].any()
    else:
        assert not grads[WORD][pad].any() and grads[WORD][0].any()


def test_all_labels_ignored_gives_zero_gradients():
    head, spec, weights, kwargs = setup("masked_lm")
    with np.errstate(invalid="ignore"):
        loss, grads = backward.gradients(head, weights, spec, **dict(kwargs, labels=np.full(IDS.shape, -100)))
    assert np.isnan(loss)
    assert all(not g.any() for g in grads.values())


def test_unreached_pooler_gets_zeros():
    """BertForNextSentencePrediction with every label ignored still has a pooler; an MLM head of BertForPreTraining
    whose NSP labels are all ignored reaches the pooler only through NSP: zeros."""
    head, spec, weights, kwargs = setup("pretraining")
    _, grads = backward.gradients(head, weights, spec, **dict(kwargs, next_sentence_label=np.array([-100, -100])))
    assert not grads["bert.pooler.dense.weight"].any() and not grads["cls.seq_relationship.bias"].any()


def test_bert_model_backward_of_given_output_gradients():
    spec = tiny_spec(**SMALL)
    weights = head_weights("BertModel", spec, seed=4)
    r_hidden, r_pooled = RNG.normal(size=(2, 5, 4)), RNG.normal(size=(2, 4))
    grads = backward.backward("BertModel", weights, spec, {"last_hidden_state": r_hidden, "pooler_output": r_pooled},
                              **BASE)

    def scalar(w):
        out = heads.base_model(w, spec, **BASE)
        return (out["last_hidden_state"] * r_hidden).sum() + (out["pooler_output"] * r_pooled).sum()

    rng = np.random.default_rng(2)
    for name in sorted(weights):
        direction = rng.normal(size=weights[name].shape)
        if name == "embeddings.word_embeddings.weight":
            direction[0] = 0.0
        np.testing.assert_allclose((grads[name] * direction).sum(), directional(scalar, weights, name, direction),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


def test_refusals():
    head, spec, weights, kwargs = setup("seq_single_label")
    with pytest.raises(ReferenceInputError, match="no loss"):
        backward.gradients("BertModel", head_weights("BertModel", spec), spec, **BASE)
    with pytest.raises(ReferenceInputError, match="computes no loss"):
        backward.gradients(head, weights, spec, **BASE)
    with pytest.raises(ReferenceInputError, match="does not cover"):
        backward.gradients(head, weights, spec, **kwargs, inputs_embeds=np.ones((2, 5, 4)))
