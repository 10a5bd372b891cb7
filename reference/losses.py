"""Every loss rule of the BERT heads, with its analytic gradient with respect to the head's logits.

Each `*_loss` has a `*_loss_grad` twin returning d(loss)/d(logits) in the logits' shape. Gradients at positions
a rule ignores are exactly 0.0, which is what lets the conformance suite check ignoring without tolerances.
Torch's edge semantics are followed and stated: a mean over zero counted positions is 0/0 = NaN.
"""

import numpy as np

from .activations import sigmoid
from .errors import ReferenceInputError, Refusal

# what an implementation is expected to raise for bad class labels (torch's cross_entropy on cpu)
LABEL_DTYPE = Refusal("label-dtype", ("RuntimeError",), r"expected (target dtype to be Long|scalar type Long)")
LABEL_SHAPE = Refusal("label-shape", ("ValueError",), r"Expected input batch_size \(\d+\) to match target batch_size")
LABEL_RANGE = Refusal("label-out-of-range", ("IndexError",), r"Target -?\d+ is out of bounds")
# the masked rule (`attention_mask` given) broadcasts the mask against the labels first (torch.where)
MASKED_LABEL_SHAPE = Refusal("masked-label-shape", ("ValueError", "RuntimeError"),
                             r"Expected input batch_size|The size of tensor a \(\d+\) must match the size of tensor b")

# regression (MSE) and multi-label (BCE with logits) targets, as torch's losses refuse them on cpu
MSE_SHAPE = Refusal("regression-label-shape", ("RuntimeError",),
                    r"The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)")
"""mse_loss broadcasts targets whose shape broadcasts against the input (with a UserWarning) and computes; the
reference refuses every shape mismatch, which the checks never draw: torch's refusal is stated for the rest."""
BCE_SHAPE = Refusal("multi-label-label-shape", ("ValueError",), r"Target size \(.*\) must be the same as input size")
BCE_DTYPE = Refusal("multi-label-label-dtype", ("RuntimeError",),
                    r"result type \w+ can't be cast to the desired output type|with two bool tensors is not supported")
TARGET_REFUSALS = {("mse", "dtype"): None, ("mse", "shape"): MSE_SHAPE,  # no tensor dtype is outside "biuf"
                   ("bce_with_logits", "dtype"): BCE_DTYPE, ("bce_with_logits", "shape"): BCE_SHAPE}

IGNORE_INDEX = -100
"""The label value that every cross-entropy rule leaves out of the loss."""


# --- building blocks -----------------------------------------------------------------------------------------


def log_softmax(x, axis=-1):
    """log(softmax(x)) computed as x - max - log(sum(exp(x - max))): no overflow for logits of +-1000."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """exp(log_softmax(x))."""
    return np.exp(log_softmax(x, axis))


def _class_labels(logits, labels, ignore_index, what="labels"):
    """Validate integer class labels for [N, C] logits: shape [N], each in [0, C) or equal to ignore_index."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise ReferenceInputError(f"{what} must be integer class indices, got dtype {labels.dtype}", LABEL_DTYPE)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ReferenceInputError(f"{what} shape {labels.shape} does not match logits shape {logits.shape}",
                                  LABEL_SHAPE)
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= logits.shape[1]))
    if bad.any():
        raise ReferenceInputError(
            f"{what} must be in [0, {logits.shape[1]}) or {ignore_index}; got {labels[bad][:5].tolist()}", LABEL_RANGE
        )
    return labels.astype(np.int64)


NUMERIC = "biuf"
FLOATING = "f"


def _denominator(counted, num_items_in_batch):
    return counted.sum() if num_items_in_batch is None else num_items_in_batch


def cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, num_items_in_batch=None):
    """Cross-entropy of [N, C] logits against [N] class labels, averaged over the rows whose label is not ignore_index.

    With `num_items_in_batch` the summed loss is divided by it instead of by the number of counted rows.
    No counted row and no `num_items_in_batch` gives 0/0 = NaN, as torch does.
    """
    labels = _class_labels(logits, labels, ignore_index)
    counted = labels != ignore_index
    nll = -np.take_along_axis(log_softmax(logits), np.where(counted, labels, 0)[:, None], axis=1)[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64(np.where(counted, nll, 0.0).sum() / _denominator(counted, num_items_in_batch))


def cross_entropy_grad(logits, labels, ignore_index=IGNORE_INDEX, num_items_in_batch=None):
    """d cross_entropy / d logits = (softmax(logits) - onehot(label)) / denominator on counted rows, exactly 0 on
    ignored rows, also when every row is ignored (the loss is then NaN but torch's gradient is all zeros)."""
    labels = _class_labels(logits, labels, ignore_index)
    counted = labels != ignore_index
    onehot = np.zeros_like(logits)
    onehot[np.arange(len(labels)), np.where(counted, labels, 0)] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        counted_grad = (softmax(logits) - onehot) / _denominator(counted, num_items_in_batch)
    return np.where(counted[:, None], counted_grad, 0.0)


def _targets(prediction, target, what, kinds):
    target = np.asarray(target)
    if target.dtype.kind not in kinds:
        raise ReferenceInputError(f"{what} does not take labels of dtype {target.dtype}", TARGET_REFUSALS[what, "dtype"])
    if target.shape != prediction.shape:
        raise ReferenceInputError(f"{what}: labels shape {target.shape} != logits shape {prediction.shape}",
                                  TARGET_REFUSALS[what, "shape"])
    return target.astype(np.float64)


def mse(prediction, target):
    """Mean over all elements of (prediction - target)^2; shapes must be equal (no broadcasting).

    Integer and boolean targets are taken as their float values, as torch's type promotion does."""
    target = _targets(prediction, target, "mse", NUMERIC)
    return np.float64(((prediction - target) ** 2).mean())


def mse_grad(prediction, target):
    """2 (prediction - target) / number of elements."""
    target = _targets(prediction, target, "mse", NUMERIC)
    return 2.0 * (prediction - target) / prediction.size


def bce_with_logits(logits, target):
    """Mean over all elements of -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))], as max(x,0) - x y + log1p(exp(-|x|)).

    Targets must be floating point (torch refuses integer and boolean targets here)."""
    target = _targets(logits, target, "bce_with_logits", FLOATING)
    return np.float64((np.maximum(logits, 0.0) - logits * target + np.log1p(np.exp(-np.abs(logits)))).mean())


def bce_with_logits_grad(logits, target):
    """(sigmoid(x) - y) / number of elements."""
    target = _targets(logits, target, "bce_with_logits", FLOATING)
    return (sigmoid(logits) - target) / logits.size


# --- sequence classification -------------------------------------------------------------------------------

REGRESSION = "regression"
SINGLE_LABEL = "single_label_classification"
MULTI_LABEL = "multi_label_classification"


def infer_problem_type(num_labels, labels, problem_type=None):
    """An explicit problem_type wins; else regression if num_labels == 1, single-label if the labels are int64 or
    int32, multi-label otherwise."""
    if problem_type is not None:
        return problem_type
    if num_labels == 1:
        return REGRESSION
    if np.asarray(labels).dtype in (np.int64, np.int32):
        return SINGLE_LABEL
    return MULTI_LABEL


def _regression_pair(logits, labels):
    """With one label per example both sides are squeezed ([B, 1] and [B] meet as [B]); otherwise shapes must match."""
    labels = np.asarray(labels)
    if logits.shape[-1] == 1:
        return logits.squeeze(), labels.squeeze()
    return logits, labels


def sequence_classification_loss(logits, labels, problem_type=None, ignore_index=IGNORE_INDEX):
    """Loss of BertForSequenceClassification on [B, num_labels] logits, by problem type (see `infer_problem_type`):
    regression is MSE, single-label is cross-entropy with `ignore_index` (-100) ignored, multi-label is BCE with
    logits."""
    kind = infer_problem_type(logits.shape[-1], labels, problem_type)
    if kind == REGRESSION:
        return mse(*_regression_pair(logits, labels))
    if kind == SINGLE_LABEL:
        return cross_entropy(logits, np.asarray(labels).reshape(-1), ignore_index)
    return bce_with_logits(logits, labels)


def sequence_classification_loss_grad(logits, labels, problem_type=None, ignore_index=IGNORE_INDEX):
    """Gradient of `sequence_classification_loss` with respect to the [B, num_labels] logits."""
    kind = infer_problem_type(logits.shape[-1], labels, problem_type)
    if kind == REGRESSION:
        return mse_grad(*_regression_pair(logits, labels)).reshape(logits.shape)
    if kind == SINGLE_LABEL:
        return cross_entropy_grad(logits, np.asarray(labels).reshape(-1), ignore_index)
    return bce_with_logits_grad(logits, labels)


# --- per-token classification: token classification, masked LM, causal LM ------------------------------------


def _token_labels(logits, labels, attention_mask, ignore_index=IGNORE_INDEX):
    labels = np.asarray(labels)
    if labels.shape != logits.shape[:-1]:
        raise ReferenceInputError(f"labels shape {labels.shape} does not match logits shape {logits.shape[:-1]}",
                                  LABEL_SHAPE if attention_mask is None else MASKED_LABEL_SHAPE)
    if attention_mask is not None and np.shape(attention_mask) != labels.shape:
        raise ReferenceInputError(f"attention_mask shape {np.shape(attention_mask)} != labels shape {labels.shape}")
    if attention_mask is not None and np.issubdtype(labels.dtype, np.integer):
        labels = np.where(np.asarray(attention_mask) == 1, labels, ignore_index)
    return logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)


