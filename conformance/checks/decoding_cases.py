"""Hypothesis strategies for decoder cases: a causal BERT (is_decoder) with, optionally, cross-attention to drawn
encoder states, and the chunks in which incremental decoding feeds the sequence.

Built on `conformance.strategies.cases` (the config, input_ids, right padding with the first token real, token
types, explicit positions), plus one choice of bytes for: whether cross-attention is on (where drawn), the encoder
length, whether an encoder mask is given, the encoder states, the encoder mask and the chunk cuts. Every byte
shrinks toward the simplest case: no cross-attention, one encoder position, no encoder mask, states 0.0, one chunk.
"""

import numpy as np
from hypothesis import strategies as st

from ..case import Case
from ..check import activations
from ..port import narrowing
from ..strategies import MAX_BATCH, MAX_LENGTH, cases, header_and_bytes

MAX_ENCODER_LENGTH = 6
MAX_HIDDEN = 16  # 4 heads of size 4 (conformance.strategies.config_of)


def encoder_values(raw):
    """Floats in [-4, 4) on a grid of 1/32 from bytes, signed (byte 0 is 0.0; 128..255 are negative)."""
    return np.where(raw < 128, raw, raw - 256) / 32.0


def chunk_sizes(raw, length):
    """Chunk sizes summing to `length`: a cut after position t (t < length - 1) where byte t is odd (all bytes 0:
    one chunk, the whole sequence)."""
    cuts = [t + 1 for t in range(length - 1) if raw[t] % 2 == 1]
    bounds = [0] + cuts + [length]
    return np.diff(bounds).astype(np.int64)


@st.composite
def decoding_cases(draw, head, activations, cross=None, fixed=None, lacking=(), ignore_index=-100):
    """A decoder Case for `head` (BertModel or BertLMHeadModel, is_decoder=True): cross-attention on (`cross`
    True), off (False) or drawn (None); with it, `encoder_hidden_states` [batch, 1-6, hidden] and optionally an
    `encoder_attention_mask` that keeps 1 to all encoder positions (right padding). `inputs["chunks"]` holds the
    chunk sizes of incremental decoding (the harness's, not a forward input)."""
    base = draw(cases(head, activations, labels="none", is_decoder=True, fixed=fixed, lacking=lacking,
                      ignore_index=ignore_index))
    fields = [("cross", 2), ("enc_length", MAX_ENCODER_LENGTH), ("enc_mask", 2)]
    sizes = (MAX_BATCH * MAX_ENCODER_LENGTH * MAX_HIDDEN, MAX_BATCH, MAX_LENGTH)
    h, raw = header_and_bytes(draw, fields, sum(sizes))
    states, kept, cuts = np.split(raw, np.cumsum(sizes)[:-1])
    batch, length = base.inputs["input_ids"].shape
    hidden = base.config["hidden_size"]
    on = bool(h["cross"]) if cross is None else cross
    config = dict(base.config, add_cross_attention=on)
    inputs = dict(base.inputs)
    if on:
        enc_length = 1 + h["enc_length"]
        grid = states.reshape(MAX_BATCH, MAX_ENCODER_LENGTH, MAX_HIDDEN)[:batch, :enc_length, :hidden]
        inputs["encoder_hidden_states"] = encoder_values(grid)
        if h["enc_mask"]:
            n = 1 + kept[:batch] % enc_length
            inputs["encoder_attention_mask"] = (np.arange(enc_length)[None, :] < n[:, None]).astype(np.int64)
    inputs["chunks"] = chunk_sizes(cuts, length)
    return Case(head, config, base.weights_seed, inputs)


def decoder_cases(head, **kw):
    """adapter -> the decoder cases of `head` over the activations both sides know, narrowed to the adapter's port."""
    return lambda adapter: decoding_cases(head, activations(adapter), **kw, **narrowing(adapter, head))
