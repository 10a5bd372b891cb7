"""The BERT encoder's backward pass in numpy float64: the gradient of a scalar loss with respect to every encoder
parameter, given the gradients of the loss with respect to the encoder's outputs.

Each forward step here computes what `reference.encoder` computes (it reuses its `linear`, `layer_norm`,
`masked_softmax` and `allowed_keys`) and returns, with its output, a function that takes d(loss)/d(output), adds
the parameters' gradients into a dict `grads` (name -> array, accumulated with +=) and returns d(loss)/d(input).
Covered: the default path of `reference.encoder.bert_model` (absolute positions, 0/1 padding masks, a decoder's
causal mask, every activation of `reference.activations`); the word embeddings' row `spec.pad_token_id` gets no
gradient from the embedding lookup, as `nn.Embedding(padding_idx=pad_token_id)` gives it none.
"""

import numpy as np

from .activations import activation, activation_derivative
from .config import BertSpec
from .encoder import allowed_keys, layer_norm, linear, masked_softmax


def accumulate(grads, name, g):
    """grads[name] += g (the first contribution is stored as a copy)."""
    if name in grads:
        grads[name] = grads[name] + g
    else:
        grads[name] = np.array(g, dtype=np.float64)


def linear_step(x, weights, grads, name):
    """y = x W^T + b for the dense layer `name` (weights `name.weight`, `name.bias`); its backward gives
    dW = sum over rows of dy^T x, db = sum over rows of dy, dx = dy W."""
    w, b = weights[name + ".weight"], weights[name + ".bias"]
    y = linear(x, w, b)

    def back(dy):
        rows_dy, rows_x = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])
        accumulate(grads, name + ".weight", rows_dy.T @ rows_x)
        accumulate(grads, name + ".bias", rows_dy.sum(axis=0))
        return dy @ w

    return y, back


def layer_norm_step(x, weights, grads, name, eps):
    """LayerNorm `name` over the last axis; with xhat = (x - mean) * r, r = 1 / sqrt(var + eps), N the width:
    dweight = sum dy xhat, dbias = sum dy, dx = r (g - mean(g) - xhat mean(g xhat)) with g = dy * weight."""
    w = weights[name + ".weight"]
    y = layer_norm(x, w, weights[name + ".bias"], eps)
    mean = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * r

    def back(dy):
        accumulate(grads, name + ".weight", (dy * xhat).reshape(-1, dy.shape[-1]).sum(axis=0))
        accumulate(grads, name + ".bias", dy.reshape(-1, dy.shape[-1]).sum(axis=0))
        g = dy * w
        return r * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

    return y, back


def softmax_backward(probs, dprobs):
    """d scores of p = softmax(scores): p (dp - sum(dp p)); entries with probability 0 (masked) get 0."""
    return probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))


def embeddings_step(weights, grads, spec: BertSpec, input_ids, token_type_ids, position_ids, prefix):
    """Word + position + token-type embeddings, then LayerNorm (ids already complete: no defaults here). The backward
    scatters d(sum) into the rows each lookup read (np.add.at: repeated ids add up); the word embeddings' row
    `spec.pad_token_id` receives nothing from the lookup."""
    p = prefix + "embeddings."
    x = (weights[p + "word_embeddings.weight"][input_ids] + weights[p + "token_type_embeddings.weight"][token_type_ids]
         + weights[p + "position_embeddings.weight"][position_ids])
    y, norm_back = layer_norm_step(x, weights, grads, p + "LayerNorm", spec.layer_norm_eps)

    def back(dy):
        dx = norm_back(dy)
        for table, ids in (("word_embeddings", input_ids), ("token_type_embeddings", token_type_ids),
                           ("position_embeddings", position_ids)):
            name = p + table + ".weight"
            g = np.zeros_like(weights[name])
            keep = ids != spec.pad_token_id if table == "word_embeddings" else np.ones(ids.shape, dtype=bool)
            np.add.at(g, ids[keep], dx[keep])
            accumulate(grads, name, g)

    return y, back


