"""The oracle's own tests for reference.losses: hand-computed values, edge semantics, invariants, gradients, errors.

Every expected number below is worked on paper (the arithmetic is in the comment next to it) or follows from an
invariant or from central finite differences; nothing comes from torch or transformers.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers_reference import assert_matches_finite_differences
from reference import ReferenceInputError, losses

pytestmark = pytest.mark.reference

LN2, LN3 = math.log(2.0), math.log(3.0)
E = math.e
CLOSE = dict(rtol=1e-12, atol=1e-15)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, **CLOSE)


# --- hand-computed values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes", [2, 3, 7, 1000])
@pytest.mark.parametrize("level", [0.0, 7.5, -300.0])
def test_cross_entropy_of_uniform_logits_is_log_num_classes(num_classes, level):
    # softmax of equal logits is 1/C for every class, so -log p = log C whatever the label
    logits = np.full((4, num_classes), level)
    labels = np.array([0, num_classes - 1, num_classes // 2, 0])
    close(losses.cross_entropy(logits, labels), math.log(num_classes))


CE_LOGITS = np.array([[0.0, 1.0], [2.0, 0.0], [5.0, -5.0]])
CE_LABELS = np.array([1, 0, -100])
# row 0: -log(e^1 / (e^0 + e^1)) = log(1 + e) - 1 = log(1 + e^-1)
# row 1: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2)
# row 2: ignored (-100)
CE_ROW_NLL = [math.log1p(math.exp(-1.0)), math.log1p(math.exp(-2.0))]
# d/dlogits: row 0 softmax - onehot = [1/(1+e), e/(1+e) - 1] = [1/(1+e), -1/(1+e)]
#            row 1 softmax - onehot = [e^2/(1+e^2) - 1, 1/(1+e^2)] = [-1/(1+e^2), 1/(1+e^2)]
CE_ROW_GRAD_NUMERATOR = np.array([[1 / (1 + E), -1 / (1 + E)], [-1 / (1 + E**2), 1 / (1 + E**2)], [0.0, 0.0]])


def test_cross_entropy_two_counted_rows_and_one_ignored_row():
    loss = losses.cross_entropy(CE_LOGITS, CE_LABELS)
    close(loss, (CE_ROW_NLL[0] + CE_ROW_NLL[1]) / 2)  # mean over the 2 counted rows
    grad = losses.cross_entropy_grad(CE_LOGITS, CE_LABELS)
    close(grad, CE_ROW_GRAD_NUMERATOR / 2)
    assert (grad[2] == 0.0).all()


def test_cross_entropy_with_num_items_in_batch_divides_the_sum_by_it():
    loss = losses.cross_entropy(CE_LOGITS, CE_LABELS, num_items_in_batch=4)
    close(loss, (CE_ROW_NLL[0] + CE_ROW_NLL[1]) / 4)  # sum / 4, not / 2
    close(losses.cross_entropy_grad(CE_LOGITS, CE_LABELS, num_items_in_batch=4), CE_ROW_GRAD_NUMERATOR / 4)


def test_cross_entropy_accepts_int32_labels_like_int64():
    assert losses.cross_entropy(CE_LOGITS, CE_LABELS.astype(np.int32)) == losses.cross_entropy(CE_LOGITS, CE_LABELS)


def test_mse_hand_computed():
    # ((1 - 0)^2 + (2 - 4)^2) / 2 = 5 / 2; grad 2 (p - t) / 2 = p - t
    close(losses.mse(np.array([1.0, 2.0]), np.array([0.0, 4.0])), 2.5)
    close(losses.mse_grad(np.array([1.0, 2.0]), np.array([0.0, 4.0])), [1.0, -2.0])
    # 2-D: diffs [[1, 0], [0, -3]] -> (1 + 9) / 4; grad 2 diff / 4
    p, t = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 7.0]])
    close(losses.mse(p, t), 2.5)
    close(losses.mse_grad(p, t), [[0.5, 0.0], [0.0, -1.5]])


def test_bce_with_logits_hand_computed():
    # x=0, y=1: -log sigmoid(0) = log 2;  x=log 3, y=0: -log(1 - 3/4) = log 4;  mean = (log 2 + 2 log 2) / 2
    logits, target = np.array([0.0, LN3]), np.array([1.0, 0.0])
    close(losses.bce_with_logits(logits, target), 1.5 * LN2)
    # (sigmoid(x) - y) / 2 = [(1/2 - 1) / 2, (3/4 - 0) / 2]
    close(losses.bce_with_logits_grad(logits, target), [-0.25, 0.375])
    # soft target: x=0 gives log 2 whatever y; grad (1/2 - 1/4) / 1
    close(losses.bce_with_logits(np.array([0.0]), np.array([0.25])), LN2)
    close(losses.bce_with_logits_grad(np.array([0.0]), np.array([0.25])), [0.25])


# sequence classification ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_shape", [(2,), (2, 1)])
def test_sequence_classification_regression_squeezes_one_label(label_shape):
    logits = np.array([[1.0], [2.0]])  # [B, 1]
    labels = np.array([0.5, 4.0]).reshape(label_shape)
    # ((1 - 0.5)^2 + (2 - 4)^2) / 2 = (0.25 + 4) / 2
    close(losses.sequence_classification_loss(logits, labels), 2.125)
    grad = losses.sequence_classification_loss_grad(logits, labels)
    assert grad.shape == (2, 1)
    close(grad, [[0.5], [-2.0]])  # 2 (p - t) / 2


def test_sequence_classification_regression_batch_of_one():
    # [1, 1] logits vs [1] labels both squeeze to scalars: (3 - 1)^2 = 4, grad 2 (3 - 1) = 4
    close(losses.sequence_classification_loss(np.array([[3.0]]), np.array([1.0])), 4.0)
    close(losses.sequence_classification_loss_grad(np.array([[3.0]]), np.array([1.0])), [[4.0]])


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_sequence_classification_single_label(dtype):
    logits = np.array([[LN3, 0.0], [0.0, 0.0]])
    labels = np.array([0, 1], dtype=dtype)
    # row 0: -log(3 / (3 + 1)) = log(4/3); row 1: log 2
    close(losses.sequence_classification_loss(logits, labels), (math.log(4 / 3) + LN2) / 2)
    # row 0: ([3/4, 1/4] - [1, 0]) / 2; row 1: ([1/2, 1/2] - [0, 1]) / 2
    close(losses.sequence_classification_loss_grad(logits, labels), [[-0.125, 0.125], [0.25, -0.25]])
    assert losses.infer_problem_type(2, labels) == losses.SINGLE_LABEL


def test_sequence_classification_multi_label_float_labels():
    logits = np.array([[0.0, LN3], [LN3, 0.0]])
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    # elements: log 2, log 4, log 4, log 2 -> mean (2 log 2 + 4 log 2) / 4 = 1.5 log 2
    close(losses.sequence_classification_loss(logits, labels), 1.5 * LN2)
    # (sigmoid - y) / 4: (1/2 - 1)/4 = -1/8, (3/4 - 0)/4 = 3/16
    close(losses.sequence_classification_loss_grad(logits, labels), [[-0.125, 0.1875], [0.1875, -0.125]])
    # the same logits with integer labels [0, 1] are single-label: -log(1/4) twice -> log 4
    close(losses.sequence_classification_loss(logits, np.array([0, 1])), 2 * LN2)


def test_sequence_classification_explicit_regression_with_several_labels():
    logits = np.array([[1.0, 2.0], [3.0, 4.0]])
    labels = np.array([[1.0, 0.0], [3.0, 6.0]])
    # diffs [[0, 2], [0, -2]] -> (4 + 4) / 4 = 2; grad 2 diff / 4
    close(losses.sequence_classification_loss(logits, labels, "regression"), 2.0)
    close(losses.sequence_classification_loss_grad(logits, labels, "regression"), [[0.0, 1.0], [0.0, -1.0]])
    # without the explicit type, float labels with 2 logits mean multi-label BCE instead
    assert losses.sequence_classification_loss(logits, labels) != 2.0


def test_infer_problem_type_rules():
    assert losses.infer_problem_type(1, np.array([1, 2])) == losses.REGRESSION
    assert losses.infer_problem_type(1, np.array([1.0])) == losses.REGRESSION
    assert losses.infer_problem_type(3, np.array([1], dtype=np.int64)) == losses.SINGLE_LABEL
    assert losses.infer_problem_type(3, np.array([1], dtype=np.int32)) == losses.SINGLE_LABEL
    assert losses.infer_problem_type(3, np.array([1], dtype=np.int16)) == losses.MULTI_LABEL
    assert losses.infer_problem_type(3, np.array([[1.0, 0.0, 1.0]])) == losses.MULTI_LABEL
    # an explicit problem type wins over num_labels and dtype
    assert losses.infer_problem_type(1, np.array([1]), losses.SINGLE_LABEL) == losses.SINGLE_LABEL
    assert losses.infer_problem_type(3, np.array([1]), losses.REGRESSION) == losses.REGRESSION


# per-token rules ----------------------------------------------------------------------------------------------

TOK_LOGITS = np.array([[[0.0, LN3], [LN3, 0.0]], [[5.0, 5.0], [0.0, 0.0]]])  # [B=2, L=2, C=2]
TOK_LABELS = np.array([[1, 0], [1, -100]])
TOK_MASK = np.array([[1, 1], [0, 1]])
LOG_4_3 = math.log(4 / 3)


def test_token_classification_without_mask():
    # (0,0): -log(3/4); (0,1): -log(3/4); (1,0): equal logits -> log 2; (1,1): -100
    close(losses.token_classification_loss(TOK_LOGITS, TOK_LABELS), (2 * LOG_4_3 + LN2) / 3)
    grad = losses.token_classification_loss_grad(TOK_LOGITS, TOK_LABELS)
    close(grad[1, 0], [0.5 / 3, -0.5 / 3])  # ([1/2, 1/2] - [0, 1]) / 3
    assert (grad[1, 1] == 0.0).all()


def test_token_classification_legacy_mask_ignores_padded_positions():
    # position (1, 0) has mask 0: only (0,0) and (0,1) remain -> log(4/3)
    close(losses.token_classification_loss(TOK_LOGITS, TOK_LABELS, TOK_MASK), LOG_4_3)
    grad = losses.token_classification_loss_grad(TOK_LOGITS, TOK_LABELS, TOK_MASK)
    close(grad[0, 0], [0.125, -0.125])  # ([1/4, 3/4] - [0, 1]) / 2
    close(grad[0, 1], [-0.125, 0.125])  # ([3/4, 1/4] - [1, 0]) / 2
    assert (grad[1] == 0.0).all()
    # with num_items_in_batch the sum 2 log(4/3) is divided by it
    close(losses.token_classification_loss(TOK_LOGITS, TOK_LABELS, TOK_MASK, num_items_in_batch=5), 2 * LOG_4_3 / 5)


def test_masked_lm_loss_hand_computed():
    logits = np.array([[[0.0, 0.0, 0.0], [LN2, 0.0, 0.0], [9.0, -9.0, 0.0]]])  # [1, 3, V=3]
    labels = np.array([[2, 0, -100]])
    # position 0: uniform -> log 3; position 1: -log(2 / (2 + 1 + 1)) = log 2; position 2 ignored
    close(losses.masked_lm_loss(logits, labels), (LN3 + LN2) / 2)
    close(losses.masked_lm_loss(logits, labels, num_items_in_batch=3), (LN3 + LN2) / 3)
    grad = losses.masked_lm_loss_grad(logits, labels)
    close(grad[0, 1], [-0.25, 0.125, 0.125])  # ([1/2, 1/4, 1/4] - [1, 0, 0]) / 2
    assert (grad[0, 2] == 0.0).all()


def test_shift_labels_shifts_within_each_row():
    labels = np.array([[0, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(losses.shift_labels(labels), [[1, 0, -100], [1, 1, -100]])


CAUSAL_LOGITS = np.array([[[0.0, LN3], [0.0, LN3], [100.0, -100.0]]])  # [1, L=3, C=2]
CAUSAL_LABELS = np.array([[0, 1, 0]])


def test_causal_lm_scores_position_t_against_label_t_plus_1():
    # shifted labels [1, 0, -100]: position 0 vs label 1: -log(3/4); position 1 vs label 0: -log(1/4); last ignored
    close(losses.causal_lm_loss(CAUSAL_LOGITS, CAUSAL_LABELS), (LOG_4_3 + 2 * LN2) / 2)
    close(losses.causal_lm_loss(CAUSAL_LOGITS, CAUSAL_LABELS, num_items_in_batch=4), (LOG_4_3 + 2 * LN2) / 4)
    grad = losses.causal_lm_loss_grad(CAUSAL_LOGITS, CAUSAL_LABELS)
    close(grad[0, 0], [0.125, -0.125])  # ([1/4, 3/4] - [0, 1]) / 2
    close(grad[0, 1], [-0.375, 0.375])  # ([1/4, 3/4] - [1, 0]) / 2
    assert (grad[0, 2] == 0.0).all()
    # the first label is never scored
    other_first = CAUSAL_LABELS.copy()
    other_first[0, 0] = 1
    assert losses.causal_lm_loss(CAUSAL_LOGITS, other_first) == losses.causal_lm_loss(CAUSAL_LOGITS, CAUSAL_LABELS)


# sentence-level rules -----------------------------------------------------------------------------------------

NSP_LOGITS = np.array([[0.0, LN3], [LN3, 0.0]])
NSP_LABELS = np.array([0, 0])
NSP_VALUE = (2 * LN2 + LOG_4_3) / 2  # row 0: -log(1/4); row 1: -log(3/4)


def test_next_sentence_loss_hand_computed():
    close(losses.next_sentence_loss(NSP_LOGITS, NSP_LABELS), NSP_VALUE)
    close(losses.next_sentence_loss(NSP_LOGITS, NSP_LABELS[:, None]), NSP_VALUE)  # [B, 1] labels are flattened
    # row 0: ([1/4, 3/4] - [1, 0]) / 2; row 1: ([3/4, 1/4] - [1, 0]) / 2
    close(losses.next_sentence_loss_grad(NSP_LOGITS, NSP_LABELS), [[-0.375, 0.375], [-0.125, 0.125]])


def test_multiple_choice_logits_reshape_order():
    scores = np.arange(6.0).reshape(6, 1)  # flattened (example, choice) pairs in row-major order
    np.testing.assert_array_equal(losses.multiple_choice_logits(scores, 3), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(losses.multiple_choice_logits(scores, 2), [[0, 1], [2, 3], [4, 5]])


def test_multiple_choice_loss_hand_computed():
    reshaped = losses.multiple_choice_logits(np.array([[0.0], [LN3], [LN3], [0.0]]), 2)  # [[0, ln3], [ln3, 0]]
    labels = np.array([1, 0])
    close(losses.multiple_choice_loss(reshaped, labels), LOG_4_3)  # both rows -log(3/4)
    close(losses.multiple_choice_loss_grad(reshaped, labels), [[0.125, -0.125], [-0.125, 0.125]])


MLM_LOGITS = np.array([[[0.0, 0.0, 0.0], [LN2, 0.0, 0.0], [9.0, -9.0, 0.0]]])
MLM_LABELS = np.array([[2, 0, -100]])


def test_pretraining_loss_is_mlm_plus_nsp():
    loss = losses.pretraining_loss(MLM_LOGITS, NSP_LOGITS[:1], MLM_LABELS, NSP_LABELS[:1])
    # mlm (log 3 + log 2) / 2, nsp row 0 alone -log(1/4)
    close(loss, (LN3 + LN2) / 2 + 2 * LN2)
    grad_mlm, grad_nsp = losses.pretraining_loss_grad(MLM_LOGITS, NSP_LOGITS[:1], MLM_LABELS, NSP_LABELS[:1])
    np.testing.assert_array_equal(grad_mlm, losses.masked_lm_loss_grad(MLM_LOGITS, MLM_LABELS))
    np.testing.assert_array_equal(grad_nsp, losses.next_sentence_loss_grad(NSP_LOGITS[:1], NSP_LABELS[:1]))


# question answering ---------------------------------------------------------------------------------------------

QA_START = np.array([[LN2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # [B=4, L=3]
QA_END = np.array([[LN2, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
QA_START_POS = np.array([-5, 3, 10, 2])  # clamped to [0, 3, 3, 2]: rows 1, 2 ignored, row 3 (= L-1) counted
QA_END_POS = np.array([0, 1, 2, 7])  # clamped to [0, 1, 2, 3]: row 3 ignored
# start: row 0 -log(2/4) = log 2, row 3 uniform log 3 -> mean over its 2 counted rows
# end: row 0 log 2, rows 1, 2 log 3 -> mean over its 3 counted rows
QA_VALUE = ((LN2 + LN3) / 2 + (LN2 + 2 * LN3) / 3) / 2


@pytest.mark.parametrize("shape", ["flat", "column"])
def test_question_answering_loss_clamps_and_counts_each_side(shape):
    start, end = (QA_START_POS, QA_END_POS) if shape == "flat" else (QA_START_POS[:, None], QA_END_POS[:, None])
    close(losses.question_answering_loss(QA_START, QA_END, start, end), QA_VALUE)
    g_start, g_end = losses.question_answering_loss_grad(QA_START, QA_END, start, end)
    # start rows (softmax - onehot) / 2 counted / 2 halves: row 0 ([1/2,1/4,1/4] - e0) / 4, row 3 ([1/3]*3 - e2) / 4
    close(g_start, [[-1 / 8, 1 / 16, 1 / 16], [0, 0, 0], [0, 0, 0], [1 / 12, 1 / 12, -1 / 6]])
    # end rows / 3 counted / 2 halves: row 0 ([1/2,1/4,1/4] - e0) / 6, row 1 ([1/3]*3 - e1) / 6, row 2 (... - e2) / 6
    close(g_end, [[-1 / 12, 1 / 24, 1 / 24], [1 / 18, -1 / 9, 1 / 18], [1 / 18, 1 / 18, -1 / 9], [0, 0, 0]])
    assert (g_start[1:3] == 0.0).all() and (g_end[3] == 0.0).all()


def test_question_answering_clamp_positions():
    np.testing.assert_array_equal(losses.clamp_positions(np.array([-7, -1, 0, 2, 3, 4, 99]), 3), [0, 0, 0, 2, 3, 3, 3])
    np.testing.assert_array_equal(losses.clamp_positions(np.array([[-1], [5]]), 3), [0, 3])
    # negative positions score exactly like position 0
    a = losses.question_answering_loss(QA_START, QA_END, np.array([-1, 0, 0, 0]), QA_END_POS)
    b = losses.question_answering_loss(QA_START, QA_END, np.array([0, 0, 0, 0]), QA_END_POS)
    assert a == b
    # position L - 1 is counted: changing that row's logits changes the loss; position L is not
    moved = QA_START.copy()
    moved[3, 2] += 1.0
    assert losses.question_answering_loss(moved, QA_END, QA_START_POS, QA_END_POS) != QA_VALUE
    moved = QA_START.copy()
    moved[1] += [4.0, -2.0, 1.0]  # row 1 has position 3 = L
    close(losses.question_answering_loss(moved, QA_END, QA_START_POS, QA_END_POS), QA_VALUE)


# --- edge semantics ------------------------------------------------------------------------------------------------


def _all_ignored_cases():
    z2, z3 = np.zeros((2, 2)), np.zeros((2, 3, 4))
    return {
        "cross_entropy": (losses.cross_entropy, (z2, np.array([-100, -100]))),
        "token_classification": (losses.token_classification_loss, (z3, np.full((2, 3), -100))),
        "token_classification_mask": (
            losses.token_classification_loss, (z3, np.array([[1, 2, -100], [0, 3, 1]]), np.zeros((2, 3), int))
        ),
        "masked_lm": (losses.masked_lm_loss, (z3, np.full((2, 3), -100))),
        "causal_lm_length_1": (losses.causal_lm_loss, (np.zeros((2, 1, 4)), np.array([[1], [2]]))),
        "next_sentence": (losses.next_sentence_loss, (z2, np.array([-100, -100]))),
        "multiple_choice": (losses.multiple_choice_loss, (z2, np.array([-100, -100]))),
        "single_label": (losses.sequence_classification_loss, (z2, np.array([-100, -100]))),
    }


@pytest.mark.parametrize("case", sorted(_all_ignored_cases()))
def test_all_labels_ignored_gives_nan_loss_without_warnings(case):
    fn, args = _all_ignored_cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the 0/0 is deliberate and must not warn
        assert math.isnan(fn(*args))


def test_question_answering_with_every_position_out_of_the_sequence_is_nan():
    z = np.zeros((2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(losses.question_answering_loss(z, z, np.array([3, 8]), np.array([0, 1])))


def test_all_ignored_with_num_items_in_batch_is_zero_not_nan():
    # the sum over no counted row is 0, divided by the given count
    assert losses.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]), num_items_in_batch=5) == 0.0
    assert (losses.cross_entropy_grad(np.zeros((2, 3)), np.array([-100, -100]), num_items_in_batch=5) == 0.0).all()


def test_all_ignored_gradient_is_exactly_zero():
    # documented: every row ignored -> NaN loss, but the gradient is exactly 0.0 everywhere (no 0/0 in it)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        grad = losses.cross_entropy_grad(np.zeros((2, 3)), np.array([-100, -100]))
        np.testing.assert_array_equal(grad, np.zeros((2, 3)))
        grad = losses.token_classification_loss_grad(np.ones((2, 2, 3)), np.array([[0, 1], [2, 0]]), np.zeros((2, 2)))
        np.testing.assert_array_equal(grad, np.zeros((2, 2, 3)))
        g_start, g_end = losses.question_answering_loss_grad(np.ones((2, 3)), np.ones((2, 3)), [3, 4], [3, 9])
        np.testing.assert_array_equal(g_start, np.zeros((2, 3)))
        np.testing.assert_array_equal(g_end, np.zeros((2, 3)))


def _no_warnings(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp would warn
        return fn(*args)


def test_cross_entropy_is_stable_at_plus_minus_1000():
    logits = np.array([[1000.0, -1000.0], [1000.0, -1000.0]])
    # row 0 label 1: log(e^1000 + e^-1000) - (-1000) = 1000 + 1000 (e^-2000 underflows to 0); row 1 label 0: 0
    assert _no_warnings(losses.cross_entropy, logits, np.array([1, 0])) == 1000.0
    # softmax = [1, 0]; row 0: ([1, 0] - [0, 1]) / 2, row 1: ([1, 0] - [1, 0]) / 2
    grad = _no_warnings(losses.cross_entropy_grad, logits, np.array([1, 0]))
    np.testing.assert_array_equal(grad, [[0.5, -0.5], [0.0, 0.0]])


def test_bce_with_logits_is_stable_at_plus_minus_1000():
    logits = np.array([1000.0, -1000.0])
    # y=0: [max(1000,0) - 0 + log1p(e^-1000), 0 - 0 + log1p(e^-1000)] = [1000, 0] -> mean 500
    assert _no_warnings(losses.bce_with_logits, logits, np.array([0.0, 0.0])) == 500.0
    # y=1: [1000 - 1000 + 0, 0 + 1000 + 0] = [0, 1000] -> mean 500
    assert _no_warnings(losses.bce_with_logits, logits, np.array([1.0, 1.0])) == 500.0
    np.testing.assert_array_equal(_no_warnings(losses.bce_with_logits_grad, logits, np.array([0.0, 0.0])), [0.5, 0.0])
    np.testing.assert_array_equal(_no_warnings(losses.bce_with_logits_grad, logits, np.array([1.0, 1.0])), [0.0, -0.5])


def test_log_softmax_and_softmax_are_stable_at_plus_minus_1000():
    x = np.array([[1000.0, -1000.0, 0.0]])
    # x - max - log(1 + e^-2000 + e^-1000) = x - 1000 exactly
    np.testing.assert_array_equal(_no_warnings(losses.log_softmax, x), [[0.0, -2000.0, -1000.0]])
    np.testing.assert_array_equal(_no_warnings(losses.softmax, x), [[1.0, 0.0, 0.0]])


def test_log_softmax_hand_computed():
    # [0, log 3]: log(1/4), log(3/4)
    close(losses.log_softmax(np.array([0.0, LN3])), [-2 * LN2, LOG_4_3 * -1])
    close(losses.softmax(np.array([[0.0, LN3], [LN2, 0.0]])), [[0.25, 0.75], [2 / 3, 1 / 3]])


# --- invariants (Hypothesis) ---------------------------------------------------------------------------------------

finite = st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False)
wild = st.floats(-1000.0, 1000.0, allow_nan=False, allow_infinity=False)


@st.composite
def classification_problem(draw):
    """[N, C] logits, [N] labels with at least one counted row, and replacement logits for the ignored rows."""
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 5))
    logits = draw(arrays(np.float64, (n, c), elements=finite))
    labels = draw(arrays(np.int64, (n,), elements=st.one_of(st.integers(0, c - 1), st.just(-100))))
    labels[draw(st.integers(0, n - 1))] = draw(st.integers(0, c - 1))
    other = draw(arrays(np.float64, (n, c), elements=wild))
    return logits, labels, other


SETTINGS = settings(max_examples=50, deadline=None)


@SETTINGS
@given(classification_problem())
def test_cross_entropy_ignored_rows_change_nothing(problem):
    logits, labels, other = problem
    ignored = labels == -100
    perturbed = np.where(ignored[:, None], other, logits)
    assert losses.cross_entropy(perturbed, labels) == losses.cross_entropy(logits, labels)
    grad = losses.cross_entropy_grad(logits, labels)
    np.testing.assert_array_equal(losses.cross_entropy_grad(perturbed, labels), grad)
    assert (grad[ignored] == 0.0).all()


@SETTINGS
@given(classification_problem(), finite)
def test_cross_entropy_invariants(problem, shift):
    logits, labels, _ = problem
    loss = losses.cross_entropy(logits, labels)
    assert loss >= 0.0
    # adding a constant to a row leaves its softmax unchanged
    np.testing.assert_allclose(losses.cross_entropy(logits + shift, labels), loss, rtol=1e-12, atol=1e-12)
    # each counted gradient row sums to (1 - 1) / n = 0; the counted rows' entries lie in [-1/n, 1/n]
    grad = losses.cross_entropy_grad(logits, labels)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)
    assert (np.abs(grad) <= 1.0 / (labels != -100).sum() + 1e-15).all()


@SETTINGS
@given(st.data())
def test_token_classification_masked_positions_change_nothing(data):
    b, l, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(2, 4))
    logits = data.draw(arrays(np.float64, (b, l, c), elements=finite))
    labels = data.draw(arrays(np.int64, (b, l), elements=st.integers(0, c - 1)))
    mask = data.draw(arrays(np.int64, (b, l), elements=st.integers(0, 1)))
    mask[0, 0] = 1
    other = data.draw(arrays(np.float64, (b, l, c), elements=wild))
    perturbed = np.where(mask[..., None] == 0, other, logits)
    loss = losses.token_classification_loss(logits, labels, mask)
    grad = losses.token_classification_loss_grad(logits, labels, mask)
    assert losses.token_classification_loss(perturbed, labels, mask) == loss
    np.testing.assert_array_equal(losses.token_classification_loss_grad(perturbed, labels, mask), grad)
    assert (grad[mask == 0] == 0.0).all()
    # the mask rule equals writing -100 into the padded labels
    assert losses.token_classification_loss(logits, np.where(mask == 1, labels, -100)) == loss


@SETTINGS
@given(st.data())
def test_causal_lm_last_position_changes_nothing(data):
    b, l, v = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 4)), data.draw(st.integers(2, 4))
    logits = data.draw(arrays(np.float64, (b, l, v), elements=finite))
    labels = data.draw(arrays(np.int64, (b, l), elements=st.integers(0, v - 1)))
    perturbed = logits.copy()
    perturbed[:, -1] = data.draw(arrays(np.float64, (b, v), elements=wild))
    grad = losses.causal_lm_loss_grad(logits, labels)
    assert losses.causal_lm_loss(perturbed, labels) == losses.causal_lm_loss(logits, labels)
    np.testing.assert_array_equal(losses.causal_lm_loss_grad(perturbed, labels), grad)
    assert (grad[:, -1] == 0.0).all()
    # the causal loss is the masked-LM loss of the first L-1 positions against labels 1..L-1
    np.testing.assert_allclose(
        losses.causal_lm_loss(logits, labels), losses.masked_lm_loss(logits[:, :-1], labels[:, 1:]), rtol=1e-12
    )


@SETTINGS
@given(st.data())
def test_question_answering_ignored_examples_change_nothing(data):
    b, l = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    start = data.draw(arrays(np.float64, (b, l), elements=finite))
    end = data.draw(arrays(np.float64, (b, l), elements=finite))
    positions = st.integers(-3, l + 3)
    s_pos = data.draw(arrays(np.int64, (b,), elements=positions))
    e_pos = data.draw(arrays(np.int64, (b,), elements=positions))
    s_pos[0] = e_pos[0] = data.draw(st.integers(0, l - 1))
    s_ignored, e_ignored = s_pos >= l, e_pos >= l
    start2 = np.where(s_ignored[:, None], data.draw(arrays(np.float64, (b, l), elements=wild)), start)
    end2 = np.where(e_ignored[:, None], data.draw(arrays(np.float64, (b, l), elements=wild)), end)
    loss = losses.question_answering_loss(start, end, s_pos, e_pos)
    assert losses.question_answering_loss(start2, end2, s_pos, e_pos) == loss
    g_start, g_end = losses.question_answering_loss_grad(start, end, s_pos, e_pos)
    g_start2, g_end2 = losses.question_answering_loss_grad(start2, end2, s_pos, e_pos)
    np.testing.assert_array_equal(g_start2, g_start)
    np.testing.assert_array_equal(g_end2, g_end)
    assert (g_start[s_ignored] == 0.0).all() and (g_end[e_ignored] == 0.0).all()
    # it is the mean of the two cross-entropies of the clamped positions, each over its own counted rows
    expected = (
        losses.cross_entropy(start, np.clip(s_pos, 0, l), ignore_index=l)
        + losses.cross_entropy(end, np.clip(e_pos, 0, l), ignore_index=l)
    ) / 2
    assert loss == expected


@SETTINGS
@given(st.data())
def test_multiple_choice_logits_row_b_holds_example_b(data):
    b, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    scores = data.draw(arrays(np.float64, (b * c, 1), elements=finite))
    reshaped = losses.multiple_choice_logits(scores, c)
    assert reshaped.shape == (b, c)
    for i in range(b):
        for j in range(c):
            assert reshaped[i, j] == scores[i * c + j, 0]


# --- analytic gradients vs central finite differences --------------------------------------------------------------

_rng = np.random.default_rng(1234)


def _normal(*shape):
    return 2.0 * _rng.normal(size=shape)


def _grad_cases():
    ce = (_normal(5, 4), np.array([0, 3, -100, 1, 2]))
    mse = (_normal(3, 2), _normal(3, 2))
    bce = (_normal(3, 4), _rng.uniform(size=(3, 4)))
    reg1 = (_normal(3, 1), _normal(3))
    reg_b1 = (_normal(1, 1), _normal(1))
    single = (_normal(4, 3), np.array([2, -100, 0, 1]))
    multi = (_normal(4, 3), (_rng.uniform(size=(4, 3)) > 0.5).astype(np.float64))
    reg3 = (_normal(4, 3), _normal(4, 3))
    tok = (_normal(2, 3, 4), np.array([[0, 3, -100], [1, 2, 2]]))
    tok_mask = np.array([[1, 1, 0], [1, 0, 1]])
    mlm = (_normal(2, 3, 5), np.array([[-100, 4, -100], [0, -100, 3]]))
    causal = (_normal(2, 4, 5), np.array([[1, 4, -100, 2], [0, 3, 3, 1]]))
    nsp = (_normal(3, 2), np.array([0, 1, -100]))
    mc = (_normal(3, 4), np.array([3, 0, 1]))
    pre_mlm, pre_nsp, pre_labels, pre_nsl = _normal(2, 3, 5), _normal(2, 2), mlm[1], np.array([1, 0])
    qa_start, qa_end = _normal(3, 4), _normal(3, 4)
    qa_s, qa_e = np.array([-2, 3, 9]), np.array([[1], [4], [0]])
    L = losses
    return {
        "cross_entropy": lambda: (lambda x: L.cross_entropy(x, ce[1]), L.cross_entropy_grad(*ce), ce[0]),
        "cross_entropy_num_items": lambda: (
            lambda x: L.cross_entropy(x, ce[1], num_items_in_batch=7), L.cross_entropy_grad(*ce, num_items_in_batch=7),
            ce[0],
        ),
        "mse": lambda: (lambda x: L.mse(x, mse[1]), L.mse_grad(*mse), mse[0]),
        "bce_with_logits": lambda: (lambda x: L.bce_with_logits(x, bce[1]), L.bce_with_logits_grad(*bce), bce[0]),
        "seq_regression": lambda: (
            lambda x: L.sequence_classification_loss(x, reg1[1]), L.sequence_classification_loss_grad(*reg1), reg1[0]
        ),
        "seq_regression_batch_1": lambda: (
            lambda x: L.sequence_classification_loss(x, reg_b1[1]), L.sequence_classification_loss_grad(*reg_b1),
            reg_b1[0],
        ),
        "seq_single_label_int64": lambda: (
            lambda x: L.sequence_classification_loss(x, single[1]), L.sequence_classification_loss_grad(*single),
            single[0],
        ),
        "seq_single_label_int32": lambda: (
            lambda x: L.sequence_classification_loss(x, single[1].astype(np.int32)),
            L.sequence_classification_loss_grad(single[0], single[1].astype(np.int32)), single[0],
        ),
        "seq_multi_label": lambda: (
            lambda x: L.sequence_classification_loss(x, multi[1]), L.sequence_classification_loss_grad(*multi), multi[0]
        ),
        "seq_explicit_regression": lambda: (
            lambda x: L.sequence_classification_loss(x, reg3[1], "regression"),
            L.sequence_classification_loss_grad(*reg3, "regression"), reg3[0],
        ),
        "token_classification": lambda: (
            lambda x: L.token_classification_loss(x, tok[1]), L.token_classification_loss_grad(*tok), tok[0]
        ),
        "token_classification_mask": lambda: (
            lambda x: L.token_classification_loss(x, tok[1], tok_mask),
            L.token_classification_loss_grad(*tok, tok_mask), tok[0],
        ),
        "token_classification_num_items": lambda: (
            lambda x: L.token_classification_loss(x, tok[1], num_items_in_batch=3),
            L.token_classification_loss_grad(*tok, num_items_in_batch=3), tok[0],
        ),
        "masked_lm": lambda: (lambda x: L.masked_lm_loss(x, mlm[1]), L.masked_lm_loss_grad(*mlm), mlm[0]),
        "causal_lm": lambda: (lambda x: L.causal_lm_loss(x, causal[1]), L.causal_lm_loss_grad(*causal), causal[0]),
        "causal_lm_num_items": lambda: (
            lambda x: L.causal_lm_loss(x, causal[1], 9), L.causal_lm_loss_grad(*causal, 9), causal[0]
        ),
        "next_sentence": lambda: (lambda x: L.next_sentence_loss(x, nsp[1]), L.next_sentence_loss_grad(*nsp), nsp[0]),
        "multiple_choice": lambda: (
            lambda x: L.multiple_choice_loss(x, mc[1]), L.multiple_choice_loss_grad(*mc), mc[0]
        ),
        "pretraining_mlm": lambda: (
            lambda x: L.pretraining_loss(x, pre_nsp, pre_labels, pre_nsl),
            L.pretraining_loss_grad(pre_mlm, pre_nsp, pre_labels, pre_nsl)[0], pre_mlm,
        ),
        "pretraining_nsp": lambda: (
            lambda x: L.pretraining_loss(pre_mlm, x, pre_labels, pre_nsl),
            L.pretraining_loss_grad(pre_mlm, pre_nsp, pre_labels, pre_nsl)[1], pre_nsp,
        ),
        "question_answering_start": lambda: (
            lambda x: L.question_answering_loss(x, qa_end, qa_s, qa_e),
            L.question_answering_loss_grad(qa_start, qa_end, qa_s, qa_e)[0], qa_start,
        ),
        "question_answering_end": lambda: (
            lambda x: L.question_answering_loss(qa_start, x, qa_s, qa_e),
            L.question_answering_loss_grad(qa_start, qa_end, qa_s, qa_e)[1], qa_end,
        ),
    }


GRAD_CASES = _grad_cases()


@pytest.mark.parametrize("case", sorted(GRAD_CASES))
def test_gradient_matches_central_finite_differences(case):
    loss_fn, analytic, x = GRAD_CASES[case]()  # built lazily: a raising rule fails only its own case
    assert_matches_finite_differences(loss_fn, x, analytic)


def test_every_grad_function_has_a_finite_difference_case():
    grad_functions = {name for name in dir(losses) if name.endswith("_grad")}
    covered = {
        "cross_entropy_grad", "mse_grad", "bce_with_logits_grad", "sequence_classification_loss_grad",
        "token_classification_loss_grad", "masked_lm_loss_grad", "causal_lm_loss_grad", "next_sentence_loss_grad",
        "multiple_choice_loss_grad", "pretraining_loss_grad", "question_answering_loss_grad",
    }
    assert grad_functions == covered


# --- refused input -----------------------------------------------------------------------------------------------


def test_reference_input_error_is_a_value_error():
    assert issubclass(ReferenceInputError, ValueError)


LOGITS_2x3 = np.zeros((2, 3))


@pytest.mark.parametrize("fn", [losses.cross_entropy, losses.cross_entropy_grad])
@pytest.mark.parametrize(
    "labels",
    [
        np.array([0, 3]),  # = C
        np.array([0, -1]),  # negative, not -100
        np.array([-101, 0]),
        np.array([0.0, 1.0]),  # float labels
        np.array([True, False]),  # bool labels
        np.array([[0], [1]]),  # [N, 1]
        np.array([0, 1, 2]),  # N + 1
    ],
    ids=["label_eq_C", "minus_1", "minus_101", "float", "bool", "column", "too_long"],
)
def test_cross_entropy_refuses_bad_labels(fn, labels):
    with pytest.raises(ReferenceInputError):
        fn(LOGITS_2x3, labels)


def test_cross_entropy_refuses_one_dimensional_logits():
    with pytest.raises(ReferenceInputError):
        losses.cross_entropy(np.zeros(3), np.array([0]))


@pytest.mark.parametrize("fn", [losses.mse, losses.mse_grad, losses.bce_with_logits, losses.bce_with_logits_grad])
def test_float_target_rules_refuse_shape_mismatch(fn):
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 1)), np.array([0.0, 1.0]))  # [2] vs [2, 1]: no broadcasting
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 2)), np.zeros((2, 3)))


@pytest.mark.parametrize("fn", [losses.bce_with_logits, losses.bce_with_logits_grad])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_bce_with_logits_refuses_integer_and_bool_labels(fn, dtype):
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 1)), np.array([[0], [1]], dtype=dtype))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_mse_takes_integer_and_bool_labels_as_their_float_values(dtype):
    # documented: torch promotes the integer target; ((1 - 0)^2 + (2 - 1)^2) / 2 = 1, grad 2 (p - t) / 2 = p - t
    p, t = np.array([1.0, 2.0]), np.array([0, 1], dtype=dtype)
    assert losses.mse(p, t) == 1.0
    np.testing.assert_array_equal(losses.mse_grad(p, t), [1.0, 1.0])
    # the same through sequence classification's regression rule ([B, 1] logits, [B] labels)
    assert losses.sequence_classification_loss(p[:, None], t) == 1.0
    np.testing.assert_array_equal(losses.sequence_classification_loss_grad(p[:, None], t), [[1.0], [1.0]])


@pytest.mark.parametrize("fn", [losses.mse, losses.mse_grad])
def test_mse_refuses_non_numeric_labels(fn):
    with pytest.raises(ReferenceInputError):
        fn(np.zeros(2), np.array(["a", "b"]))
    with pytest.raises(ReferenceInputError):
        fn(np.zeros(2), np.array([1 + 0j, 2 + 0j]))


@pytest.mark.parametrize("fn", [losses.sequence_classification_loss, losses.sequence_classification_loss_grad])
def test_sequence_classification_refuses_bad_labels(fn):
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 1)), np.array([1.0, 2.0, 3.0]))  # regression: 3 labels for 2 examples
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 3)), np.array([0, 3]))  # single-label out of range
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 3)), np.array([[1, 0, 1], [0, 0, 1]]), "multi_label_classification")  # integer BCE labels
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 3)), np.array([0.0, 1.0]), "single_label_classification")  # float CE labels
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 3)), np.zeros((2, 2)), "regression")  # shape mismatch
    with pytest.raises(ReferenceInputError):
        fn(np.zeros((2, 3)), np.array([[1, 0, 1], [0, 0, 1]], dtype=np.int16))  # int16 means multi-label: needs floats


@pytest.mark.parametrize(
    "fn", [losses.token_classification_loss, losses.token_classification_loss_grad, losses.masked_lm_loss,
           losses.masked_lm_loss_grad, losses.causal_lm_loss, losses.causal_lm_loss_grad]
)
def test_per_token_rules_refuse_bad_labels(fn):
    logits = np.zeros((2, 3, 4))
    with pytest.raises(ReferenceInputError):
        fn(logits, np.zeros((2, 2), dtype=np.int64))  # wrong shape
    with pytest.raises(ReferenceInputError):
        fn(logits, np.zeros((3, 2), dtype=np.int64))  # wrong shape
    with pytest.raises(ReferenceInputError):
        fn(logits, np.full((2, 3), 4))  # = vocabulary size (for causal: shifted positions hold 4 too)
    with pytest.raises(ReferenceInputError):
        fn(logits, np.zeros((2, 3)))  # float labels


@pytest.mark.parametrize("fn", [losses.question_answering_loss, losses.question_answering_loss_grad])
def test_question_answering_refuses_non_integer_positions(fn):
    z = np.zeros((2, 3))
    with pytest.raises(ReferenceInputError):
        fn(z, z, np.array([0.0, 1.0]), np.array([0, 1]))
    with pytest.raises(ReferenceInputError):
        fn(z, z, np.array([0, 1]), np.array([1.5, 1.0]))
    with pytest.raises(ReferenceInputError):
        fn(z, z, np.array([0, 1, 2]), np.array([0, 1, 2]))  # 3 positions for 2 examples


def test_multiple_choice_logits_refuses_indivisible_scores():
    with pytest.raises(ReferenceInputError):
        losses.multiple_choice_logits(np.zeros((5, 1)), 2)
