"""The BERT encoder's backward pass in numpy float64: the gradient of a scalar loss with respect to every encoder
parameter, given the gradients of the loss with respect to the encoder's outputs.

Each forward step here computes what `reference.encoder` computes (it reuses its `allowed_keys` and the steps of
`reference.backward_steps`) and returns, with its output, a function that takes d(loss)/d(output), adds the
parameters' gradients into a dict `grads` (name -> array, accumulated with +=) and returns d(loss)/d(input).
Covered: `reference.encoder.bert_model` with any 2D or 3D mask and fully masked queries under each rule of
`reference.attention` (`reference.backward_attention` states the softmax's rule), absolute or relative positions
(a relative type adds no position embedding, so that table gets zeros; the distance embeddings get theirs),
head_mask, every activation; and a decoder's cross-attention to encoder states (`reference.decoder`), whose gradient
is added under `ENCODER_STATES`. The word embeddings' row `spec.pad_token_id` gets no gradient from the embedding
lookup, as `nn.Embedding(padding_idx=pad_token_id)` gives it none.
"""

import numpy as np

from .activations import activation
from .attention import layer_head_mask
from .backward_attention import attention_block_step
from .backward_steps import accumulate, derivative, layer_norm_step, linear_step, softmax_backward  # noqa: F401
from .config import BertSpec
from .decoder import cross_allowed
from .encoder import allowed_keys
from .errors import ReferenceInputError

ENCODER_STATES = "encoder_hidden_states"
"""The key of `grads` under which the gradient of the encoder states a decoder's cross-attention reads is added."""


def embeddings_step(weights, grads, spec: BertSpec, input_ids, token_type_ids, position_ids, prefix):
    """Word + position (absolute type only) + token-type embeddings, then LayerNorm (ids already complete: no defaults
    here). The backward scatters d(sum) into the rows each lookup read (np.add.at: repeated ids add up); the word embeddings' row
    `spec.pad_token_id` receives nothing from the lookup."""
    p = prefix + "embeddings."
    absolute = spec.position_embedding_type == "absolute"
    x = weights[p + "word_embeddings.weight"][input_ids] + weights[p + "token_type_embeddings.weight"][token_type_ids]
    if absolute:
        x = x + weights[p + "position_embeddings.weight"][position_ids]
    y, norm_back = layer_norm_step(x, weights, grads, p + "LayerNorm", spec.layer_norm_eps)

    def back(dy):
        dx = norm_back(dy)
        for table, ids in (("word_embeddings", input_ids), ("token_type_embeddings", token_type_ids),
                           ("position_embeddings", position_ids)):
            name = p + table + ".weight"
            g = np.zeros_like(weights[name])
            keep = ids != spec.pad_token_id if table == "word_embeddings" else np.ones(ids.shape, dtype=bool)
            if absolute or table != "position_embeddings":
                np.add.at(g, ids[keep], dx[keep])
            accumulate(grads, name, g)

    return y, back


def layer_step(x, weights, grads, spec: BertSpec, allowed, prefix, head_mask=None, fully_masked="refuse",
               encoder_states=None, encoder_allowed=None):
    """One layer: the self-attention block (`reference.backward_attention`), with `encoder_states` the cross-attention
    block (queries from the self-attention output, keys and values from the states, `encoder_allowed` [B, L, Le]),
    then intermediate dense -> activation -> output dense, residual and LayerNorm; the activation's backward
    multiplies by its derivative at the intermediate pre-activation. back(dy) -> (dx, d encoder_states or None)."""
    a, attention_back = attention_block_step(x, weights, grads, spec, allowed, prefix + "attention.",
                                             head_mask=head_mask, fully_masked=fully_masked)
    cross_back = None
    if encoder_states is not None:
        a, cross_back = attention_block_step(a, weights, grads, spec, encoder_allowed, prefix + "crossattention.",
                                             source=encoder_states)
    pre, inter_back = linear_step(a, weights, grads, prefix + "intermediate.dense")
    out, dense_back = linear_step(activation(spec.hidden_act)(pre), weights, grads, prefix + "output.dense")
    y, norm_back = layer_norm_step(out + a, weights, grads, prefix + "output.LayerNorm", spec.layer_norm_eps)
    slope = derivative(spec.hidden_act)(pre)

    def back(dy):
        dsum = norm_back(dy)
        da = dsum + inter_back(dense_back(dsum) * slope)
        dstates = None
        if cross_back is not None:
            da, dstates = cross_back(da)
        return attention_back(da)[0], dstates

    return y, back


