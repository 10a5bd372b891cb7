"""Hypothesis strategies for tiny BERT configs, inputs and labels that reach every branch of the loss rules.

All sizes are small on purpose (hidden <= 16, sequence <= 12, batch <= 4): bugs in indexing, masking and
loss rules show at any size, and small cases shrink to readable counterexamples. `MAX_POSITIONS` leaves room
for the padding that metamorphic checks append.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .case import Case

IGNORE = -100
MAX_LENGTH = 12
MAX_POSITIONS = 20
EPS_CHOICES = (1e-12, 1e-6, 1e-3, 0.5)


@st.composite
def configs(draw, activations, num_labels=None, is_decoder=False, problem_type=None, vocab=(4, 24)):
    """A BertConfig as a dict: 1-3 layers, 1-4 heads of size 2-4, any supported activation and LayerNorm eps."""
    heads = draw(st.integers(1, 4))
    config = dict(
        vocab_size=draw(st.integers(*vocab)),
        hidden_size=heads * draw(st.integers(2, 4)),
        num_hidden_layers=draw(st.integers(1, 3)),
        num_attention_heads=heads,
        intermediate_size=draw(st.integers(1, 16)),
        hidden_act=draw(st.sampled_from(activations)),
        layer_norm_eps=draw(st.sampled_from(EPS_CHOICES)),
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=draw(st.integers(1, 3)),
        is_decoder=is_decoder,
        num_labels=num_labels if num_labels is not None else draw(st.integers(2, 5)),
    )
    if problem_type is not None:
        config["problem_type"] = problem_type
    return config


def int_arrays(shape, low, high, dtype=np.int64):
    return hnp.arrays(dtype, shape, elements=st.integers(low, high))


def class_labels(shape, num_classes, dtype=np.int64):
    """Class indices in [0, num_classes) with -100 (ignored) at any density, all-ignored included."""
    return hnp.arrays(dtype, shape, elements=st.one_of(st.just(IGNORE), st.integers(0, num_classes - 1)))


@st.composite
def token_inputs(draw, config, batch, length):
    """input_ids with optional right padding (first token always real), token types and explicit positions."""
    inputs = {"input_ids": draw(int_arrays((batch, length), 0, config["vocab_size"] - 1))}
    if draw(st.booleans()):
        lengths = draw(hnp.arrays(np.int64, (batch,), elements=st.integers(1, length)))
        inputs["attention_mask"] = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    if draw(st.booleans()):
        inputs["token_type_ids"] = draw(int_arrays((batch, length), 0, config["type_vocab_size"] - 1))
    if draw(st.booleans()):
        inputs["position_ids"] = draw(int_arrays((batch, length), 0, MAX_POSITIONS - 1))
    return inputs


sizes = st.tuples(st.integers(1, 4), st.integers(1, MAX_LENGTH))
seeds = st.integers(0, 2**32 - 1)


@st.composite
def cases(draw, head, activations, labels="class", num_labels=None, is_decoder=False, problem_type=None,
          label_dtype=np.int64, with_num_items=False):
    """A Case for `head`. `labels` says which label rule to reach:

    none | class (per-example class index, -100 allowed) | tokens (per-position, -100 allowed) |
    regression | multi_label | qa (positions below 0, inside, at and beyond the length) | pretraining.
    """
    config = draw(configs(activations, num_labels=num_labels, is_decoder=is_decoder, problem_type=problem_type))
    batch, length = draw(sizes)
    if head == "BertForMultipleChoice":
        choices = draw(st.integers(1, 4))
        flat = draw(token_inputs(config, batch * choices, length))
        inputs = {k: v.reshape(batch, choices, length) for k, v in flat.items()}
        num_classes = choices
    else:
        inputs = draw(token_inputs(config, batch, length))
        num_classes = config["num_labels"]
    vocab = config["vocab_size"]
    if labels == "none":
        label_arrays = {}
    elif labels == "class":
        classes = 2 if head in ("BertForNextSentencePrediction",) else num_classes
        label_arrays = {"labels": draw(class_labels((batch,), classes, label_dtype))}
    elif labels == "tokens":
        classes = vocab if head in ("BertForMaskedLM", "BertLMHeadModel") else config["num_labels"]
        label_arrays = {"labels": draw(class_labels((batch, length), classes, label_dtype))}
    elif labels == "pretraining":
        label_arrays = {
            "labels": draw(class_labels((batch, length), vocab)),
            "next_sentence_label": draw(class_labels((batch,), 2)),
        }
    elif labels == "regression":
        n = config["num_labels"]
        shape = draw(st.sampled_from([(batch,), (batch, 1)])) if n == 1 else (batch, n)
        label_arrays = {"labels": draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3, width=32)))}
    elif labels == "multi_label":
        label_arrays = {"labels": draw(hnp.arrays(np.float64, (batch, config["num_labels"]),
                                                  elements=st.sampled_from([0.0, 1.0, 0.25, 0.5])))}
    elif labels == "qa":
        shape = draw(st.sampled_from([(batch,), (batch, 1)]))
        label_arrays = {
            "start_positions": draw(int_arrays(shape, -3, length + 3)),
            "end_positions": draw(int_arrays(shape, -3, length + 3)),
        }
    else:
        raise ValueError(labels)
    num_items = draw(st.integers(1, batch * length)) if with_num_items else None
    return Case(head, config, draw(seeds), inputs, label_arrays, num_items)
