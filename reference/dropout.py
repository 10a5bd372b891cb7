"""Dropout in train mode: its rule, its sites in BERT, and the BERT forward pass with dropout applied at those sites
from given keep-masks (the masks an implementation drew, so that the comparison is exact).

Inverted dropout with probability p keeps each element independently with probability 1 - p and scales the kept
ones by 1 / (1 - p), so the expectation is unchanged; p = 1 zeroes everything. BERT applies it at these sites, in
this order of a forward pass:

- `embeddings`: after the embeddings' LayerNorm (rate `hidden_dropout_prob`);
- per layer, `attention_probs`: on the attention probabilities after the softmax, before they weight the values
  (`attention_probs_dropout_prob`); `attention_output`: on the attention block's dense output, before the residual
  and LayerNorm (`hidden_dropout_prob`); `output`: on the feed-forward block's second dense output, before the
  residual and LayerNorm (`hidden_dropout_prob`);
- `classifier`: on the classifier's input of the sequence, multiple-choice and token classification heads (the
  pooled output, the pooled output of each choice, every position's hidden state), at `classifier_dropout`, or
  `hidden_dropout_prob` where it is None (or where the release has no `classifier_dropout`).

The pooler, the MLM/NSP heads and the question-answering head have no dropout.
"""

import numpy as np

from . import losses
from .activations import activation
from .config import BertSpec
from .encoder import allowed_keys, embeddings, layer_norm, linear, masked_softmax, pooler
from .errors import ReferenceInputError
from .heads import as_float64, lm_prediction_head

CLASSIFIER_HEADS = ("BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification")


def apply(x, keep, p):
    """Inverted dropout of `x` with the boolean keep-mask `keep`: x * keep / (1 - p); zeros where p = 1."""
    if p >= 1:
        return np.zeros_like(x)
    return np.where(keep, x / (1.0 - p), 0.0)


def classifier_rate(hidden_dropout_prob, classifier_dropout=None, configurable=True):
    """The classifier heads' dropout rate: `classifier_dropout` when the release has it (`configurable`) and it is
    set, else `hidden_dropout_prob`."""
    return classifier_dropout if configurable and classifier_dropout is not None else hidden_dropout_prob


def sites(head, num_hidden_layers, rates):
    """The dropout sites of a forward pass of `head`, in call order, as (site, rate) pairs, sites of rate 0 left
    out. `rates`: {"hidden", "attention", "classifier"} probabilities (see the module docstring)."""
    out = [("embeddings", rates["hidden"])]
    for i in range(num_hidden_layers):
        out += [(f"layer{i}.attention_probs", rates["attention"]), (f"layer{i}.attention_output", rates["hidden"]),
                (f"layer{i}.output", rates["hidden"])]
    if head in CLASSIFIER_HEADS:
        out.append(("classifier", rates["classifier"]))
    return [(site, p) for site, p in out if p > 0]


class Masks:
    """The keep-masks of a forward pass, handed out in call order: `drop(site, x, p)` applies the next one to `x`.
    Too few masks, or one of another shape, is refused (the implementation skipped or moved a site)."""

    def __init__(self, keep_masks):
        self.masks = list(keep_masks)
        self.used = 0

    def drop(self, site, x, p):
        if p <= 0:
            return x
        if self.used >= len(self.masks):
            raise ReferenceInputError(f"dropout site {site}: no keep-mask left ({len(self.masks)} given)")
        keep = np.asarray(self.masks[self.used], dtype=bool)
        self.used += 1
        if keep.shape != x.shape:
            raise ReferenceInputError(f"dropout site {site}: keep-mask of shape {keep.shape}, input {x.shape}")
        return apply(x, keep, p)


def _attention(x, weights, spec, allowed, prefix, masks, rates, name):
    batch, length, hidden = x.shape
    heads, size = spec.num_attention_heads, spec.head_size

    def split(t):
        return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

    p = prefix + "self."
    q = split(linear(x, weights[p + "query.weight"], weights[p + "query.bias"]))
    k = split(linear(x, weights[p + "key.weight"], weights[p + "key.bias"]))
    v = split(linear(x, weights[p + "value.weight"], weights[p + "value.bias"]))
    probs = masked_softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(size), allowed[:, None])
    probs = masks.drop(f"{name}.attention_probs", probs, rates["attention"])
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
    o = prefix + "output."
    out = masks.drop(f"{name}.attention_output", linear(context, weights[o + "dense.weight"], weights[o + "dense.bias"]),
                     rates["hidden"])
    return layer_norm(out + x, weights[o + "LayerNorm.weight"], weights[o + "LayerNorm.bias"], spec.layer_norm_eps)


