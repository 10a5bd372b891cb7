"""The BERT encoder in numpy float64: embeddings, self-attention layers and the pooler.

Weights are a plain dict named like the transformers `state_dict`; `prefix` is `"bert."` inside the task
heads and `""` for a bare `BertModel`.
"""

import numpy as np

from . import attention
from .activations import activation
from .config import BertSpec
from .errors import ReferenceInputError


def linear(x, weight, bias=None):
    """Affine map y = x W^T + b, with W stored [out_features, in_features] as torch does."""
    y = x @ weight.T
    return y if bias is None else y + bias


def layer_norm(x, weight, bias, eps):
    """Normalise the last axis to mean 0 and (biased) variance 1, with eps inside the square root, then scale and shift."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _check_ids(name, ids, upper):
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ReferenceInputError(f"{name} must be integers, got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= upper):
        raise ReferenceInputError(f"{name} must lie in [0, {upper}), got values in [{ids.min()}, {ids.max()}]")
    return ids


def embeddings(weights, spec: BertSpec, input_ids, token_type_ids=None, position_ids=None, prefix="bert.",
               inputs_embeds=None):
    """Word + position + token-type embeddings, then LayerNorm.

    Missing `position_ids` default to 0..L-1 for every row; missing `token_type_ids` default to all 0. Given
    `inputs_embeds` ([B, L, hidden]), they replace the word embeddings (`input_ids` is then None). The absolute
    position embedding is added only when `spec.position_embedding_type` is "absolute" (relative types score
    distances inside attention instead).
    """
    if inputs_embeds is not None:
        if input_ids is not None:
            raise ReferenceInputError("give either input_ids or inputs_embeds, not both")
        words = np.asarray(inputs_embeds, dtype=np.float64)
        if words.ndim != 3 or words.shape[-1] != spec.hidden_size:
            raise ReferenceInputError(f"inputs_embeds must be [batch, sequence, {spec.hidden_size}], got {words.shape}")
        input_ids = np.zeros(words.shape[:2], dtype=np.int64)  # only its shape is used below
    else:
        input_ids = _check_ids("input_ids", input_ids, spec.vocab_size)
        words = None
    batch, length = input_ids.shape
    if position_ids is None:
        position_ids = np.broadcast_to(np.arange(length), (batch, length))
    if token_type_ids is None:
        token_type_ids = np.zeros((batch, length), dtype=np.int64)
    position_ids = _check_ids("position_ids", position_ids, spec.max_position_embeddings)
    token_type_ids = _check_ids("token_type_ids", token_type_ids, spec.type_vocab_size)
    for name, ids in (("position_ids", position_ids), ("token_type_ids", token_type_ids)):
        if ids.shape != input_ids.shape:
            raise ReferenceInputError(f"{name} shape {ids.shape} != input_ids shape {input_ids.shape}")
    p = prefix + "embeddings."
    x = (weights[p + "word_embeddings.weight"][input_ids] if words is None else words) \
        + weights[p + "token_type_embeddings.weight"][token_type_ids]
    if spec.position_embedding_type == "absolute":
        x = x + weights[p + "position_embeddings.weight"][position_ids]
    return layer_norm(x, weights[p + "LayerNorm.weight"], weights[p + "LayerNorm.bias"], spec.layer_norm_eps)


def allowed_keys(attention_mask, is_decoder, fully_masked="refuse", causal_3d=True):
    """Which keys each query may attend to, as bool [batch, query, key].

    A key is visible when its attention_mask entry is 1 ([batch, key], or [batch, query, key] for a mask per
    query); a decoder additionally hides keys after the query (causal). A query that sees no key at all has no defined output: refused unless `fully_masked` names another
    rule of `reference.attention.FULLY_MASKED` (which `attention_probs` then applies). With `causal_3d` False a
    [batch, query, key] mask is the whole mask, a decoder's too (no causal mask added; transformers 4.x's rule).
    """
    mask = np.asarray(attention_mask)
    if not np.isin(mask, (0, 1)).all():
        raise ReferenceInputError("attention_mask must hold only 0 and 1")
    length = mask.shape[-1]
    per_query = mask if mask.ndim == 3 else mask[:, None, :]
    allowed = np.broadcast_to(per_query.astype(bool), (mask.shape[0], length, length))
    if is_decoder and (mask.ndim == 2 or causal_3d):
        allowed = allowed & np.tril(np.ones((length, length), dtype=bool))
    if fully_masked == "refuse" and not allowed.any(axis=-1).all():
        raise ReferenceInputError("a query position attends to no key (fully padded row); its output is undefined")
    return allowed


def masked_softmax(scores, allowed):
    """Softmax over the last axis restricted to allowed entries; disallowed entries get probability exactly 0."""
    scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


def self_attention(x, weights, spec: BertSpec, allowed, prefix, head_mask=None, fully_masked="refuse",
                   record=None, bias=None):
    """Multi-head scaled dot-product attention: softmax(Q K^T / sqrt(head_size)) V per head, heads concatenated.

    `allowed` is [batch, query, key]; `prefix` ends in `attention.`. Returns the attention block's output after
    its dense projection, residual and LayerNorm. With a relative `spec.position_embedding_type` the distance
    scores of `attention.relative_position_scores` (table `self.distance_embedding.weight`) join Q K^T before the
    scaling. A query that sees no key follows `fully_masked` (`attention.attention_probs`); `head_mask` ([heads])
    multiplies each head's probabilities; `record` (a list) receives the probabilities, [B, H, L, L], as used.
    `allowed` may also be [batch, 1 or heads, query, key] (a 4D mask), and `bias` (same shape, from
    `attention.mask_4d`) is added to the scaled scores.
    """
    batch, length, hidden = x.shape
    heads, size = spec.num_attention_heads, spec.head_size

    def split(t):  # [B, L, H*D] -> [B, H, L, D]
        return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

    p = prefix + "self."
    q = split(linear(x, weights[p + "query.weight"], weights[p + "query.bias"]))
    k = split(linear(x, weights[p + "key.weight"], weights[p + "key.bias"]))
    v = split(linear(x, weights[p + "value.weight"], weights[p + "value.bias"]))
    scores = q @ k.transpose(0, 1, 3, 2)
    if spec.position_embedding_type != "absolute":
        scores = scores + attention.relative_position_scores(
            q, k, weights[p + "distance_embedding.weight"], spec.max_position_embeddings, spec.position_embedding_type)
    allowed = allowed if allowed.ndim == 4 else allowed[:, None]
    scaled = scores / np.sqrt(size) + (0.0 if bias is None else bias)
    if fully_masked == "refuse":
        probs = masked_softmax(scaled, allowed)
    else:
        probs = attention.attention_probs(scaled, allowed, fully_masked)
    if head_mask is not None:
        probs = probs * np.asarray(head_mask, dtype=np.float64)[None, :, None, None]
    if record is not None:
        record.append(probs)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
    o = prefix + "output."
    out = linear(context, weights[o + "dense.weight"], weights[o + "dense.bias"])
    return layer_norm(out + x, weights[o + "LayerNorm.weight"], weights[o + "LayerNorm.bias"], spec.layer_norm_eps)


def encoder_layer(x, weights, spec: BertSpec, allowed, prefix, head_mask=None, fully_masked="refuse", record=None,
                  bias=None):
    """One transformer layer (post-LN): attention block, then dense -> activation -> dense, residual, LayerNorm.
    `head_mask`, `fully_masked`, `record` and `bias` go to `self_attention`."""
    x = self_attention(x, weights, spec, allowed, prefix + "attention.", head_mask, fully_masked, record, bias)
    act = activation(spec.hidden_act)
    h = act(linear(x, weights[prefix + "intermediate.dense.weight"], weights[prefix + "intermediate.dense.bias"]))
    o = prefix + "output."
    h = linear(h, weights[o + "dense.weight"], weights[o + "dense.bias"])
    return layer_norm(h + x, weights[o + "LayerNorm.weight"], weights[o + "LayerNorm.bias"], spec.layer_norm_eps)


def pooler(sequence_output, weights, prefix="bert."):
    """tanh(dense(hidden state of the first token))."""
    p = prefix + "pooler.dense."
    return np.tanh(linear(sequence_output[:, 0], weights[p + "weight"], weights[p + "bias"]))


def bert_model(
    weights,
    spec: BertSpec,
    input_ids,
    attention_mask=None,
    token_type_ids=None,
    position_ids=None,
    prefix="bert.",
    add_pooling_layer=True,
    inputs_embeds=None,
    head_mask=None,
    fully_masked="refuse",
    record=None,
    mask_4d="refuse",
    causal_3d=True,
):
    """BertModel: embeddings, `num_hidden_layers` encoder layers, and optionally the pooler.

    A missing `attention_mask` means every position is attended. Returns `(last_hidden_state, pooler_output)`,
    the latter `None` without the pooling layer. `inputs_embeds` replaces `input_ids` (see `embeddings`);
    `head_mask` ([heads] or [layers, heads]) scales each layer's attention probabilities; a query that sees no key
    follows `fully_masked` (`reference.attention`); `record` (a dict) receives "hidden_states" (the embeddings
    output and every layer's output, num_hidden_layers + 1 arrays) and "attentions" (each layer's probabilities).
    A 4D `attention_mask` [batch, 1 or heads, query, key] follows `mask_4d` (`attention.mask_4d`: refused by
    default, a keep-mask or an additive bias); it is the whole mask (a decoder adds no causal mask to it); so is a
    [batch, query, key] mask with `causal_3d` False (`allowed_keys`).
    """
    shape = np.shape(inputs_embeds)[:2] if inputs_embeds is not None else np.shape(input_ids)
    if input_ids is not None:
        input_ids = np.asarray(input_ids)
        if input_ids.ndim != 2:
            raise ReferenceInputError(f"input_ids must be [batch, sequence], got shape {input_ids.shape}")
    if attention_mask is None:
        attention_mask = np.ones(shape, dtype=np.int64)
    bias = None
    if np.ndim(attention_mask) == 4:
        if np.shape(attention_mask)[::2] != (shape[0], shape[1]) or np.shape(attention_mask)[3] != shape[1]:
            raise ReferenceInputError(f"attention_mask shape {np.shape(attention_mask)} != input shape {tuple(shape)}")
        allowed, bias = attention.mask_4d(attention_mask, mask_4d, spec.num_attention_heads, fully_masked)
    elif np.shape(attention_mask) not in (tuple(shape), tuple(shape) + tuple(shape[-1:])):
        raise ReferenceInputError(f"attention_mask shape {np.shape(attention_mask)} != input shape {tuple(shape)}")
    else:
        allowed = allowed_keys(attention_mask, spec.is_decoder, fully_masked, causal_3d)
    masks = None if head_mask is None else attention.layer_head_mask(head_mask, spec.num_hidden_layers,
                                                                     spec.num_attention_heads)
    x = embeddings(weights, spec, input_ids, token_type_ids, position_ids, prefix, inputs_embeds)
    hidden_states, attentions = [x], []
    for i in range(spec.num_hidden_layers):
        x = encoder_layer(x, weights, spec, allowed, f"{prefix}encoder.layer.{i}.", None if masks is None else masks[i],
                          fully_masked, None if record is None else attentions, bias)
        hidden_states.append(x)
    if record is not None:
        record["hidden_states"], record["attentions"] = hidden_states, attentions
    pooled = pooler(x, weights, prefix) if add_pooling_layer else None
    return x, pooled
