"""Hypothesis strategies for tiny BERT configs, inputs and labels that reach every branch of the loss rules.

All sizes are small on purpose (hidden <= 16, sequence <= 12, batch <= 4): bugs in indexing, masking and
loss rules show at any size, and small cases shrink to readable counterexamples. `MAX_POSITIONS` leaves room
for the padding that metamorphic checks append.

Few choices per case (Hypothesis pays per choice; docs/speed.md has the costs): one header of small fields, each
one byte (the config; sizes and flags; the weight seed); one byte string per array. Every byte is generated uniformly and
shrinks toward 0 on its own, and a field or element is `low + byte % count`, so each one still shrinks toward its
simplest value, element by element, as `arrays` did. Every array is laid out at its largest shape
(`MAX_BATCH` x [`MAX_CHOICES` x] `MAX_LENGTH`) and the drawn shape is its leading corner: element (b, t) keeps its
byte when the shrinker lowers the batch or the length, so the shrinker's steps stay aligned.
"""

import numpy as np
from hypothesis import strategies as st

from .batch import SUBCASES, CaseBatch
from .case import Case

IGNORE = -100
MAX_BATCH = 4
MAX_CHOICES = 4
MAX_LENGTH = 12
MAX_POSITIONS = 20
EPS_CHOICES = (1e-12, 1e-6, 1e-3, 0.5)
MULTI_LABEL_VALUES = (0.0, 1.0, 0.25, 0.5)
MAX_LABELS = 5  # num_labels is 2-5 when drawn
IGNORE_LEVELS = 5  # share of -100 labels: none, about 1/4, 1/2, 3/4, all


_BINARY = {}


def byte_values(draw, n, reverse=True):
    """`n` bytes as one choice, as int64 values 0..255, last byte first. Reversed because the shrinker, besides
    lowering each byte, tries sorting the bytes ascending: that moves the large bytes to the end of the choice, so to
    the front of the array, where lowering the batch size and the length keeps them."""
    if n not in _BINARY:
        _BINARY[n] = st.binary(min_size=n, max_size=n)
    raw = np.frombuffer(draw(_BINARY[n]), dtype=np.uint8).astype(np.int64)
    return raw[::-1] if reverse else raw


def header(draw, fields):
    """One byte per field of `fields` ((name, count), ...): name -> a value in [0, count)."""
    return header_and_bytes(draw, fields, 0)[0]


def header_and_bytes(draw, fields, n):
    """A header of `fields` (see `header`) and `n` more bytes, as by `byte_values` (last byte first), in one choice.
    One choice instead of two costs Hypothesis half as much per example: it tries copying a choice into another of
    the same kind (`generate_mutations_from`), which for a header and a byte string of other sizes never makes a
    case."""
    raw = byte_values(draw, len(fields) + n, reverse=False)
    return {name: int(b) % count for (name, count), b in zip(fields, raw)}, raw[len(fields):][::-1]


SEED_FIELDS = [(f"seed{i}", 256) for i in range(4)]  # a 32-bit seed as four header bytes


def seed_of(h):
    """The 32-bit seed of a header with SEED_FIELDS."""
    return int.from_bytes(bytes(h[f"seed{i}"] for i in range(4)), "big")


def config_fields(activations, num_labels):
    fields = [("heads", 4), ("head_size", 3), ("vocab", 21), ("layers", 3), ("intermediate", 16),
              ("act", len(activations)), ("eps", len(EPS_CHOICES)), ("types", 3)]
    if num_labels is None:
        fields.append(("num_labels", 4))
    return fields


def config_of(h, activations, num_labels, is_decoder, problem_type):
    """The BertConfig dict of header `h`: 1-3 layers, 1-4 heads of size 2-4, vocabulary 4-24, any activation."""
    heads = 1 + h["heads"]
    config = dict(
        vocab_size=4 + h["vocab"],
        hidden_size=heads * (2 + h["head_size"]),
        num_hidden_layers=1 + h["layers"],
        num_attention_heads=heads,
        intermediate_size=1 + h["intermediate"],
        hidden_act=activations[h["act"]],
        layer_norm_eps=EPS_CHOICES[h["eps"]],
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=1 + h["types"],
        is_decoder=is_decoder,
        num_labels=num_labels if num_labels is not None else 2 + h["num_labels"],
    )
    if problem_type is not None:
        config["problem_type"] = problem_type
    return config


