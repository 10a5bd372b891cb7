"""Cases of the gradient checks: `CaseBatch`es of labelled cases on one model, with the model surface's features.

Each drawn example is one head (drawn among those that take the feature), one config and weight seed (one model to
build) and `SUBCASES` sub-cases, each with its own inputs and labels (`conformance.strategies.case_of`), so a drawn
example carries several forward-and-backward calls. Features (each a choice of header bytes, shrinking toward the
simplest value):
- "mask": an attention mask of pattern "any" (right or left padding, holes, holes with queries that see no key;
  `surface_cases.surface_mask`) or "3d" (a key mask per query, [batch, query, key]);
- "relative": `position_embedding_type` relative_key or relative_key_query (for the whole batch);
- "head_mask": a [heads] or [layers, heads] head_mask of values in `surface_cases.HEAD_MASK_VALUES`;
- "cross": a decoder with cross-attention: `encoder_hidden_states` [batch, 1-6, hidden] and optionally an
  `encoder_attention_mask` keeping 1 to all encoder positions (`decoding_cases`).
"""

import numpy as np
from hypothesis import strategies as st

from ..batch import CaseBatch
from ..check import activations
from ..port import narrowing
from ..strategies import MAX_BATCH, MAX_LENGTH, SEED_FIELDS, case_fields, case_of, config_fields, config_of, header, \
    header_and_bytes, seed_of
from .decoding_cases import MAX_ENCODER_LENGTH, MAX_HIDDEN, encoder_values
from .surface_cases import HEAD_MASK_VALUES, MAX_HEADS, MAX_LAYERS, MASKS, RELATIVE, surface_mask

SUBCASES = 6  # sub-cases per drawn example: building the models of a new config costs several forwards and backwards
LABELS = {"BertForPreTraining": "pretraining", "BertForMaskedLM": "tokens", "BertLMHeadModel": "tokens",
          "BertForNextSentencePrediction": "class", "BertForSequenceClassification": "class",
          "BertForMultipleChoice": "class", "BertForTokenClassification": "tokens", "BertForQuestionAnswering": "qa"}
NUM_LABELS = {"BertForMultipleChoice": 1, "BertForQuestionAnswering": 2}
ENCODER_HEADS = ("BertForSequenceClassification", "BertForTokenClassification", "BertForMaskedLM",
                 "BertForPreTraining", "BertForQuestionAnswering", "BertForNextSentencePrediction")
"""The heads of an encoder that take the surface arguments (multiple choice flattens its inputs; the decoder is
BertLMHeadModel's own check)."""


def with_features(case, features, raw_header, raw):
    """`case` with the `features` drawn from a header `raw_header` (mask, head_mask_shape, enc_length, enc_mask) and
    bytes `raw` (`feature_bytes` of them)."""
    inputs, config = dict(case.inputs), case.config
    batch, length = inputs["input_ids"].shape
    grid = MAX_BATCH * MAX_LENGTH
    bits, lengths, rest = raw[:grid].reshape(MAX_BATCH, MAX_LENGTH), raw[grid:grid + MAX_BATCH], raw[grid + MAX_BATCH:]
    mask = features.get("mask")
    if mask == "3d":
        cube = rest[:grid * MAX_LENGTH].reshape(MAX_BATCH, MAX_LENGTH, MAX_LENGTH)[:batch, :length, :length]
        inputs["attention_mask"] = (cube % 2).astype(np.int64)
    elif mask is not None:
        kind = MASKS[raw_header["mask"]] if mask == "any" else mask
        inputs["attention_mask"] = surface_mask(kind, bits, lengths, batch, length)
    if features.get("head_mask"):
        layers, heads = config["num_hidden_layers"], config["num_attention_heads"]
        shape = (heads,) if raw_header["head_mask_shape"] == 0 else (layers, heads)
        values = np.asarray(HEAD_MASK_VALUES)[rest[:int(np.prod(shape))] % len(HEAD_MASK_VALUES)]
        inputs["head_mask"] = values.reshape(shape)
    if features.get("cross"):
        enc_length, hidden = 1 + raw_header["enc_length"], config["hidden_size"]
        states = rest[:MAX_BATCH * MAX_ENCODER_LENGTH * MAX_HIDDEN].reshape(MAX_BATCH, MAX_ENCODER_LENGTH, MAX_HIDDEN)
        inputs["encoder_hidden_states"] = encoder_values(states[:batch, :enc_length, :hidden])
        if raw_header["enc_mask"]:
            n = 1 + lengths[:batch] % enc_length
            inputs["encoder_attention_mask"] = (np.arange(enc_length)[None, :] < n[:, None]).astype(np.int64)
    case.inputs = inputs
    return case


FEATURE_FIELDS = [("mask", len(MASKS)), ("head_mask_shape", 2), ("enc_length", MAX_ENCODER_LENGTH), ("enc_mask", 2)]


def feature_bytes(features):
    """How many bytes `with_features` reads for `features`."""
    grid = MAX_BATCH * MAX_LENGTH
    rest = max(grid * MAX_LENGTH if features.get("mask") == "3d" else 0,
               MAX_LAYERS * MAX_HEADS if features.get("head_mask") else 0,
               MAX_BATCH * MAX_ENCODER_LENGTH * MAX_HIDDEN if features.get("cross") else 0)
    return grid + MAX_BATCH + rest


@st.composite
def gradient_batches(draw, heads, acts, features, narrow, subcases=SUBCASES):
    """A `CaseBatch` of `subcases` labelled cases of a head drawn from `heads` (the first is the simplest) on one
    config and weight seed, each with `features` (see the module docstring; {} for the default path). `narrow`:
    head -> the port's narrowing (`conformance.port.narrowing`)."""
    head = heads[0] if len(heads) == 1 else draw(st.sampled_from(heads))
    num_labels = NUM_LABELS.get(head)
    decoder = head == "BertLMHeadModel"
    h = header(draw, config_fields(acts, num_labels) + SEED_FIELDS + [("relative", len(RELATIVE))])
    kw = narrow(head)
    config = dict(config_of(h, acts, num_labels, decoder, None), **(kw.pop("fixed") or {}))
    if features.get("relative"):
        config["position_embedding_type"] = RELATIVE[h["relative"]]
    if features.get("cross"):
        config["add_cross_attention"] = True
    out = []
    for _ in range(subcases):
        case = case_of(draw, header(draw, case_fields(head)), head, config, seed_of(h), LABELS[head], **kw)
        if features:
            raw_header, raw = header_and_bytes(draw, FEATURE_FIELDS, feature_bytes(features))
            case = with_features(case, features, raw_header, raw)
        out.append(case)
    return CaseBatch(out)


def gradient_strategy(heads, features=None, subcases=SUBCASES):
    """adapter -> `gradient_batches` of `heads` with `features`, over the activations both sides know, narrowed to
    the adapter's port."""
    return lambda adapter: gradient_batches(tuple(heads), activations(adapter), dict(features or {}),
                                            lambda head: narrowing(adapter, head), subcases)