def attention_step(x, weights, grads, spec: BertSpec, allowed, prefix):
    """The attention block (`prefix` ends in `attention.`): softmax(Q K^T / sqrt(d)) V per head, the output dense,
    the residual and LayerNorm. Backward: dV = P^T dC, dP = dC V^T, dS = softmax_backward(P, dP) / sqrt(d),
    dQ = dS K, dK = dS^T Q; the residual adds its gradient to the input's."""
    batch, length, hidden = x.shape
    heads, size = spec.num_attention_heads, spec.head_size

    def split(t):  # [B, L, H*D] -> [B, H, L, D]
        return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

    def merge(t):  # [B, H, L, D] -> [B, L, H*D]
        return t.transpose(0, 2, 1, 3).reshape(batch, length, hidden)

    s = prefix + "self."
    (q, q_back), (k, k_back), (v, v_back) = (linear_step(x, weights, grads, s + part) for part in ("query", "key", "value"))
    q, k, v = split(q), split(k), split(v)
    scale = np.sqrt(size)
    probs = masked_softmax(q @ k.transpose(0, 1, 3, 2) / scale, allowed[:, None])
    context = merge(probs @ v)
    out, dense_back = linear_step(context, weights, grads, prefix + "output.dense")
    y, norm_back = layer_norm_step(out + x, weights, grads, prefix + "output.LayerNorm", spec.layer_norm_eps)

    def back(dy):
        dsum = norm_back(dy)
        dcontext = split(dense_back(dsum))
        dv = probs.transpose(0, 1, 3, 2) @ dcontext
        dscores = softmax_backward(probs, dcontext @ v.transpose(0, 1, 3, 2)) / scale
        dq, dk = dscores @ k, dscores.transpose(0, 1, 3, 2) @ q
        return dsum + q_back(merge(dq)) + k_back(merge(dk)) + v_back(merge(dv))

    return y, back


def layer_step(x, weights, grads, spec: BertSpec, allowed, prefix):
    """One encoder layer: attention block, then intermediate dense -> activation -> output dense, residual and
    LayerNorm; the activation's backward multiplies by its derivative at the intermediate pre-activation."""
    a, attention_back = attention_step(x, weights, grads, spec, allowed, prefix + "attention.")
    pre, inter_back = linear_step(a, weights, grads, prefix + "intermediate.dense")
    out, dense_back = linear_step(activation(spec.hidden_act)(pre), weights, grads, prefix + "output.dense")
    y, norm_back = layer_norm_step(out + a, weights, grads, prefix + "output.LayerNorm", spec.layer_norm_eps)
    derivative = activation_derivative(spec.hidden_act)(pre)

    def back(dy):
        dsum = norm_back(dy)
        da = dsum + inter_back(dense_back(dsum) * derivative)
        return attention_back(da)

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
                    position_ids=None, prefix="bert.", add_pooling_layer=True):
    """BertModel forward as `reference.encoder.bert_model` (inputs validated there; call it first), returning
    (last_hidden_state, pooler_output or None, back) where back(dhidden, dpooled) adds every encoder parameter's
    gradient into `grads` (dpooled None: the loss does not use the pooled output)."""
    input_ids, attention_mask, token_type_ids, position_ids = complete_inputs(
        input_ids, attention_mask, token_type_ids, position_ids)
    allowed = allowed_keys(attention_mask, spec.is_decoder)
    x, embeddings_back = embeddings_step(weights, grads, spec, input_ids, token_type_ids, position_ids, prefix)
    layer_backs = []
    for i in range(spec.num_hidden_layers):
        x, layer_back = layer_step(x, weights, grads, spec, allowed, f"{prefix}encoder.layer.{i}.")
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
            d = layer_back(d)
        embeddings_back(d)

    return x, pooled, back
