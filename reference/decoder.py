"""The BERT decoder in numpy float64: cross-attention, the decoder layer, and incremental decoding with a cache.

A decoder layer (`is_decoder=True`) is causal self-attention, then, with `add_cross_attention=True` and encoder
states given, cross-attention (queries from the self-attention block's output, keys and values from
`encoder_hidden_states`, keys hidden where `encoder_attention_mask` is 0; its own `crossattention.*` weights and
LayerNorm), then the feed-forward block. A cache holds, per layer, the self-attention keys and values of the
positions already decoded, in position order; a chunk of new tokens appends its own after them, and its positions
continue from the cache length. Weights are named like the transformers `state_dict`, as in `reference.encoder`.
"""

import numpy as np

from .activations import activation
from .config import BertSpec
from .encoder import embeddings, layer_norm, linear, masked_softmax, pooler
from .errors import ReferenceInputError, Refusal

CROSS_NOT_DECODER = Refusal("cross-attention-not-decoder", ("ValueError",),
                            r"should be used as a decoder model if cross attention is added")
NO_CROSS_LAYERS = Refusal("encoder-states-without-cross-attention", ("ValueError",),
                          r"has to be instantiated with cross-attention layers")


def _split(t, spec):
    """[B, L, H*D] -> [B, H, L, D]."""
    batch, length, _ = t.shape
    return t.reshape(batch, length, spec.num_attention_heads, spec.head_size).transpose(0, 2, 1, 3)


def keys_values(x, weights, spec: BertSpec, prefix):
    """The keys and values `x` gives an attention block (`prefix` ends in `attention.` or `crossattention.`), each
    [batch, heads, length, head_size]."""
    p = prefix + "self."
    return (_split(linear(x, weights[p + "key.weight"], weights[p + "key.bias"]), spec),
            _split(linear(x, weights[p + "value.weight"], weights[p + "value.bias"]), spec))


def attend(x, keys, values, weights, spec: BertSpec, allowed, prefix):
    """An attention block whose queries come from `x` [B, Lq, hidden] and whose keys and values are given
    ([B, H, Lk, D]): softmax(Q K^T / sqrt(head_size)) V over the `allowed` keys ([B, Lq, Lk]), heads concatenated,
    dense projection, residual `x`, LayerNorm."""
    batch, length, hidden = x.shape
    p = prefix + "self."
    q = _split(linear(x, weights[p + "query.weight"], weights[p + "query.bias"]), spec)
    probs = masked_softmax(q @ keys.transpose(0, 1, 3, 2) / np.sqrt(spec.head_size), allowed[:, None])
    context = (probs @ values).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
    o = prefix + "output."
    out = linear(context, weights[o + "dense.weight"], weights[o + "dense.bias"])
    return layer_norm(out + x, weights[o + "LayerNorm.weight"], weights[o + "LayerNorm.bias"], spec.layer_norm_eps)


def cross_allowed(encoder_attention_mask, queries, causal_when_square=False):
    """Which encoder positions each of `queries` decoder positions may attend to, bool [B, queries, Le]: those whose
    `encoder_attention_mask` is 1, for every query alike (no causality). A row with no visible encoder position
    has no defined output, so it is refused.

    `causal_when_square` is transformers 4.41's sdpa rule: when every entry of the batch's encoder mask is 1 and
    the forward has as many decoder positions (more than one) as encoder positions, the mask is dropped and torch's
    `is_causal` applies instead, so decoder position i (counted within the forward) sees encoder positions 0..i."""
    mask = np.asarray(encoder_attention_mask)
    if not np.isin(mask, (0, 1)).all():
        raise ReferenceInputError("encoder_attention_mask must hold only 0 and 1")
    if not mask.astype(bool).any(axis=-1).all():
        raise ReferenceInputError("an example's encoder_attention_mask hides every encoder position")
    allowed = np.broadcast_to(mask[:, None, :].astype(bool), (mask.shape[0], queries, mask.shape[1]))
    if causal_when_square and mask.all() and queries == mask.shape[1] > 1:
        allowed = allowed & np.tril(np.ones((queries, queries), dtype=bool))[None]
    return allowed


def causal_allowed(attention_mask, past, length):
    """Which keys (the `past` cached positions, then the `length` new ones) each new query may attend to, bool
    [B, length, past + length]: keys whose `attention_mask` entry (over past and new positions) is 1 and whose
    position is not after the query's (absolute position past + i). A query that sees no key is refused."""
    mask = np.asarray(attention_mask)
    if not np.isin(mask, (0, 1)).all():
        raise ReferenceInputError("attention_mask must hold only 0 and 1")
    if mask.shape[-1] != past + length:
        raise ReferenceInputError(f"attention_mask covers {mask.shape[-1]} positions, past + new is {past + length}")
    causal = np.arange(past + length)[None, :] <= (past + np.arange(length))[:, None]
    allowed = mask[:, None, :].astype(bool) & causal[None]
    if not allowed.any(axis=-1).all():
        raise ReferenceInputError("a query position attends to no key (fully padded row); its output is undefined")
    return allowed


def feed_forward(x, weights, spec: BertSpec, prefix):
    """dense -> activation -> dense, residual, LayerNorm (the layer's `intermediate` and `output`)."""
    h = activation(spec.hidden_act)(
        linear(x, weights[prefix + "intermediate.dense.weight"], weights[prefix + "intermediate.dense.bias"]))
    o = prefix + "output."
    h = linear(h, weights[o + "dense.weight"], weights[o + "dense.bias"])
    return layer_norm(h + x, weights[o + "LayerNorm.weight"], weights[o + "LayerNorm.bias"], spec.layer_norm_eps)


