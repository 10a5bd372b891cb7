"""The backward pass of every BERT head in numpy float64: the gradient of the head's loss with respect to every
parameter.

`gradients(head, weights, spec, **inputs_and_labels) -> (loss, grads)`: `head` is a transformers class name (a key
of `reference.heads.HEADS`), the keyword arguments are those of that head's reference function, `loss` is the
head's loss and `grads` maps every name of `weights` to d(loss)/d(that parameter). The loss and d(loss)/d(logits)
are the head's own (`reference.heads`, i.e. `reference.losses.*_loss_grad`); from there the chain rule runs
through the head's layers and the encoder (`reference.backward_encoder`).

Parameter rules: the word embeddings' row `spec.pad_token_id` gets no gradient from the embedding lookup; with
`tie_word_embeddings` the MLM decoder is the word-embedding matrix, so its gradient is the sum of both uses and is
returned under both names (`bert.embeddings.word_embeddings.weight`, `cls.predictions.decoder.weight`), as the one
shared parameter has it; `cls.predictions.decoder.bias` is `cls.predictions.bias` (one parameter, two names); a
parameter the loss does not reach (the pooler of a head that reads no pooled output) gets zeros.

Covered: the default path (absolute positions, 0/1 padding masks, a decoder's causal mask, every activation);
other encoder options are refused rather than silently ignored.
"""

import numpy as np

from . import heads as reference_heads
from .backward_encoder import accumulate, bert_model_step, layer_norm_step, linear_step
from .activations import activation, activation_derivative
from .config import BertSpec
from .errors import ReferenceInputError

INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
LOSS_ARGUMENTS = ("labels", "next_sentence_label", "start_positions", "end_positions", "ignore_index",
                  "num_items_in_batch", "loss_uses_attention_mask")
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}
"""A name of a tied parameter -> the name its gradient is computed under (the decoder weight only when tied)."""


def lm_head_step(hidden, weights, grads, spec: BertSpec):
    """The MLM prediction head (`reference.heads.lm_prediction_head`): dense -> activation -> LayerNorm -> decoder
    (the word embeddings when tied) + `cls.predictions.bias`; the decoder's weight gradient is dlogits^T h, added to
    whichever name the decoder reads."""
    p = "cls.predictions."
    pre, dense_back = linear_step(hidden, weights, grads, p + "transform.dense")
    h, norm_back = layer_norm_step(activation(spec.hidden_act)(pre), weights, grads, p + "transform.LayerNorm",
                                   spec.layer_norm_eps)
    decoder = "bert.embeddings.word_embeddings.weight" if spec.tie_word_embeddings else p + "decoder.weight"
    logits = h @ weights[decoder].T + weights[p + "bias"]

    def back(dlogits):
        rows = dlogits.reshape(-1, dlogits.shape[-1])
        accumulate(grads, decoder, rows.T @ h.reshape(-1, h.shape[-1]))
        accumulate(grads, p + "bias", rows.sum(axis=0))
        return dense_back(norm_back(dlogits @ weights[decoder]) * activation_derivative(spec.hidden_act)(pre))

    return logits, back


def _encoder(weights, grads, spec, inputs, pooler):
    return bert_model_step(weights, grads, spec, *(inputs.get(k) for k in INPUTS), add_pooling_layer=pooler)


def _flat_choices(inputs):
    """Multiple choice: every [B, C, L] input flattened to [B * C, L] (validated by the head function first)."""
    length = np.shape(inputs["input_ids"])[-1]
    return {k: None if v is None else np.asarray(v).reshape(-1, length) for k, v in inputs.items()}


