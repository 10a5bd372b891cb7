"""Head options and forward contracts (`reference.options`, `conformance/checks/options.py`): the reference rules
against hand-written ones, and each check failing on an implementation that breaks its contract."""

import numpy as np
import pytest

from conformance.adapters.transformers import TransformersAdapter
from conformance.case import Case
from conformance.checks.options import inputs_unchanged, label_sets, nsp_alias, problem_type_persists
from conformance.registry import CHECKS_BY_ID
from conformance.runner import run_check
from conformance.targets import Target
from reference import ReferenceInputError, losses, options

NEWEST_RULES = pytest.mark.skipif(
    not TransformersAdapter().has("nsp-alias-removed"),
    reason="states what the installed release does under 5.x's rules; older releases are checked by the suite itself")


T64 = Target("cpu", "float64", "eager")
CONFIG = dict(vocab_size=8, hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=4,
              hidden_act="gelu", layer_norm_eps=1e-12, max_position_embeddings=20, type_vocab_size=2,
              is_decoder=False, num_labels=3)


# --- the reference ------------------------------------------------------------------------------------------------

def test_problem_type_kept_from_the_first_call():
    ints, floats = np.array([0, 2]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert options.problem_type_after_calls(3, [ints, floats]) == [losses.SINGLE_LABEL] * 2
    assert options.problem_type_after_calls(3, [floats, ints]) == [losses.MULTI_LABEL] * 2
    assert options.problem_type_after_calls(3, [floats, ints], persists=False) == [losses.MULTI_LABEL,
                                                                                   losses.SINGLE_LABEL]
    assert options.problem_type_after_calls(3, [floats, ints], problem_type="regression") == ["regression"] * 2
    assert options.problem_type_after_calls(1, [ints, floats]) == ["regression"] * 2


def test_labels_unlike_the_kept_type_are_refused():
    logits = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]])
    with pytest.raises(ReferenceInputError) as err:
        options.loss_with_problem_type(logits, np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), losses.SINGLE_LABEL)
    assert err.value.expected is options.LABELS_UNLIKE_TYPE
    with pytest.raises(ReferenceInputError):
        options.loss_with_problem_type(logits, np.array([0, 2]), losses.MULTI_LABEL)
    loss, grad = options.loss_with_problem_type(logits, np.array([0, 2]), losses.SINGLE_LABEL)
    by_hand = -np.mean([logits[i, c] - np.log(np.exp(logits[i]).sum()) for i, c in enumerate((0, 2))])
    assert loss == pytest.approx(by_hand, rel=1e-12) and grad.shape == logits.shape


def test_one_label_single_label_rule():
    assert options.one_label_problem_type("single_label_classification", False) == "single_label_classification"
    with pytest.raises(ReferenceInputError) as err:
        options.one_label_problem_type("single_label_classification", True)
    assert err.value.expected is options.ONE_LABEL_SINGLE
    assert options.one_label_problem_type("regression", True) == "regression"


def test_positions_after_forward():
    positions = np.array([[-2], [1], [9]])
    assert options.positions_after_forward(positions, 4, True).tolist() == [[0], [1], [4]]
    assert options.positions_after_forward(positions, 4, False).tolist() == positions.tolist()


# --- the checks fail on a broken contract ------------------------------------------------------------------------

class ClaimsOld(TransformersAdapter):
    """The installed release, claiming the rules before 4.7 (in-place clamping) and before 5.0 (the NSP alias)."""

    def has(self, change_id):
        if change_id in ("qa-positions-clamped-out-of-place", "nsp-alias-removed"):
            return False
        return super().has(change_id)


class Writes(TransformersAdapter):
    """Writes into the caller's labels (as a forward that masks them in place would)."""

    def inputs_after_forward(self, case, attn="eager", device="cpu", dtype="float64"):
        after = super().inputs_after_forward(case, attn, device, dtype)
        if "labels" in after:
            after["labels"] = after["labels"].copy()
            after["labels"][..., 0] = -100
        return after


class Forgets(TransformersAdapter):
    """Does not keep the problem type between calls (each call on a freshly reset model)."""

    def run_in_sequence(self, case, label_sets, attn="eager", device="cpu", dtype="float64"):
        results = []
        for labels in label_sets:
            one = Case(case.head, case.config, case.weights_seed, case.inputs, labels)
            results.append(self.run(one, attn, device, dtype)[0])
        return results, None


def qa_case():
    return Case("BertForQuestionAnswering", dict(CONFIG, num_labels=2), 0, {"input_ids": np.array([[1, 2, 3]])},
                {"start_positions": np.array([-2]), "end_positions": np.array([[9]])})


@NEWEST_RULES
def test_no_input_writes_passes_and_sees_writes():
    assert all(r.ok for r in inputs_unchanged(TransformersAdapter(), qa_case(), T64))
    assert not all(r.ok for r in inputs_unchanged(ClaimsOld(), qa_case(), T64))  # 5.x does not clamp in place
    case = Case("BertForSequenceClassification", CONFIG, 0, {"input_ids": np.array([[1, 2, 3]])},
                {"labels": np.array([2])})
    assert not all(r.ok for r in inputs_unchanged(Writes(), case, T64))


@NEWEST_RULES
def test_nsp_alias_rule_per_release():
    case = Case("BertForNextSentencePrediction", CONFIG, 3, {"input_ids": np.array([[1, 2, 3], [4, 5, 6]])},
                {"labels": np.array([0, 1])})
    assert all(r.ok for r in nsp_alias(TransformersAdapter(), case, T64))  # 5.x: ignored, no loss
    assert not all(r.ok for r in nsp_alias(ClaimsOld(), case, T64))  # a loss is expected, none computed


@NEWEST_RULES
def test_problem_type_persistence_seen():
    case = Case("BertForSequenceClassification", CONFIG, 2, {"input_ids": np.array([[1, 2, 3], [3, 4, 5]])},
                {"labels": np.array([0, 2])})
    assert [s["labels"].dtype.kind for s in label_sets(case)] == ["i", "f"]
    assert all(r.ok for r in problem_type_persists(TransformersAdapter(), case, T64))
    assert not all(r.ok for r in problem_type_persists(Forgets(), case, T64))


@NEWEST_RULES
def test_single_label_one_label_refused_on_5x():
    check = CHECKS_BY_ID["options.num_labels_one.single_label_classification"]
    case = Case("BertForSequenceClassification", dict(CONFIG, num_labels=1,
                                                      problem_type="single_label_classification"), 0,
                {"input_ids": np.array([[1, 2, 3]])}, {"labels": np.array([0])})
    results = run_check(check, TransformersAdapter(), case, T64)
    assert [r.key for r in results] == ["refusal"] and results[0].ok
