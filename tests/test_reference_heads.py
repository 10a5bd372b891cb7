"""The oracle's own tests for reference.heads: wiring of the eight task heads, their loss and loss_grad, and refusals.

Gradients are checked against central finite differences of the head's loss rule as a function of its logits;
wiring is checked against the head's layers written out with numpy; nothing comes from torch or transformers.
"""

import inspect
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from helpers_reference import head_weights, numerical_gradient, tiny_spec
from reference import ReferenceInputError, activations, encoder, heads, losses

pytestmark = pytest.mark.reference

L = losses
RNG = np.random.default_rng(99)
IDS = RNG.integers(0, 13, (2, 4))
MASK = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
TYPES = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
BASE = dict(input_ids=IDS, attention_mask=MASK, token_type_ids=TYPES)
MLM_LABELS = np.array([[-100, 3, -100, 7], [1, -100, -100, 12]])
CAUSAL_LABELS = np.array([[5, 2, 9, -100], [1, 1, 0, 3]])
TOKEN_LABELS = np.array([[0, 2, -100, 1], [1, 1, 0, 2]])
MC_IDS = RNG.integers(0, 13, (2, 3, 4))
MC_MASK = np.array([[[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], [[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]]])
SEQ_REG_LABELS = np.array([0.3, -1.2])
MULTI_LABELS = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
EXPLICIT_REG_LABELS = RNG.normal(size=(2, 3))
QA_START, QA_END = np.array([-1, 9]), np.array([[3], [1]])  # clamped to [0, 4 = ignored] and [3 = L-1, 1]

# case -> (head, spec overrides, head kwargs, loss of the logits dict)
CASES = {
    "pretraining": (
        "BertForPreTraining", {}, dict(BASE, labels=MLM_LABELS, next_sentence_label=np.array([1, 0])),
        lambda g: L.pretraining_loss(g["prediction_logits"], g["seq_relationship_logits"], MLM_LABELS,
                                     np.array([1, 0])),
    ),
    "masked_lm": (
        "BertForMaskedLM", {}, dict(BASE, labels=MLM_LABELS), lambda g: L.masked_lm_loss(g["logits"], MLM_LABELS)
    ),
    "causal_lm": (
        "BertLMHeadModel", dict(is_decoder=True), dict(BASE, labels=CAUSAL_LABELS),
        lambda g: L.causal_lm_loss(g["logits"], CAUSAL_LABELS),
    ),
    "causal_lm_num_items": (
        "BertLMHeadModel", dict(is_decoder=True), dict(BASE, labels=CAUSAL_LABELS, num_items_in_batch=11),
        lambda g: L.causal_lm_loss(g["logits"], CAUSAL_LABELS, 11),
    ),
    "next_sentence": (
        "BertForNextSentencePrediction", {}, dict(BASE, labels=np.array([1, 0])),
        lambda g: L.next_sentence_loss(g["logits"], np.array([1, 0])),
    ),
    "seq_regression": (
        "BertForSequenceClassification", dict(num_labels=1), dict(BASE, labels=SEQ_REG_LABELS),
        lambda g: L.sequence_classification_loss(g["logits"], SEQ_REG_LABELS),
    ),
    "seq_single_label_int64": (
        "BertForSequenceClassification", {}, dict(BASE, labels=np.array([2, 0], dtype=np.int64)),
        lambda g: L.cross_entropy(g["logits"], np.array([2, 0])),
    ),
    "seq_single_label_int32": (
        "BertForSequenceClassification", {}, dict(BASE, labels=np.array([2, -100], dtype=np.int32)),
        lambda g: L.cross_entropy(g["logits"], np.array([2, -100])),
    ),
    "seq_multi_label": (
        "BertForSequenceClassification", {}, dict(BASE, labels=MULTI_LABELS),
        lambda g: L.bce_with_logits(g["logits"], MULTI_LABELS),
    ),
    "seq_explicit_regression": (
        "BertForSequenceClassification", dict(problem_type="regression"), dict(BASE, labels=EXPLICIT_REG_LABELS),
        lambda g: L.mse(g["logits"], EXPLICIT_REG_LABELS),
    ),
    "multiple_choice": (
        "BertForMultipleChoice", {}, dict(input_ids=MC_IDS, attention_mask=MC_MASK, labels=np.array([2, 0])),
        lambda g: L.multiple_choice_loss(g["logits"], np.array([2, 0])),
    ),
    "token_classification": (
        "BertForTokenClassification", {}, dict(BASE, labels=TOKEN_LABELS),
        lambda g: L.token_classification_loss(g["logits"], TOKEN_LABELS),
    ),
    "token_classification_legacy_mask": (
        "BertForTokenClassification", {}, dict(BASE, labels=TOKEN_LABELS, loss_uses_attention_mask=True),
        lambda g: L.token_classification_loss(g["logits"], TOKEN_LABELS, MASK),
    ),
    "question_answering": (
        "BertForQuestionAnswering", dict(num_labels=2), dict(BASE, start_positions=QA_START, end_positions=QA_END),
        lambda g: L.question_answering_loss(g["start_logits"], g["end_logits"], QA_START, QA_END),
    ),
}

GRAD_NAMES = {
    "BertForPreTraining": {"prediction_logits", "seq_relationship_logits"},
    "BertForQuestionAnswering": {"start_logits", "end_logits"},
}
LABEL_ARGS = ("labels", "next_sentence_label", "start_positions", "end_positions", "num_items_in_batch",
              "loss_uses_attention_mask")


def run_case(case):
    head, overrides, kwargs, loss_of = CASES[case]
    spec = tiny_spec(**overrides)
    out = heads.HEADS[head](head_weights(head, spec), spec, **kwargs)
    return head, out, loss_of


def test_every_head_that_takes_labels_has_a_case():
    takes_labels = {
        name for name, fn in heads.HEADS.items()
        if {"labels", "start_positions"} & set(inspect.signature(fn).parameters)
    }
    assert takes_labels == {head for head, *_ in CASES.values()}
    assert len(takes_labels) == 8


@pytest.mark.parametrize("case", sorted(CASES))
def test_head_loss_and_loss_grad(case):
    head, out, loss_of = run_case(case)
    names = GRAD_NAMES.get(head, {"logits"})
    assert set(out["loss_grad"]) == names
    logits = {name: out[name] for name in names}
    # the loss is the rule applied to the head's own logits
    assert np.isfinite(out["loss"])
    assert out["loss"] == loss_of(logits)
    for name in names:
        grad = out["loss_grad"][name]
        assert grad.shape == out[name].shape
        numeric = numerical_gradient(lambda x: loss_of({**logits, name: x}), out[name])
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_head_gradients_are_exactly_zero_where_the_rule_ignores():
    _, out, _ = run_case("masked_lm")
    assert (out["loss_grad"]["logits"][MLM_LABELS == -100] == 0.0).all()
    assert (out["loss_grad"]["logits"][MLM_LABELS != -100] != 0.0).all()
    _, out, _ = run_case("causal_lm")
    grad = out["loss_grad"]["logits"]
    assert (grad[:, -1] == 0.0).all() and (grad[0, 2] == 0.0).all()  # last position; next label -100
    _, out, _ = run_case("token_classification")
    assert (out["loss_grad"]["logits"][1, 3] != 0.0).all()  # padded but labelled: counted by the current rule
    _, out, _ = run_case("token_classification_legacy_mask")
    assert (out["loss_grad"]["logits"][1, 3] == 0.0).all()  # the legacy rule ignores mask 0
    assert (out["loss_grad"]["logits"][0, 2] == 0.0).all()  # and -100
    _, out, _ = run_case("question_answering")
    assert (out["loss_grad"]["start_logits"][1] == 0.0).all()  # start position 9 -> clamped to L -> ignored
    assert (out["loss_grad"]["end_logits"] != 0.0).all()


def test_causal_lm_num_items_in_batch_divides_the_sum():
    _, mean_out, _ = run_case("causal_lm")
    _, sum_out, _ = run_case("causal_lm_num_items")
    counted = (L.shift_labels(CAUSAL_LABELS) != -100).sum()  # 2 + 3 = 5
    assert counted == 5
    np.testing.assert_allclose(sum_out["loss"] * 11, mean_out["loss"] * 5, rtol=1e-13)
    np.testing.assert_allclose(sum_out["loss_grad"]["logits"] * 11, mean_out["loss_grad"]["logits"] * 5, rtol=1e-13,
                               atol=1e-17)


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_loss_without_labels(case):
    head, overrides, kwargs, _ = CASES[case]
    spec = tiny_spec(**overrides)
    w = head_weights(head, spec)
    bare = {k: v for k, v in kwargs.items() if k not in LABEL_ARGS}
    out = heads.HEADS[head](w, spec, **bare)
    assert "loss" not in out and "loss_grad" not in out
    full = heads.HEADS[head](w, spec, **kwargs)
    for name, value in out.items():
        np.testing.assert_array_equal(value, full[name])


def test_pretraining_and_question_answering_need_both_label_tensors():
    spec = tiny_spec()
    w = head_weights("BertForPreTraining", spec)
    assert "loss" not in heads.pretraining(w, spec, IDS, labels=MLM_LABELS)
    assert "loss" not in heads.pretraining(w, spec, IDS, next_sentence_label=np.array([0, 1]))
    spec = tiny_spec(num_labels=2)
    w = head_weights("BertForQuestionAnswering", spec)
    assert "loss" not in heads.question_answering(w, spec, IDS, start_positions=QA_START)
    assert "loss" not in heads.question_answering(w, spec, IDS, end_positions=QA_END)


# --- wiring ---------------------------------------------------------------------------------------------------------


def _dense(x, w, name):
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def test_head_logits_are_the_documented_layers_on_the_encoder():
    spec = tiny_spec()
    # sequence classification and next sentence: a dense layer on tanh(dense(first token))
    for head, name in (("BertForSequenceClassification", "classifier"), ("BertForNextSentencePrediction",
                                                                           "cls.seq_relationship")):
        w = head_weights(head, spec)
        out = heads.HEADS[head](w, spec, **BASE)
        pooled = np.tanh(_dense(out["last_hidden_state"][:, 0], w, "bert.pooler.dense"))
        np.testing.assert_allclose(out["logits"], _dense(pooled, w, name), rtol=1e-13, atol=1e-14)
    # token classification: a dense layer on every position
    w = head_weights("BertForTokenClassification", spec)
    out = heads.token_classification(w, spec, **BASE)
    np.testing.assert_allclose(out["logits"], _dense(out["last_hidden_state"], w, "classifier"), rtol=1e-13, atol=1e-14)
    assert out["logits"].shape == (2, 4, 3)
    # question answering: column 0 of qa_outputs is the start, column 1 the end
    spec2 = tiny_spec(num_labels=2)
    w = head_weights("BertForQuestionAnswering", spec2)
    out = heads.question_answering(w, spec2, **BASE)
    both = _dense(out["last_hidden_state"], w, "qa_outputs")
    np.testing.assert_allclose(out["start_logits"], both[..., 0], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(out["end_logits"], both[..., 1], rtol=1e-13, atol=1e-14)
    assert out["start_logits"].shape == out["end_logits"].shape == (2, 4)


@pytest.mark.parametrize("head", ["BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel"])
def test_lm_prediction_head_is_dense_act_layernorm_then_tied_decoder(head):
    spec = tiny_spec(is_decoder=head == "BertLMHeadModel")
    w = head_weights(head, spec)
    out = heads.HEADS[head](w, spec, **BASE)
    key = "prediction_logits" if head == "BertForPreTraining" else "logits"
    h = activations.gelu(_dense(out["last_hidden_state"], w, "cls.predictions.transform.dense"))
    h = encoder.layer_norm(h, w["cls.predictions.transform.LayerNorm.weight"],
                           w["cls.predictions.transform.LayerNorm.bias"], spec.layer_norm_eps)
    expected = h @ w["bert.embeddings.word_embeddings.weight"].T + w["cls.predictions.bias"]
    np.testing.assert_allclose(out[key], expected, rtol=1e-13, atol=1e-13)
    assert out[key].shape == (2, 4, spec.vocab_size)
    if head == "BertForPreTraining":
        pooled = np.tanh(_dense(out["last_hidden_state"][:, 0], w, "bert.pooler.dense"))
        np.testing.assert_allclose(out["seq_relationship_logits"], _dense(pooled, w, "cls.seq_relationship"),
                                   rtol=1e-13, atol=1e-14)


def test_base_model_is_the_unprefixed_encoder():
    spec = tiny_spec()
    w = head_weights("BertModel", spec)
    out = heads.base_model(w, spec, **BASE)
    hidden, pooled = encoder.bert_model({"bert." + k: v for k, v in w.items()}, spec, **BASE)
    np.testing.assert_array_equal(out["last_hidden_state"], hidden)
    np.testing.assert_array_equal(out["pooler_output"], pooled)


def test_float32_weights_are_computed_in_float64():
    spec = tiny_spec()
    w32 = {k: v.astype(np.float32) for k, v in head_weights("BertForSequenceClassification", spec).items()}
    out = heads.sequence_classification(w32, spec, **BASE)
    assert out["logits"].dtype == np.float64
    ref = heads.sequence_classification({k: v.astype(np.float64) for k, v in w32.items()}, spec, **BASE)
    np.testing.assert_array_equal(out["logits"], ref["logits"])


def test_causal_lm_logits_at_t_do_not_depend_on_later_tokens():
    spec = tiny_spec(is_decoder=True)
    w = head_weights("BertLMHeadModel", spec)
    ids = RNG.integers(0, 13, (2, 5))
    base = heads.causal_lm(w, spec, ids)["logits"]
    changed = ids.copy()
    changed[:, 3:] = (ids[:, 3:] + 4) % 13
    other = heads.causal_lm(w, spec, changed)["logits"]
    np.testing.assert_allclose(other[:, :3], base[:, :3], rtol=0, atol=1e-12)
    assert np.abs(other[:, 3:] - base[:, 3:]).max() > 1e-6


# --- multiple choice ----------------------------------------------------------------------------------------------


def test_multiple_choice_row_b_holds_example_b_choices_in_order():
    spec = tiny_spec()
    w = head_weights("BertForMultipleChoice", spec)
    out = heads.multiple_choice(w, spec, MC_IDS, MC_MASK)
    assert out["logits"].shape == (2, 3)
    for b in range(2):
        for c in range(3):
            _, pooled = encoder.bert_model(w, spec, MC_IDS[b, c][None], MC_MASK[b, c][None])
            np.testing.assert_allclose(out["logits"][b, c], _dense(pooled, w, "classifier")[0, 0], rtol=1e-12,
                                       atol=1e-12)


@pytest.mark.parametrize("perm", [(1, 2, 0), (2, 1, 0), (0, 2, 1)])
def test_multiple_choice_permuting_choices_permutes_logits(perm):
    spec = tiny_spec()
    w = head_weights("BertForMultipleChoice", spec)
    types = np.zeros_like(MC_IDS)
    types[..., 2:] = 1
    perm = list(perm)
    out = heads.multiple_choice(w, spec, MC_IDS, MC_MASK, types, labels=np.array([2, 0]))
    permuted = heads.multiple_choice(w, spec, MC_IDS[:, perm], MC_MASK[:, perm], types[:, perm],
                                     labels=np.array([perm.index(2), perm.index(0)]))
    np.testing.assert_allclose(permuted["logits"], out["logits"][:, perm], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(permuted["loss"], out["loss"], rtol=1e-12)
    assert not np.allclose(permuted["logits"], out["logits"])


# --- refused input ------------------------------------------------------------------------------------------------


def test_multiple_choice_refuses_two_dimensional_input_ids():
    spec = tiny_spec()
    with pytest.raises(ReferenceInputError):
        heads.multiple_choice(head_weights("BertForMultipleChoice", spec), spec, IDS)


@pytest.mark.parametrize("num_labels", [1, 3])
def test_question_answering_refuses_num_labels_other_than_2(num_labels):
    spec = tiny_spec(num_labels=num_labels)
    with pytest.raises(ReferenceInputError):
        heads.question_answering(head_weights("BertForQuestionAnswering", spec), spec, IDS)


@pytest.mark.parametrize(
    "head,overrides,kwargs",
    [
        ("BertForSequenceClassification", {}, dict(labels=np.array([3, 0]))),  # = num_labels
        ("BertForSequenceClassification", {}, dict(labels=np.array([[1, 0, 1], [0, 1, 1]]),
                                                   )),  # int labels, [B, C]: CE with a wrong shape
        ("BertForTokenClassification", {}, dict(labels=np.zeros((2, 3), dtype=np.int64))),
        ("BertForMaskedLM", {}, dict(labels=np.full((2, 4), 13))),  # = vocab_size
        ("BertForNextSentencePrediction", {}, dict(labels=np.array([2, 0]))),
        ("BertForPreTraining", {}, dict(labels=MLM_LABELS, next_sentence_label=np.array([0.0, 1.0]))),
        ("BertForQuestionAnswering", dict(num_labels=2), dict(start_positions=np.array([0.0, 1.0]),
                                                            end_positions=np.array([0, 1]))),
        ("BertForSequenceClassification", {}, dict(input_ids=np.array([[1, 13, 2, 3], [1, 2, 3, 4]]))),
        ("BertForTokenClassification", {}, dict(attention_mask=np.array([[1, 1, 1, 1], [0, 0, 0, 0]]))),
    ],
)
def test_heads_refuse_bad_labels_and_inputs(head, overrides, kwargs):
    spec = tiny_spec(**overrides)
    call = dict(BASE, **kwargs)
    with pytest.raises(ReferenceInputError):
        heads.HEADS[head](head_weights(head, spec), spec, **call)


def test_reference_imports_neither_torch_nor_transformers():
    code = "import sys, reference; bad = {'torch', 'transformers'} & set(sys.modules); assert not bad, bad"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=pathlib.Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
