"""The backward pass of an attention block beyond the default path, in numpy float64: any mask (2D, 3D, holes, fully
masked queries under each rule of `reference.attention.FULLY_MASKED`), relative position scores (the distance
embedding's gradient), head_mask, and cross-attention (keys and values from other states, which get their gradient).

Every forward step computes what `reference.encoder.self_attention` / `reference.decoder.attend` compute and returns,
with its output, a function that takes d(loss)/d(output), adds the parameters' gradients into `grads` and returns
the gradients of its inputs (as `reference.backward_encoder`).

The rule of the softmax's backward: the scores get softmax's Jacobian at the probabilities the forward used,
dS = P (dP - sum(dP P)). For a query that sees some key this is the exact derivative (masked keys have P = 0). For a
query that sees no key it is each rule's own gradient, as the implementations' autograd computes it:
- "all_keys" (a finite additive mask such as -10000): P = softmax(scores), the exact derivative;
- "uniform" (the dtype's minimum added to every score): the forward rounds every score of the row to that minimum,
  but the addition passes its gradient on unchanged, so the row's scores get the Jacobian at the uniform P (not 0,
  although the rounded forward does not depend on them);
- "zero" (the query attends to nothing): P = 0, so neither its scores nor the values get anything from it.
"""

import numpy as np

from .attention import attention_probs, relative_position_scores
from .backward_steps import accumulate, layer_norm_step, linear_step, softmax_backward
from .config import BertSpec
from .encoder import masked_softmax
from .errors import ReferenceInputError


def relative_backward(dscores, q, k, distance_weight, max_positions, kind):
    """The gradients of `attention.relative_position_scores` given d(loss)/d(those scores) [B, H, Lq, Lk]:
    (dq, dk or None, d distance_weight). With E[l, r] = distance_weight[l - r + max_positions - 1]: relative_key gives
    dq[l] = sum_r dS[l, r] E[l, r] and dE[l, r] = sum_bh dS q[l]; relative_key_query adds dk[r] = sum_l dS[l, r] E[l, r]
    and dE[l, r] += sum_bh dS k[r]. dE is scattered into the table's rows (a row read at several (l, r) adds up)."""
    length = q.shape[2]
    distance = np.arange(length)[:, None] - np.arange(length)[None, :] + max_positions - 1
    table = distance_weight[distance]  # [L, L, D]
    dq = np.einsum("bhlr,lrd->bhld", dscores, table)
    dtable = np.einsum("bhlr,bhld->lrd", dscores, q)
    dk = None
    if kind == "relative_key_query":
        dk = np.einsum("bhlr,lrd->bhrd", dscores, table)
        dtable = dtable + np.einsum("bhlr,bhrd->lrd", dscores, k)
    dweight = np.zeros_like(distance_weight)
    np.add.at(dweight, distance.reshape(-1), dtable.reshape(-1, dtable.shape[-1]))
    return dq, dk, dweight


def attention_block_step(x, weights, grads, spec: BertSpec, allowed, prefix, source=None, head_mask=None,
                         fully_masked="refuse"):
    """An attention block (`prefix` ends in `attention.` or `crossattention.`): queries from `x` [B, Lq, hidden], keys
    and values from `source` [B, Lk, hidden] (None: `x`, self-attention), scores Q K^T (plus the relative position
    scores of a relative `spec.position_embedding_type` in self-attention) over sqrt(head_size), probabilities over the
    `allowed` keys [B, Lq, Lk] (a query with none follows `fully_masked`), times `head_mask` [heads] if given, then
    context, output dense, residual `x` and LayerNorm. Returns (y, back): back(dy) -> (dx, dsource or None), where dx
    includes the residual's and, in self-attention, the keys' and values' share."""
    cross = source is not None
    source = x if source is None else source
    batch, length, hidden = x.shape
    heads, size = spec.num_attention_heads, spec.head_size
    relative = spec.position_embedding_type != "absolute"
    if relative and cross:
        raise ReferenceInputError("relative positions in cross-attention are not covered by the backward pass")

    def split(t):  # [B, L, H*D] -> [B, H, L, D]
        return t.reshape(t.shape[0], t.shape[1], heads, size).transpose(0, 2, 1, 3)

    def merge(t):  # [B, H, L, D] -> [B, L, H*D]
        return t.transpose(0, 2, 1, 3).reshape(t.shape[0], t.shape[2], hidden)

    s = prefix + "self."
    q, q_back = linear_step(x, weights, grads, s + "query")
    (k, k_back), (v, v_back) = (linear_step(source, weights, grads, s + part) for part in ("key", "value"))
    q, k, v = split(q), split(k), split(v)
    scale = np.sqrt(size)
    scores = q @ k.transpose(0, 1, 3, 2)
    if relative:
        table = weights[s + "distance_embedding.weight"]
        scores = scores + relative_position_scores(q, k, table, spec.max_position_embeddings,
                                                   spec.position_embedding_type)
    if fully_masked == "refuse":
        probs = masked_softmax(scores / scale, allowed[:, None])
    else:
        probs = attention_probs(scores / scale, allowed[:, None], fully_masked)
    mask = None if head_mask is None else np.asarray(head_mask, dtype=np.float64)[None, :, None, None]
    used = probs if mask is None else probs * mask
    context = merge(used @ v)
    out, dense_back = linear_step(context, weights, grads, prefix + "output.dense")
    y, norm_back = layer_norm_step(out + x, weights, grads, prefix + "output.LayerNorm", spec.layer_norm_eps)

    def back(dy):
        dsum = norm_back(dy)
        dcontext = split(dense_back(dsum))
        dv = used.transpose(0, 1, 3, 2) @ dcontext
        dused = dcontext @ v.transpose(0, 1, 3, 2)
        dprobs = dused if mask is None else dused * mask
        dscores = softmax_backward(probs, dprobs) / scale
        dq, dk = dscores @ k, dscores.transpose(0, 1, 3, 2) @ q
        if relative:
            rq, rk, dtable = relative_backward(dscores, q, k, table, spec.max_position_embeddings,
                                               spec.position_embedding_type)
            accumulate(grads, s + "distance_embedding.weight", dtable)
            dq = dq + rq
            dk = dk if rk is None else dk + rk
        dx = dsum + q_back(merge(dq))
        dsource = k_back(merge(dk)) + v_back(merge(dv))
        return (dx, dsource) if cross else (dx + dsource, None)

    return y, back