@st.composite
def configs(draw, activations, num_labels=None, is_decoder=False, problem_type=None):
    """A BertConfig as a dict: 1-3 layers, 1-4 heads of size 2-4, any supported activation and LayerNorm eps."""
    h = header(draw, config_fields(activations, num_labels))
    return config_of(h, activations, num_labels, is_decoder, problem_type)


def byte_grid(draw, rows):
    """A byte per element of a [rows, MAX_LENGTH] grid (`rows`: MAX_BATCH, or MAX_BATCH * MAX_CHOICES for multiple
    choice), as an int64 array."""
    return byte_values(draw, rows * MAX_LENGTH).reshape(rows, MAX_LENGTH)


def corner(grid, batch, length, choices=None):
    """The drawn shape's leading corner of a grid laid out at the largest shape: [batch, length], or
    [batch * choices, length] (example-major) for multiple choice."""
    if choices is None:
        return grid[:batch, :length]
    return grid.reshape(MAX_BATCH, MAX_CHOICES, MAX_LENGTH)[:batch, :choices, :length].reshape(-1, length)


def class_labels(raw, num_classes, level, ignore=IGNORE):
    """Class indices in [0, num_classes) from bytes; with ignore `level` k, bytes >= 256 - 64k are `ignore` (-100,
    or the port's ignored label), so any density, all-ignored included (k = 4)."""
    return np.where(raw >= 256 - 64 * level, ignore, raw % num_classes).astype(np.int64)


def qa_positions(raw, length):
    """QA positions from bytes: 0..length+3 (inside, at and beyond the length), then -1..-3 (below 0)."""
    v = raw % (length + 7)
    return np.where(v <= length + 3, v, length + 3 - v).astype(np.int64)


def regression_values(raw2):
    """Floats in [-3, 3) on a grid of 3 * 2^-15 (exact in float32) from pairs of bytes; (0, 0) is 0.0."""
    k = (raw2[..., 0] * 256 + raw2[..., 1]).astype(np.int64)
    return np.where(k < 32768, k, k - 65536) * (3.0 / 32768)


@st.composite
def cases(draw, head, activations, labels="class", num_labels=None, is_decoder=False, problem_type=None,
          label_dtype=np.int64, with_num_items=False, fixed=None, lacking=(), ignore_index=IGNORE):
    """A Case for `head`. `labels` says which label rule to reach:

    none | class (per-example class index, -100 allowed) | tokens (per-position, -100 allowed) |
    regression | multi_label | qa (positions below 0, inside, at and beyond the length) | pretraining.

    Inputs: input_ids, and each optionally: right padding (first token always real), token types, explicit
    positions. The choices: one header (the config's fields, the case's, the weight seed's four bytes), then one
    byte string per array (drawn whether or not the header uses it, so the choices keep their places when the
    shrinker turns an input off). A port's narrowing (`conformance.port.narrowing`): the config fields it `fixed`,
    the inputs it is `lacking` (never drawn) and its `ignore_index` label. Hypothesis copies a choice into another of the same size (the grids of ids,
    token types and positions), which keeps the header, so the same model serves several examples.
    """
    h = header(draw, config_fields(activations, num_labels) + case_fields(head) + SEED_FIELDS)
    config = dict(config_of(h, activations, num_labels, is_decoder, problem_type), **(fixed or {}))
    return case_of(draw, h, head, config, seed_of(h), labels, label_dtype, with_num_items, lacking, ignore_index)


def case_fields(head):
    """The header fields of a case besides its config and weight seed: shape, which inputs, label options."""
    fields = [("batch", MAX_BATCH), ("length", MAX_LENGTH), ("padding", 2), ("token_types", 2), ("positions", 2),
              ("ignore", IGNORE_LEVELS), ("label_shape", 2), ("num_items", 256)]
    return fields + [("choices", MAX_CHOICES)] if head == "BertForMultipleChoice" else fields