def bert_model(weights, spec: BertSpec, input_ids, masks, rates, attention_mask=None, token_type_ids=None,
               position_ids=None, prefix="bert.", add_pooling_layer=True):
    """`reference.encoder.bert_model` in train mode: dropout from `masks` (a `Masks`) at every site of
    `rates` (see `sites`). Returns (last_hidden_state, pooler_output or None)."""
    input_ids = np.asarray(input_ids)
    if attention_mask is None:
        attention_mask = np.ones(input_ids.shape, dtype=np.int64)
    allowed = allowed_keys(attention_mask, spec.is_decoder)
    x = masks.drop("embeddings", embeddings(weights, spec, input_ids, token_type_ids, position_ids, prefix),
                   rates["hidden"])
    act = activation(spec.hidden_act)
    for i in range(spec.num_hidden_layers):
        layer = f"{prefix}encoder.layer.{i}."
        x = _attention(x, weights, spec, allowed, layer + "attention.", masks, rates, f"layer{i}")
        h = act(linear(x, weights[layer + "intermediate.dense.weight"], weights[layer + "intermediate.dense.bias"]))
        o = layer + "output."
        h = masks.drop(f"layer{i}.output", linear(h, weights[o + "dense.weight"], weights[o + "dense.bias"]),
                       rates["hidden"])
        x = layer_norm(h + x, weights[o + "LayerNorm.weight"], weights[o + "LayerNorm.bias"], spec.layer_norm_eps)
    return x, (pooler(x, weights, prefix) if add_pooling_layer else None)


def forward(head, weights, spec: BertSpec, inputs, keep_masks, rates):
    """The outputs of `head` (a transformers class name; named as `reference.heads` names them, without loss) in
    train mode, with dropout at `rates` applied from `keep_masks` (one boolean array per site of `sites`, in call
    order). Every mask must be used: a mask left over is refused (the implementation applied dropout where BERT
    has none)."""
    weights = as_float64(weights)
    masks = Masks(keep_masks)
    inputs = dict(inputs)
    num_choices = None
    if head == "BertForMultipleChoice":
        num_choices, length = np.shape(inputs["input_ids"])[1:]
        inputs = {k: np.asarray(v).reshape(-1, length) for k, v in inputs.items()}
    prefix = "" if head == "BertModel" else "bert."
    pooled_heads = ("BertModel", "BertForPreTraining", "BertForNextSentencePrediction",
                    "BertForSequenceClassification", "BertForMultipleChoice")
    hidden, pooled = bert_model(weights, spec, inputs["input_ids"], masks, rates, inputs.get("attention_mask"),
                                inputs.get("token_type_ids"), inputs.get("position_ids"), prefix,
                                head in pooled_heads)
    out = {"last_hidden_state": hidden}
    if head == "BertModel":
        out["pooler_output"] = pooled
    elif head == "BertForPreTraining":
        out["prediction_logits"] = lm_prediction_head(hidden, weights, spec)
        out["seq_relationship_logits"] = linear(pooled, weights["cls.seq_relationship.weight"],
                                                weights["cls.seq_relationship.bias"])
    elif head in ("BertForMaskedLM", "BertLMHeadModel"):
        out["logits"] = lm_prediction_head(hidden, weights, spec)
    elif head == "BertForNextSentencePrediction":
        out["logits"] = linear(pooled, weights["cls.seq_relationship.weight"], weights["cls.seq_relationship.bias"])
    elif head == "BertForQuestionAnswering":
        logits = linear(hidden, weights["qa_outputs.weight"], weights["qa_outputs.bias"])
        out["start_logits"], out["end_logits"] = logits[..., 0], logits[..., 1]
    elif head in CLASSIFIER_HEADS:
        features = pooled if head != "BertForTokenClassification" else hidden
        features = masks.drop("classifier", features, rates["classifier"])
        logits = linear(features, weights["classifier.weight"], weights["classifier.bias"])
        out["logits"] = losses.multiple_choice_logits(logits, num_choices) if num_choices is not None else logits
    else:
        raise ReferenceInputError(f"unknown head {head!r}")
    if masks.used != len(masks.masks):
        raise ReferenceInputError(f"{len(masks.masks) - masks.used} keep-masks left over: dropout applied at "
                                  f"{len(masks.masks)} sites, BERT has {masks.used}")
    return out