def head_backward(head, weights, spec: BertSpec, output_grads, inputs):
    """Every parameter's gradient of a scalar whose gradients with respect to `head`'s outputs are `output_grads`
    (names as the head function returns them: `logits`, `prediction_logits`, ..., and for BertModel
    `last_hidden_state` and `pooler_output`; a missing output contributes nothing). Returns {name: gradient} over
    the names the reference reads."""
    grads = {}
    get = output_grads.get
    if head == "BertModel":
        _, _, back = bert_model_step(weights, grads, spec, *(inputs.get(k) for k in INPUTS), prefix="")
        back(get("last_hidden_state"), get("pooler_output"))
    elif head in ("BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel"):
        pretraining = head == "BertForPreTraining"
        hidden, pooled, encoder_back = _encoder(weights, grads, spec, inputs, pretraining)
        _, lm_back = lm_head_step(hidden, weights, grads, spec)
        dlogits = get("prediction_logits" if pretraining else "logits")
        dhidden = lm_back(np.zeros((*hidden.shape[:-1], spec.vocab_size)) if dlogits is None else dlogits)
        dpooled = None
        if pretraining:
            _, nsp_back = linear_step(pooled, weights, grads, "cls.seq_relationship")
            dnsp = get("seq_relationship_logits")
            dpooled = nsp_back(np.zeros((pooled.shape[0], 2)) if dnsp is None else dnsp)
        encoder_back(dhidden, dpooled)
    elif head in ("BertForNextSentencePrediction", "BertForSequenceClassification", "BertForMultipleChoice"):
        choices = head == "BertForMultipleChoice"
        inputs = _flat_choices(inputs) if choices else inputs
        _, pooled, encoder_back = _encoder(weights, grads, spec, inputs, True)
        name = "cls.seq_relationship" if head == "BertForNextSentencePrediction" else "classifier"
        scores, classifier_back = linear_step(pooled, weights, grads, name)
        dlogits = get("logits")
        dscores = np.zeros_like(scores) if dlogits is None else np.reshape(dlogits, scores.shape)
        encoder_back(None, classifier_back(dscores))
    elif head in ("BertForTokenClassification", "BertForQuestionAnswering"):
        hidden, _, encoder_back = _encoder(weights, grads, spec, inputs, False)
        qa = head == "BertForQuestionAnswering"
        logits, classifier_back = linear_step(hidden, weights, grads, "qa_outputs" if qa else "classifier")
        if qa:
            parts = [get(k) for k in ("start_logits", "end_logits")]
            dlogits = np.stack([np.zeros(hidden.shape[:-1]) if g is None else g for g in parts], axis=-1)
        else:
            dlogits = np.zeros_like(logits) if get("logits") is None else get("logits")
        encoder_back(classifier_back(dlogits))
    else:
        raise ReferenceInputError(f"no backward pass for head {head!r}; known: {sorted(reference_heads.HEADS)}")
    return grads


def _split(kwargs):
    unknown = set(kwargs) - set(INPUTS) - set(LOSS_ARGUMENTS)
    if unknown:
        raise ReferenceInputError(f"the backward pass covers the default path only; unsupported arguments: "
                                  f"{sorted(unknown)}")
    return {k: v for k, v in kwargs.items() if k in INPUTS}


def per_name(grads, weights, spec: BertSpec):
    """`grads` (under the names the reference reads) for every name of `weights`: tied names get the shared
    parameter's gradient, names the loss does not reach get zeros."""
    out = {}
    for name, value in weights.items():
        source = TIED.get(name, name)
        if name == "cls.predictions.decoder.weight" and not spec.tie_word_embeddings:
            source = name
        out[name] = grads[source] if source in grads else np.zeros(np.shape(value))
    return out


def backward(head, weights, spec: BertSpec, output_grads, **inputs):
    """Every parameter's gradient (for every name of `weights`) of a scalar with d(scalar)/d(outputs) =
    `output_grads` (see `head_backward`); the inputs are validated by the head's forward first."""
    inputs = _split(inputs)
    reference_heads.HEADS[head](weights, spec, **inputs)
    weights64 = reference_heads.as_float64(weights)
    return per_name(head_backward(head, weights64, spec, output_grads, inputs), weights, spec)


def head_gradients(head, weights, spec: BertSpec, **inputs_and_labels):
    """(the head function's outputs, with `loss` and `loss_grad`; {name: d loss / d parameter} for every name of
    `weights`): `gradients` with the head's own outputs kept (its logits and d loss / d logits)."""
    if head not in reference_heads.HEADS or head == "BertModel":
        raise ReferenceInputError(f"{head!r} has no loss; known heads with one: "
                                  f"{sorted(set(reference_heads.HEADS) - {'BertModel'})}")
    inputs = _split(inputs_and_labels)
    out = reference_heads.HEADS[head](weights, spec, **inputs_and_labels)
    if "loss" not in out:
        raise ReferenceInputError(f"{head} computes no loss without its labels")
    weights64 = reference_heads.as_float64(weights)
    return out, per_name(head_backward(head, weights64, spec, out["loss_grad"], inputs), weights, spec)


def gradients(head, weights, spec: BertSpec, **inputs_and_labels):
    """(loss, {name: d loss / d parameter} for every name of `weights`) of `head` on the given inputs and labels
    (the keyword arguments of the head's function in `reference.heads.HEADS`). Refused: BertModel (no loss), and a
    call without the labels its loss needs."""
    out, grads = head_gradients(head, weights, spec, **inputs_and_labels)
    return float(out["loss"]), grads
