"""The eight BERT task heads on top of `encoder.bert_model`.

Each head returns a dict named like the transformers output (`logits`, `prediction_logits`, `start_logits`, ...)
plus `last_hidden_state`; given labels it adds `loss` and `loss_grad`, a dict from each logits name to
d(loss)/d(logits). Weights are named like the head's transformers `state_dict` (encoder under `bert.`). The heads
with a cross-entropy loss take `ignore_index`, the label it leaves out (-100, transformers' rule, by default).
Every head takes `surface`, a dict of extra `encoder.bert_model` keyword arguments
(`inputs_embeds`, `head_mask`, `fully_masked`, `record`); the MLM heads take `decoder_bias` (`lm_prediction_head`).
"""

import numpy as np

from . import losses
from .activations import activation
from .config import BertSpec
from .encoder import bert_model, layer_norm, linear
from .errors import ReferenceInputError


def as_float64(weights):
    """The weight dict with every array converted to float64 (the reference computes in float64 only)."""
    return {name: np.asarray(value, dtype=np.float64) for name, value in weights.items()}


def lm_prediction_head(hidden, weights, spec: BertSpec, decoder_bias="shared"):
    """MLM prediction head: dense -> hidden_act -> LayerNorm, then the decoder whose weight is the word-embedding
    matrix (tied; its own `cls.predictions.decoder.weight` only when `tie_word_embeddings` is False) plus the
    output-only bias `cls.predictions.bias`. With `decoder_bias="own"` an untied decoder adds its own
    `cls.predictions.decoder.bias` instead (transformers 5.x keeps the two apart when the embeddings are untied)."""
    p = "cls.predictions."
    h = activation(spec.hidden_act)(
        linear(hidden, weights[p + "transform.dense.weight"], weights[p + "transform.dense.bias"])
    )
    h = layer_norm(h, weights[p + "transform.LayerNorm.weight"], weights[p + "transform.LayerNorm.bias"], spec.layer_norm_eps)
    decoder = "bert.embeddings.word_embeddings.weight" if spec.tie_word_embeddings else p + "decoder.weight"
    own = decoder_bias == "own" and not spec.tie_word_embeddings
    return linear(h, weights[decoder], weights[p + ("decoder.bias" if own else "bias")])


def _with_loss(out, loss, grads):
    out["loss"] = loss
    out["loss_grad"] = grads
    return out


def pretraining(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, next_sentence_label=None, ignore_index=losses.IGNORE_INDEX, decoder_bias="shared",
                surface=None):
    """BertForPreTraining: MLM prediction head on every position, NSP on the pooled output; the loss, only when both
    `labels` and `next_sentence_label` are given, is their sum (labels equal to `ignore_index` left out)."""
    weights = as_float64(weights)
    hidden, pooled = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids,
                                **(surface or {}))
    out = {
        "last_hidden_state": hidden,
        "prediction_logits": lm_prediction_head(hidden, weights, spec, decoder_bias),
        "seq_relationship_logits": linear(pooled, weights["cls.seq_relationship.weight"], weights["cls.seq_relationship.bias"]),
    }
    if labels is None or next_sentence_label is None:
        return out
    args = (out["prediction_logits"], out["seq_relationship_logits"], labels, next_sentence_label, ignore_index)
    grad_mlm, grad_nsp = losses.pretraining_loss_grad(*args)
    return _with_loss(out, losses.pretraining_loss(*args),
                      {"prediction_logits": grad_mlm, "seq_relationship_logits": grad_nsp})


def masked_lm(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
              ignore_index=losses.IGNORE_INDEX, decoder_bias="shared", surface=None):
    """BertForMaskedLM: the MLM prediction head on the encoder (no pooler); loss `losses.masked_lm_loss`."""
    weights = as_float64(weights)
    hidden, _ = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids, add_pooling_layer=False,
                           **(surface or {}))
    out = {"last_hidden_state": hidden, "logits": lm_prediction_head(hidden, weights, spec, decoder_bias)}
    if labels is None:
        return out
    return _with_loss(out, losses.masked_lm_loss(out["logits"], labels, ignore_index=ignore_index),
                      {"logits": losses.masked_lm_loss_grad(out["logits"], labels, ignore_index=ignore_index)})


def causal_lm(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
              num_items_in_batch=None, decoder_bias="shared", surface=None):
    """BertLMHeadModel: the MLM prediction head on a decoder (causal attention when `spec.is_decoder`);
    loss `losses.causal_lm_loss` (labels shifted left by one; summed and divided by `num_items_in_batch` if given)."""
    weights = as_float64(weights)
    hidden, _ = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids, add_pooling_layer=False,
                           **(surface or {}))
    out = {"last_hidden_state": hidden, "logits": lm_prediction_head(hidden, weights, spec, decoder_bias)}
    if labels is None:
        return out
    return _with_loss(out, losses.causal_lm_loss(out["logits"], labels, num_items_in_batch),
                      {"logits": losses.causal_lm_loss_grad(out["logits"], labels, num_items_in_batch)})


def next_sentence(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                  ignore_index=losses.IGNORE_INDEX, surface=None):
    """BertForNextSentencePrediction: a [hidden, 2] linear layer on the pooled output; loss cross-entropy."""
    weights = as_float64(weights)
    hidden, pooled = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids,
                                **(surface or {}))
    out = {"last_hidden_state": hidden,
           "logits": linear(pooled, weights["cls.seq_relationship.weight"], weights["cls.seq_relationship.bias"])}
    if labels is None:
        return out
    return _with_loss(out, losses.next_sentence_loss(out["logits"], labels, ignore_index),
                      {"logits": losses.next_sentence_loss_grad(out["logits"], labels, ignore_index)})