def decoder_layer(x, weights, spec: BertSpec, allowed, prefix, past=None, encoder_states=None, encoder_allowed=None):
    """One decoder layer on the new positions `x`: self-attention over the cached keys/values `past` (a pair, or
    None) followed by those of `x` (`allowed` [B, Lq, past + Lq]), then cross-attention to `encoder_states` where
    given (`encoder_allowed` [B, Lq, Le]), then the feed-forward block. Returns (output, (keys, values)): the
    layer's cache after this step, the past first."""
    keys, values = keys_values(x, weights, spec, prefix + "attention.")
    if past is not None:
        keys, values = np.concatenate([past[0], keys], axis=2), np.concatenate([past[1], values], axis=2)
    h = attend(x, keys, values, weights, spec, allowed, prefix + "attention.")
    if encoder_states is not None:
        ck, cv = keys_values(encoder_states, weights, spec, prefix + "crossattention.")
        h = attend(h, ck, cv, weights, spec, encoder_allowed, prefix + "crossattention.")
    return feed_forward(h, weights, spec, prefix), (keys, values)


def decoder_model(weights, spec: BertSpec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                  encoder_hidden_states=None, encoder_attention_mask=None, cache=None, prefix="bert.",
                  add_pooling_layer=True, cross_causal_when_square=False):
    """BertModel as a decoder (`spec.is_decoder`) on new tokens `input_ids` after the `cache` (a list of one
    (keys, values) pair per layer, or None for none). `attention_mask` covers past and new positions (all 1 when
    missing); missing `position_ids` continue from the cache length (past + 0, past + 1, ...). Returns
    (last_hidden_state of the new positions, pooler_output or None, the cache after this step). Refused:
    cross-attention layers without is_decoder, and encoder states for a model without cross-attention layers.
    `cross_causal_when_square`: 4.41's sdpa rule of `cross_allowed`."""
    if spec.add_cross_attention and not spec.is_decoder:
        raise ReferenceInputError("cross-attention layers need is_decoder=True", expected=CROSS_NOT_DECODER)
    if not spec.is_decoder:
        raise ReferenceInputError("decoder_model needs is_decoder=True")
    if encoder_hidden_states is not None and not spec.add_cross_attention:
        raise ReferenceInputError("encoder_hidden_states given to a model without cross-attention layers",
                                  expected=NO_CROSS_LAYERS)
    input_ids = np.asarray(input_ids)
    if input_ids.ndim != 2:
        raise ReferenceInputError(f"input_ids must be [batch, sequence], got shape {input_ids.shape}")
    batch, length = input_ids.shape
    past = 0 if cache is None else cache[0][0].shape[2]
    if attention_mask is None:
        attention_mask = np.ones((batch, past + length), dtype=np.int64)
    if position_ids is None:
        position_ids = np.broadcast_to(past + np.arange(length), (batch, length))
    allowed = causal_allowed(attention_mask, past, length)
    encoder_allowed = None
    if encoder_hidden_states is not None:
        encoder_hidden_states = np.asarray(encoder_hidden_states, dtype=np.float64)
        if encoder_attention_mask is None:
            encoder_attention_mask = np.ones(encoder_hidden_states.shape[:2], dtype=np.int64)
        encoder_allowed = cross_allowed(encoder_attention_mask, length, cross_causal_when_square)
    x = embeddings(weights, spec, input_ids, token_type_ids, position_ids, prefix)
    new_cache = []
    for i in range(spec.num_hidden_layers):
        x, kv = decoder_layer(x, weights, spec, allowed, f"{prefix}encoder.layer.{i}.",
                              None if cache is None else cache[i], encoder_hidden_states, encoder_allowed)
        new_cache.append(kv)
    return x, (pooler(x, weights, prefix) if add_pooling_layer else None), new_cache


def chunk_bounds(length, chunks):
    """The [start, end) of each chunk: `chunks` is a sequence of positive sizes summing to `length`."""
    sizes = [int(c) for c in chunks]
    if any(c < 1 for c in sizes) or sum(sizes) != length:
        raise ReferenceInputError(f"chunk sizes {sizes} must be positive and sum to the length {length}")
    ends = np.cumsum(sizes)
    return list(zip(ends - sizes, ends))


def decode_incremental(weights, spec: BertSpec, input_ids, chunks, attention_mask=None, token_type_ids=None,
                       position_ids=None, encoder_hidden_states=None, encoder_attention_mask=None, prefix="bert.",
                       cross_causal_when_square=False):
    """Decode `input_ids` chunk by chunk (`chunks`: sizes summing to the length), each step feeding its new
    tokens, the attention mask up to its end, its slice of `token_type_ids`/`position_ids` (when given), the
    encoder states, and the cache of the steps before. Returns the last hidden states of all positions, in order.
    `cross_causal_when_square`: 4.41's sdpa rule of `cross_allowed`, per step."""
    input_ids = np.asarray(input_ids)
    batch, length = input_ids.shape
    if attention_mask is None:
        attention_mask = np.ones((batch, length), dtype=np.int64)
    cache, outputs = None, []
    for start, end in chunk_bounds(length, chunks):
        def part(a):
            return None if a is None else np.asarray(a)[:, start:end]
        hidden, _, cache = decoder_model(weights, spec, input_ids[:, start:end], np.asarray(attention_mask)[:, :end],
                                         part(token_type_ids), part(position_ids), encoder_hidden_states,
                                         encoder_attention_mask, cache, prefix, add_pooling_layer=False,
                                         cross_causal_when_square=cross_causal_when_square)
        outputs.append(hidden)
    return np.concatenate(outputs, axis=1)