def token_classification_loss(logits, labels, attention_mask=None, num_items_in_batch=None,
                              ignore_index=IGNORE_INDEX):
    """Cross-entropy over all [B, L] positions whose label is not `ignore_index` (-100).

    With `attention_mask` (the rule of old transformers releases) positions whose mask is not 1 are ignored too.
    """
    flat_logits, flat_labels = _token_labels(logits, labels, attention_mask, ignore_index)
    return cross_entropy(flat_logits, flat_labels, ignore_index, num_items_in_batch)


def token_classification_loss_grad(logits, labels, attention_mask=None, num_items_in_batch=None,
                                   ignore_index=IGNORE_INDEX):
    """Gradient of `token_classification_loss` with respect to the [B, L, C] logits."""
    flat_logits, flat_labels = _token_labels(logits, labels, attention_mask, ignore_index)
    return cross_entropy_grad(flat_logits, flat_labels, ignore_index, num_items_in_batch).reshape(logits.shape)


def masked_lm_loss(prediction_logits, labels, num_items_in_batch=None, ignore_index=IGNORE_INDEX):
    """Cross-entropy of [B, L, V] token predictions against [B, L] labels, over positions whose label is not
    `ignore_index` (-100)."""
    return token_classification_loss(prediction_logits, labels, None, num_items_in_batch, ignore_index)


def masked_lm_loss_grad(prediction_logits, labels, num_items_in_batch=None, ignore_index=IGNORE_INDEX):
    """Gradient of `masked_lm_loss` with respect to the [B, L, V] logits."""
    return token_classification_loss_grad(prediction_logits, labels, None, num_items_in_batch, ignore_index)


def shift_labels(labels):
    """The causal shift: position t is scored against label t + 1; the last position gets -100 (nothing to predict)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.signedinteger):
        raise ReferenceInputError(f"causal LM labels must be signed integers of shape [batch, sequence], got "
                                  f"{labels.dtype} {labels.shape}")
    return np.concatenate([labels[:, 1:], np.full((labels.shape[0], 1), IGNORE_INDEX, dtype=labels.dtype)], axis=1)


def causal_lm_loss(logits, labels, num_items_in_batch=None):
    """BertLMHeadModel: masked_lm_loss of the logits against the shifted labels (`shift_labels`), -100 ignored."""
    return masked_lm_loss(logits, shift_labels(labels), num_items_in_batch)


def causal_lm_loss_grad(logits, labels, num_items_in_batch=None):
    """Gradient of `causal_lm_loss`; the last position's gradient is exactly 0."""
    return masked_lm_loss_grad(logits, shift_labels(labels), num_items_in_batch)


# --- sentence-level classification: NSP, multiple choice, pre-training ---------------------------------------