def sequence_classification(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                            labels=None, ignore_index=losses.IGNORE_INDEX, surface=None):
    """BertForSequenceClassification: a [hidden, num_labels] linear layer on the pooled output; loss chosen by
    `losses.infer_problem_type` from num_labels, `spec.problem_type` and the label dtype."""
    weights = as_float64(weights)
    hidden, pooled = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids,
                                **(surface or {}))
    out = {"last_hidden_state": hidden,
           "logits": linear(pooled, weights["classifier.weight"], weights["classifier.bias"])}
    if labels is None:
        return out
    args = (out["logits"], labels, spec.problem_type, ignore_index)
    return _with_loss(out, losses.sequence_classification_loss(*args),
                      {"logits": losses.sequence_classification_loss_grad(*args)})


def multiple_choice(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                    ignore_index=losses.IGNORE_INDEX, surface=None):
    """BertForMultipleChoice: [B, C, L] inputs are flattened to [B * C, L], each scored by a [hidden, 1] linear layer
    on its pooled output, and the scores reshaped to [B, C] (`losses.multiple_choice_logits`); loss cross-entropy.
    `surface`'s `inputs_embeds` [B, C, L, hidden] (with `input_ids` None) is flattened to [B * C, L, hidden] too;
    its other keywords apply to the flattened rows (a `record` of hidden states holds [B * C, L, hidden])."""
    surface = dict(surface or {})
    embeds = surface.get("inputs_embeds")
    shape = np.shape(input_ids) if input_ids is not None else np.shape(embeds)[:3]
    if len(shape) != 3:
        raise ReferenceInputError(f"multiple-choice input_ids must be [batch, choices, sequence], got {shape}")
    num_choices, length = shape[1:]

    def flat(t):
        if t is not None and np.shape(t) != tuple(shape):
            raise ReferenceInputError(f"multiple-choice inputs must all be [B, C, L]; got {np.shape(t)}")
        return None if t is None else np.asarray(t).reshape(-1, length)

    if embeds is not None:
        surface["inputs_embeds"] = np.asarray(embeds).reshape(-1, length, np.shape(embeds)[-1])
    weights = as_float64(weights)
    hidden, pooled = bert_model(weights, spec, flat(input_ids), flat(attention_mask), flat(token_type_ids),
                                flat(position_ids), **surface)
    scores = linear(pooled, weights["classifier.weight"], weights["classifier.bias"])
    out = {"last_hidden_state": hidden, "logits": losses.multiple_choice_logits(scores, num_choices)}
    if labels is None:
        return out
    return _with_loss(out, losses.multiple_choice_loss(out["logits"], labels, ignore_index),
                      {"logits": losses.multiple_choice_loss_grad(out["logits"], labels, ignore_index)})


def token_classification(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                         labels=None, loss_uses_attention_mask=False, ignore_index=losses.IGNORE_INDEX, surface=None):
    """BertForTokenClassification: a [hidden, num_labels] linear layer on every position (no pooler); loss
    `losses.token_classification_loss`, which with `loss_uses_attention_mask` also ignores padded positions."""
    weights = as_float64(weights)
    hidden, _ = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids, add_pooling_layer=False,
                           **(surface or {}))
    out = {"last_hidden_state": hidden, "logits": linear(hidden, weights["classifier.weight"], weights["classifier.bias"])}
    if labels is None:
        return out
    mask = attention_mask if loss_uses_attention_mask else None
    return _with_loss(out, losses.token_classification_loss(out["logits"], labels, mask, ignore_index=ignore_index),
                      {"logits": losses.token_classification_loss_grad(out["logits"], labels, mask,
                                                                       ignore_index=ignore_index)})


def question_answering(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                       start_positions=None, end_positions=None, surface=None):
    """BertForQuestionAnswering: a [hidden, 2] linear layer on every position split into start and end logits
    (no pooler); loss `losses.question_answering_loss`, only when both position tensors are given."""
    if spec.num_labels != 2:
        raise ReferenceInputError(f"question answering needs num_labels == 2 (start, end), got {spec.num_labels}")
    weights = as_float64(weights)
    hidden, _ = bert_model(weights, spec, input_ids, attention_mask, token_type_ids, position_ids, add_pooling_layer=False,
                           **(surface or {}))
    logits = linear(hidden, weights["qa_outputs.weight"], weights["qa_outputs.bias"])
    out = {"last_hidden_state": hidden, "start_logits": logits[..., 0], "end_logits": logits[..., 1]}
    if start_positions is None or end_positions is None:
        return out
    args = (out["start_logits"], out["end_logits"], start_positions, end_positions)
    grad_start, grad_end = losses.question_answering_loss_grad(*args)
    return _with_loss(out, losses.question_answering_loss(*args), {"start_logits": grad_start, "end_logits": grad_end})


def base_model(weights, spec, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, surface=None):
    """BertModel (weights without the `bert.` prefix): last hidden state and pooled output."""
    hidden, pooled = bert_model(as_float64(weights), spec, input_ids, attention_mask, token_type_ids, position_ids,
                                prefix="", **(surface or {}))
    return {"last_hidden_state": hidden, "pooler_output": pooled}


HEADS = {
    "BertModel": base_model,
    "BertForPreTraining": pretraining,
    "BertForMaskedLM": masked_lm,
    "BertLMHeadModel": causal_lm,
    "BertForNextSentencePrediction": next_sentence,
    "BertForSequenceClassification": sequence_classification,
    "BertForMultipleChoice": multiple_choice,
    "BertForTokenClassification": token_classification,
    "BertForQuestionAnswering": question_answering,
}
"""Reference function per transformers class name."""