def pooler_step(hidden, weights, grads, prefix):
    """tanh(dense(hidden[:, 0])); backward: (1 - pooled^2) dpooled through the dense, into the first position only."""
    pre, dense_back = linear_step(hidden[:, 0], weights, grads, prefix + "pooler.dense")
    pooled = np.tanh(pre)

    def back(dpooled):
        dhidden = np.zeros_like(hidden)
        dhidden[:, 0] = dense_back(dpooled * (1.0 - pooled**2))
        return dhidden

    return pooled, back


def complete_inputs(input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
    """The inputs with transformers' defaults filled in: every key visible, positions 0..L-1, token type 0."""
    input_ids = np.asarray(input_ids)
    shape = input_ids.shape
    return (input_ids,
            np.ones(shape, dtype=np.int64) if attention_mask is None else np.asarray(attention_mask),
            np.zeros(shape, dtype=np.int64) if token_type_ids is None else np.asarray(token_type_ids),
            np.broadcast_to(np.arange(shape[-1]), shape) if position_ids is None else np.asarray(position_ids))


def bert_model_step(weights, grads, spec: BertSpec, input_ids, attention_mask=None, token_type_ids=None,
                    position_ids=None, prefix="bert.", add_pooling_layer=True, head_mask=None, fully_masked="refuse",
                    encoder_hidden_states=None, encoder_attention_mask=None, cross_causal_when_square=False):
    """BertModel forward as `reference.encoder.bert_model` (inputs validated there; call it first), or, with
    `encoder_hidden_states`, as `reference.decoder.decoder_model` without a cache (cross-attention; validated there),
    returning (last_hidden_state, pooler_output or None, back) where back(dhidden, dpooled) adds every encoder
    parameter's gradient into `grads` (dpooled None: the loss does not use the pooled output) and that of the encoder
    states under `ENCODER_STATES`. `head_mask` ([heads] or [layers, heads]) and `fully_masked` as in `bert_model`
    (self-attention only: refused with cross-attention)."""
    input_ids, attention_mask, token_type_ids, position_ids = complete_inputs(
        input_ids, attention_mask, token_type_ids, position_ids)
    allowed = allowed_keys(attention_mask, spec.is_decoder, fully_masked)
    masks = None if head_mask is None else layer_head_mask(head_mask, spec.num_hidden_layers, spec.num_attention_heads)
    states, encoder_allowed = None, None
    if encoder_hidden_states is not None:
        if head_mask is not None or fully_masked != "refuse":
            raise ReferenceInputError("the backward pass covers cross-attention without head_mask and fully masked "
                                      "queries")
        states = np.asarray(encoder_hidden_states, dtype=np.float64)
        if encoder_attention_mask is None:
            encoder_attention_mask = np.ones(states.shape[:2], dtype=np.int64)
        encoder_allowed = cross_allowed(encoder_attention_mask, input_ids.shape[1], cross_causal_when_square)
    x, embeddings_back = embeddings_step(weights, grads, spec, input_ids, token_type_ids, position_ids, prefix)
    layer_backs = []
    for i in range(spec.num_hidden_layers):
        x, layer_back = layer_step(x, weights, grads, spec, allowed, f"{prefix}encoder.layer.{i}.",
                                   None if masks is None else masks[i], fully_masked, states, encoder_allowed)
        layer_backs.append(layer_back)
    pooled, pooler_back = pooler_step(x, weights, grads, prefix) if add_pooling_layer else (None, None)

    def back(dhidden, dpooled=None):
        d = np.zeros_like(x) if dhidden is None else np.array(dhidden, dtype=np.float64)
        if dpooled is not None:
            d = d + pooler_back(dpooled)
        elif add_pooling_layer:  # the pooler is a parameter the loss does not reach: gradient 0
            for name in ("weight", "bias"):
                accumulate(grads, f"{prefix}pooler.dense.{name}", np.zeros_like(weights[f"{prefix}pooler.dense.{name}"]))
        for layer_back in reversed(layer_backs):
            d, dstates = layer_back(d)
            if dstates is not None:
                accumulate(grads, ENCODER_STATES, dstates)
        embeddings_back(d)

    return x, pooled, back