def next_sentence_loss(seq_relationship_logits, next_sentence_label, ignore_index=IGNORE_INDEX):
    """Cross-entropy of [B, 2] logits against [B] labels (0: B follows A, 1: B is random), `ignore_index` (-100)
    ignored."""
    return cross_entropy(seq_relationship_logits, np.asarray(next_sentence_label).reshape(-1), ignore_index)


def next_sentence_loss_grad(seq_relationship_logits, next_sentence_label, ignore_index=IGNORE_INDEX):
    """Gradient of `next_sentence_loss` with respect to the [B, 2] logits."""
    return cross_entropy_grad(seq_relationship_logits, np.asarray(next_sentence_label).reshape(-1), ignore_index)


def multiple_choice_logits(choice_scores, num_choices):
    """The multiple-choice reshape: [B * C, 1] scores of the flattened choices back to [B, C], row b holding
    the choices of example b in order."""
    if choice_scores.size % num_choices:
        raise ReferenceInputError(f"{choice_scores.size} scores cannot be split into rows of {num_choices} choices")
    return choice_scores.reshape(-1, num_choices)


def multiple_choice_loss(reshaped_logits, labels, ignore_index=IGNORE_INDEX):
    """Cross-entropy of the [B, C] reshaped logits against [B] choice indices, `ignore_index` (-100) ignored."""
    return cross_entropy(reshaped_logits, labels, ignore_index)


def multiple_choice_loss_grad(reshaped_logits, labels, ignore_index=IGNORE_INDEX):
    """Gradient of `multiple_choice_loss` with respect to the [B, C] reshaped logits."""
    return cross_entropy_grad(reshaped_logits, labels, ignore_index)


def pretraining_loss(prediction_logits, seq_relationship_logits, labels, next_sentence_label,
                     ignore_index=IGNORE_INDEX):
    """BertForPreTraining: masked_lm_loss + next_sentence_loss, plain sum (no weighting)."""
    return (masked_lm_loss(prediction_logits, labels, ignore_index=ignore_index)
            + next_sentence_loss(seq_relationship_logits, next_sentence_label, ignore_index))


def pretraining_loss_grad(prediction_logits, seq_relationship_logits, labels, next_sentence_label,
                          ignore_index=IGNORE_INDEX):
    """(gradient wrt prediction_logits, gradient wrt seq_relationship_logits) of `pretraining_loss`."""
    return (
        masked_lm_loss_grad(prediction_logits, labels, ignore_index=ignore_index),
        next_sentence_loss_grad(seq_relationship_logits, next_sentence_label, ignore_index),
    )


# --- question answering ---------------------------------------------------------------------------------------


def clamp_positions(positions, length):
    """QA positions: a trailing axis of size 1 is squeezed, then values are clamped to [0, length].

    Negative positions thus count as position 0; positions >= length become `length`, which the loss ignores.
    """
    positions = np.asarray(positions)
    if not np.issubdtype(positions.dtype, np.integer):
        raise ReferenceInputError(f"QA positions must be integers, got dtype {positions.dtype}")
    if positions.ndim > 1 and positions.shape[-1] == 1:
        positions = positions.squeeze(-1)
    if positions.ndim != 1:
        raise ReferenceInputError(f"QA positions must be [batch] or [batch, 1], got shape {positions.shape}")
    return np.clip(positions, 0, length)


def question_answering_loss(start_logits, end_logits, start_positions, end_positions):
    """(CE(start) + CE(end)) / 2 over [B, L] logits, positions clamped by `clamp_positions` and those equal to L
    (out of the sequence) ignored; each of the two means counts its own non-ignored examples."""
    length = start_logits.shape[1]
    start = clamp_positions(start_positions, length)
    end = clamp_positions(end_positions, length)
    return (cross_entropy(start_logits, start, ignore_index=length) + cross_entropy(end_logits, end, ignore_index=length)) / 2


def question_answering_loss_grad(start_logits, end_logits, start_positions, end_positions):
    """(gradient wrt start_logits, gradient wrt end_logits) of `question_answering_loss`."""
    length = start_logits.shape[1]
    start = clamp_positions(start_positions, length)
    end = clamp_positions(end_positions, length)
    return (
        cross_entropy_grad(start_logits, start, ignore_index=length) / 2,
        cross_entropy_grad(end_logits, end, ignore_index=length) / 2,
    )
