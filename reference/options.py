"""Head options and forward contracts: the problem type a sequence-classification model keeps after its first call
with labels, the single-label rule with one label, the in-place clamping of question-answering positions, and the
regression loss of a release that broadcasts [B, 1] logits against [B] labels."""

import numpy as np

from .errors import Refusal, ReferenceInputError
from .losses import (MULTI_LABEL, REGRESSION, SINGLE_LABEL, clamp_positions, infer_problem_type,
                     sequence_classification_loss, sequence_classification_loss_grad)

ONE_LABEL_SINGLE = Refusal("single-label-one-label", ("ValueError",), r"requires `num_labels > 1`")
"""BertConfig refuses problem_type="single_label_classification" with num_labels == 1 (where it does)."""


def problem_type_after_calls(num_labels, label_sets, problem_type=None, persists=True):
    """The problem type each call of one BertForSequenceClassification computes, for calls with the labels in
    `label_sets` in order. The first call with labels infers the type (`losses.infer_problem_type`) unless the
    config gives one; with `persists` (transformers' rule: forward writes the inferred type into `config.
    problem_type`) every later call computes with the first call's type, whatever its labels; without it, each call
    infers its own."""
    kinds = []
    for labels in label_sets:
        kinds.append(infer_problem_type(num_labels, labels, problem_type))
        if persists and problem_type is None:
            problem_type = kinds[-1]
    return kinds


LABELS_UNLIKE_TYPE = Refusal("labels-unlike-problem-type", ("ValueError",),
                             r"Expected input batch_size|Target size .* must be the same as input size")
"""Labels of another kind than the problem type a model computes with: single-label cross-entropy of labels that
are not one per example (batch sizes differ), or multi-label BCE of labels not shaped like the logits."""


def loss_with_problem_type(logits, labels, problem_type):
    """(loss, d loss / d logits) of BertForSequenceClassification's loss on [B, num_labels] `logits` computed as
    `problem_type`, whatever kind the labels are (the type a model kept from an earlier call, see
    `problem_type_after_calls`). Single-label takes one label per example (labels.size == B), multi-label labels
    shaped like the logits; other labels are refused (`LABELS_UNLIKE_TYPE`)."""
    labels = np.asarray(labels)
    if problem_type == SINGLE_LABEL and labels.size != logits.shape[0]:
        raise ReferenceInputError(f"single-label loss of {labels.shape} labels for {logits.shape} logits",
                                  LABELS_UNLIKE_TYPE)
    if problem_type == MULTI_LABEL and labels.shape != logits.shape:
        raise ReferenceInputError(f"multi-label loss of {labels.shape} labels for {logits.shape} logits",
                                  LABELS_UNLIKE_TYPE)
    return (sequence_classification_loss(logits, labels, problem_type),
            sequence_classification_loss_grad(logits, labels, problem_type))


def one_label_problem_type(problem_type, refuses_single_label):
    """The problem type a model with num_labels == 1 and an explicit `problem_type` computes: that type (single-label
    is then a cross-entropy over one class: loss 0 for label 0), or, with `refuses_single_label` (BertConfig's rule
    from 5.7), a refusal of single_label_classification when the config is built (ValueError)."""
    if problem_type == SINGLE_LABEL and refuses_single_label:
        raise ReferenceInputError("problem_type single_label_classification with num_labels == 1", ONE_LABEL_SINGLE)
    if problem_type not in (REGRESSION, SINGLE_LABEL, MULTI_LABEL):
        raise ReferenceInputError(f"unknown problem_type {problem_type!r}")
    return problem_type


def positions_after_forward(positions, length, clamps_in_place):
    """The caller's question-answering positions after the forward: unchanged, or (`clamps_in_place`, releases
    before 4.7) clamped to [0, length] in place (`losses.clamp_positions`)."""
    positions = np.asarray(positions)
    if not clamps_in_place:
        return positions.copy()
    return clamp_positions(positions, length).astype(positions.dtype).reshape(positions.shape)


def mse_broadcast(logits, labels):
    """(loss, d loss / d logits) of MSELoss on [B, 1] `logits` against [B] `labels` without squeezing: torch
    broadcasts the pair to [B, B], so the loss is the mean over every (i, j) of (logits_i - labels_j)^2, and
    d loss / d logits_i = 2 (logits_i - mean(labels)) / B. (transformers 4.6.0's regression rule with one label.)"""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 1 or labels.ndim != 1:
        raise ReferenceInputError(f"mse_broadcast takes [B, 1] logits and [B] labels, not {logits.shape}, "
                                  f"{labels.shape}")
    diff = logits - labels[None, :]  # [B, 1] - [1, B] -> [B, B]
    grad = 2.0 * (logits - labels.mean()) / logits.shape[0]
    return np.float64((diff ** 2).mean()), grad
