"""Attention beyond plain scaled dot products: relative position scores, the rule for a query that sees no key, and
head_mask.

A query that sees no key (a fully masked row: every key padded, or a decoder query whose only visible keys are
padded) has no defined output; implementations give it one through the way they mask. The rules (`FULLY_MASKED`):

- "refuse": the reference refuses (nothing to compare).
- "all_keys": the query attends to every key by its raw scores, softmax(scores). Adding a finite mask value such as
  -10000.0 to every score of the row shifts them all alike, and softmax ignores a common shift.
- "uniform": the query attends to every key with weight 1 / (number of keys), its output the mean of the values.
  Adding the dtype's minimum (`finfo.min`) to every score rounds each to that minimum: all scores equal.
- "zero": the query attends to nothing; its probabilities and its attention output are 0.
"""

import numpy as np

from .errors import ReferenceInputError

FULLY_MASKED = ("refuse", "all_keys", "uniform", "zero")
POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")


def relative_position_scores(q, k, distance_weight, max_positions, kind):
    """Scores from the distance between query l and key r (Shaw et al.; Huang et al. for the key term), [B, H, L, L].

    With E[l, r] = distance_weight[l - r + max_positions - 1] (a [2 * max_positions - 1, head_size] table):
    relative_key gives q[b, h, l] . E[l, r]; relative_key_query adds k[b, h, r] . E[l, r]. They are added to
    Q K^T before the division by sqrt(head_size), as transformers 4.x does. `q` and `k` are [B, H, L, D].
    """
    if kind not in POSITION_EMBEDDING_TYPES[1:]:
        raise ReferenceInputError(f"unknown relative position_embedding_type {kind!r}")
    length = q.shape[2]
    if length > max_positions:
        raise ReferenceInputError(f"sequence length {length} exceeds max_position_embeddings {max_positions}")
    distance = np.arange(length)[:, None] - np.arange(length)[None, :]
    table = distance_weight[distance + max_positions - 1]  # [L, L, D]
    scores = np.einsum("bhld,lrd->bhlr", q, table)
    if kind == "relative_key_query":
        scores = scores + np.einsum("bhrd,lrd->bhlr", k, table)
    return scores


def attention_probs(scores, allowed, fully_masked="refuse"):
    """Softmax of `scores` over the last axis restricted to `allowed` keys (disallowed ones get exactly 0); a query
    with no allowed key follows `fully_masked` (see the module docstring). `allowed` broadcasts against `scores`."""
    if fully_masked not in FULLY_MASKED:
        raise ReferenceInputError(f"unknown fully-masked rule {fully_masked!r}")
    allowed = np.broadcast_to(allowed, scores.shape)
    none = ~allowed.any(axis=-1, keepdims=True)
    if none.any() and fully_masked == "refuse":
        raise ReferenceInputError("a query position attends to no key (fully masked row); its output is undefined")
    masked = np.where(allowed | none, scores, -np.inf)
    masked = masked - masked.max(axis=-1, keepdims=True)
    e = np.exp(masked)
    probs = e / e.sum(axis=-1, keepdims=True)
    if fully_masked == "uniform":
        probs = np.where(none, 1.0 / scores.shape[-1], probs)
    elif fully_masked == "zero":
        probs = np.where(none, 0.0, probs)
    return probs


def layer_head_mask(head_mask, num_layers, num_heads):
    """head_mask as [num_layers, num_heads] (None: all ones): a [num_heads] mask applies to every layer. Layer i's
    attention probabilities of head h are multiplied by it (after the softmax, so a row no longer sums to 1)."""
    if head_mask is None:
        return np.ones((num_layers, num_heads))
    mask = np.asarray(head_mask, dtype=np.float64)
    if mask.shape == (num_heads,):
        return np.broadcast_to(mask, (num_layers, num_heads))
    if mask.shape != (num_layers, num_heads):
        raise ReferenceInputError(f"head_mask must be [num_heads] or [num_layers, num_heads], got {mask.shape}")
    return mask


MASK_4D = ("refuse", "keep", "additive")


def mask_4d(mask, rule, num_heads, fully_masked="refuse"):
    """A 4D attention mask [batch, 1 or num_heads, query, key] as (allowed, bias), both [batch, 1 or heads, query,
    key], by `rule` (`MASK_4D`):

    - "refuse": the mask is refused (transformers 4.x: ValueError, a mask must be [batch, key] or [batch, query,
      key]; 5.x sdpa refuses an integer mask).
    - "keep": nonzero entries are the keys a query may attend to (0/1 or bool); bias 0. A query with no key follows
      `fully_masked` (`attention_probs`).
    - "additive": the mask's values, whatever its dtype (bool True is 1), are added to the scaled scores
      Q K^T / sqrt(head_size); every key stays allowed (transformers 5.x eager, and sdpa for a float mask).

    Either way the mask is the whole mask: a decoder's causal mask is not added to it.
    """
    if rule not in MASK_4D:
        raise ReferenceInputError(f"unknown 4D mask rule {rule!r}")
    mask = np.asarray(mask)
    if mask.ndim != 4 or mask.shape[1] not in (1, num_heads) or mask.shape[2] != mask.shape[3]:
        raise ReferenceInputError(f"a 4D attention mask must be [batch, 1 or {num_heads}, query, key], got {mask.shape}")
    if rule == "refuse":
        raise ReferenceInputError("a 4D attention mask is refused")
    if rule == "additive":
        return np.ones(mask.shape, dtype=bool), mask.astype(np.float64)
    if not np.isin(mask, (0, 1)).all():
        raise ReferenceInputError("a 4D keep-mask must hold only 0 and 1")
    allowed = mask.astype(bool)
    if fully_masked == "refuse" and not allowed.any(axis=-1).all():
        raise ReferenceInputError("a query position attends to no key (fully masked row); its output is undefined")
    return allowed, np.zeros(mask.shape)