def case_of(draw, h, head, config, weights_seed, labels="class", label_dtype=np.int64, with_num_items=False,
            lacking=(), ignore_index=IGNORE):
    """The Case of header `h` (its `case_fields`) for `head` with `config` and `weights_seed`: draws one byte string
    per array (see `cases`)."""
    multiple_choice = head == "BertForMultipleChoice"
    batch, length = 1 + h["batch"], 1 + h["length"]
    choices = 1 + h["choices"] if multiple_choice else None
    rows = MAX_BATCH * (MAX_CHOICES if multiple_choice else 1)

    ids, lengths, types, positions = (byte_grid(draw, rows), byte_values(draw, rows), byte_grid(draw, rows), byte_grid(draw, rows))
    inputs = {"input_ids": corner(ids, batch, length, choices) % config["vocab_size"]}
    if h["padding"]:
        n = lengths.reshape(MAX_BATCH, -1)[:batch, :choices].reshape(-1) if multiple_choice else lengths[:batch]
        inputs["attention_mask"] = (np.arange(length)[None, :] < (1 + n % length)[:, None]).astype(np.int64)
    if h["token_types"]:
        inputs["token_type_ids"] = corner(types, batch, length, choices) % config["type_vocab_size"]
    if h["positions"] and "position_ids" not in lacking:
        inputs["position_ids"] = corner(positions, batch, length, choices) % MAX_POSITIONS
    if multiple_choice:
        inputs = {k: v.reshape(batch, choices, length) for k, v in inputs.items()}
        num_classes = choices
    else:
        num_classes = config["num_labels"]

    vocab, level = config["vocab_size"], h["ignore"]
    if labels == "none":
        label_arrays = {}
    elif labels == "class":
        classes = 2 if head == "BertForNextSentencePrediction" else num_classes
        raw = byte_values(draw, MAX_BATCH)[:batch]
        label_arrays = {"labels": class_labels(raw, classes, level, ignore_index).astype(label_dtype)}
    elif labels == "tokens":
        classes = vocab if head in ("BertForMaskedLM", "BertLMHeadModel") else config["num_labels"]
        grid = byte_grid(draw, MAX_BATCH)[:batch, :length]
        label_arrays = {"labels": class_labels(grid, classes, level, ignore_index).astype(label_dtype)}
    elif labels == "pretraining":
        grid, per_example = byte_grid(draw, MAX_BATCH)[:batch, :length], byte_values(draw, MAX_BATCH)[:batch]
        label_arrays = {"labels": class_labels(grid, vocab, level, ignore_index),
                        "next_sentence_label": class_labels(per_example, 2, level, ignore_index)}
    elif labels == "regression":  # two bytes per value, up to MAX_LABELS values per example
        n = config["num_labels"]
        raw = byte_values(draw, MAX_BATCH * MAX_LABELS * 2).reshape(MAX_BATCH, MAX_LABELS, 2)[:batch, :n]
        values = regression_values(raw)
        label_arrays = {"labels": values[:, 0] if n == 1 and h["label_shape"] == 0 else values}
    elif labels == "multi_label":
        raw = byte_values(draw, MAX_BATCH * MAX_LABELS).reshape(MAX_BATCH, MAX_LABELS)[:batch, :config["num_labels"]]
        label_arrays = {"labels": np.asarray(MULTI_LABEL_VALUES)[raw % len(MULTI_LABEL_VALUES)]}
    elif labels == "qa":
        raw = byte_values(draw, MAX_BATCH * 2).reshape(MAX_BATCH, 2)[:batch]
        shape = (batch,) if h["label_shape"] == 0 else (batch, 1)
        label_arrays = {"start_positions": qa_positions(raw[:, 0], length).reshape(shape),
                        "end_positions": qa_positions(raw[:, 1], length).reshape(shape)}
    else:
        raise ValueError(labels)
    num_items = 1 + h["num_items"] % (batch * length) if with_num_items else None
    return Case(head, config, weights_seed, inputs, label_arrays, num_items)


@st.composite
def case_batches(draw, head, activations, subcases=SUBCASES, then=None, num_labels=None, is_decoder=False,
                 problem_type=None, fixed=None, **kw):
    """A `CaseBatch` of `subcases` independent Cases for `head` on one config and weight seed (one model to build):
    one header (the config's fields and the seed), then per sub-case a header of its `case_fields` and its arrays,
    drawn as by `cases` (which takes the same keyword arguments). With `then` (Case -> strategy of a Case), each
    sub-case is what `then` draws from it (e.g. the case with its labels corrupted)."""
    h = header(draw, config_fields(activations, num_labels) + SEED_FIELDS)
    config = dict(config_of(h, activations, num_labels, is_decoder, problem_type), **(fixed or {}))
    out = []
    for _ in range(subcases):
        case = case_of(draw, header(draw, case_fields(head)), head, config, seed_of(h), **kw)
        out.append(draw(then(case)) if then is not None else case)
    return CaseBatch(out)
