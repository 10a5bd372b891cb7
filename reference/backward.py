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

Covered: any 2D or 3D 0/1 mask and a decoder's causal mask, fully masked queries under the rule `fully_masked`
(`reference.attention.FULLY_MASKED`; the softmax's backward rule is in `reference.backward_attention`), absolute and
relative positions (`spec.position_embedding_type`), `head_mask`, every activation; and BertLMHeadModel (BertModel
in `backward`) as a decoder with cross-attention to `encoder_hidden_states` (with `encoder_attention_mask` and
`cross_causal_when_square`, as `reference.decoder.decoder_model`), where `grads` also holds the gradient of the
encoder states under "encoder_hidden_states". Other arguments are refused rather than silently ignored, and so are
head_mask / fully_masked with cross-attention or in multiple choice.
"""

import numpy as np

from . import heads as reference_heads
from . import losses
from .backward_encoder import ENCODER_STATES, accumulate, bert_model_step, layer_norm_step, linear_step
from .backward_steps import derivative
from .activations import activation
from .config import BertSpec
from .decoder import decoder_model
from .errors import ReferenceInputError

INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")
SURFACE = ("head_mask", "fully_masked")  # extra keyword arguments of `reference.encoder.bert_model`
CROSS = ("encoder_hidden_states", "encoder_attention_mask", "cross_causal_when_square")  # of `decoder_model`
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
        return dense_back(norm_back(dlogits @ weights[decoder]) * derivative(spec.hidden_act)(pre))

    return logits, back


def _extras(inputs):
    return {k: inputs[k] for k in SURFACE + CROSS if k in inputs}


def _encoder(weights, grads, spec, inputs, pooler):
    return bert_model_step(weights, grads, spec, *(inputs.get(k) for k in INPUTS), add_pooling_layer=pooler,
                           **_extras(inputs))


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
        _, _, back = bert_model_step(weights, grads, spec, *(inputs.get(k) for k in INPUTS), prefix="",
                                     **_extras(inputs))
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
        if choices and _extras(inputs):
            raise ReferenceInputError(f"multiple choice takes none of {sorted(_extras(inputs))} here")
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
    unknown = set(kwargs) - set(INPUTS) - set(SURFACE) - set(CROSS) - set(LOSS_ARGUMENTS)
    if unknown:
        raise ReferenceInputError(f"the backward pass does not cover the arguments {sorted(unknown)}")
    return {k: v for k, v in kwargs.items() if k in INPUTS + SURFACE + CROSS}


def forward(head, weights, spec: BertSpec, **inputs_and_labels):
    """The head's outputs as `reference.heads.HEADS[head]` gives them (its `surface` taking head_mask and
    fully_masked), or, with cross-attention arguments, those of the decoder `reference.decoder.decoder_model` without
    a cache: for BertModel last_hidden_state and pooler_output, for BertLMHeadModel its logits, and with labels its
    loss and loss_grad (`losses.causal_lm_loss`); other heads are refused there."""
    kwargs = {k: v for k, v in inputs_and_labels.items() if k not in SURFACE + CROSS}
    cross = {k: inputs_and_labels[k] for k in CROSS if k in inputs_and_labels}
    surface = {k: inputs_and_labels[k] for k in SURFACE if k in inputs_and_labels}
    if not cross:
        return reference_heads.HEADS[head](weights, spec, **kwargs, **({"surface": surface} if surface else {}))
    if head not in ("BertModel", "BertLMHeadModel") or surface:
        raise ReferenceInputError(f"cross-attention is covered for BertModel and BertLMHeadModel without "
                                  f"head_mask / fully_masked, not {head} with {sorted(surface)}")
    w = reference_heads.as_float64(weights)
    base = head == "BertModel"
    hidden, pooled, _ = decoder_model(w, spec, kwargs["input_ids"], kwargs.get("attention_mask"),
                                      kwargs.get("token_type_ids"), kwargs.get("position_ids"),
                                      cross.get("encoder_hidden_states"), cross.get("encoder_attention_mask"),
                                      prefix="" if base else "bert.", add_pooling_layer=base,
                                      cross_causal_when_square=cross.get("cross_causal_when_square", False))
    if base:
        return {"last_hidden_state": hidden, "pooler_output": pooled}
    out = {"last_hidden_state": hidden, "logits": reference_heads.lm_prediction_head(hidden, w, spec)}
    if kwargs.get("labels") is None:
        return out
    args = (out["logits"], kwargs["labels"], kwargs.get("num_items_in_batch"))
    out["loss"], out["loss_grad"] = losses.causal_lm_loss(*args), {"logits": losses.causal_lm_loss_grad(*args)}
    return out


def per_name(grads, weights, spec: BertSpec):
    """`grads` (under the names the reference reads) for every name of `weights`: tied names get the shared
    parameter's gradient, names the loss does not reach get zeros; the encoder states' gradient, where there is one,
    stays under "encoder_hidden_states"."""
    out = {ENCODER_STATES: grads[ENCODER_STATES]} if ENCODER_STATES in grads else {}
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
    forward(head, weights, spec, **inputs)
    weights64 = reference_heads.as_float64(weights)
    return per_name(head_backward(head, weights64, spec, output_grads, inputs), weights, spec)


def head_gradients(head, weights, spec: BertSpec, **inputs_and_labels):
    """(the head function's outputs, with `loss` and `loss_grad`; {name: d loss / d parameter} for every name of
    `weights`): `gradients` with the head's own outputs kept (its logits and d loss / d logits)."""
    if head not in reference_heads.HEADS or head == "BertModel":
        raise ReferenceInputError(f"{head!r} has no loss; known heads with one: "
                                  f"{sorted(set(reference_heads.HEADS) - {'BertModel'})}")
    inputs = _split(inputs_and_labels)
    out = forward(head, weights, spec, **inputs_and_labels)
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
