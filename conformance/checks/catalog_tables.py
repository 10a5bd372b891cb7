"""The classification the catalog checks (`conformance/checks/catalogs.py`) hold every release to: for each BertConfig
field, forward keyword of the nine BERT classes, activation and MLM collator field any release of the matrix offers,
either the checks that exercise it (check ids, or id prefixes ending in "." or naming a family such as
"train.dropout") or the reason it is out of scope. Data only."""

_GENERATION = "a generation setting (read by generate() and its logits processors), not by BERT's forward"
_METADATA = "metadata of a saved config (names, provenance, task hints): no effect on what the model computes"
_ENCODER_DECODER = "an EncoderDecoderModel setting, read by the wrapper, not by BERT's own forward"
_TENSORFLOW = "read by the TensorFlow models only"
_RETURN_DICT = ("the output container only (a tuple or a ModelOutput of the same tensors); the harness always asks "
                "for a ModelOutput")
_WORDS = ("word-level masking needs a tokenizer's '##' continuation pieces: the masking checks draw token ids, not "
          "words (a gap: no reference of the whole-word rule yet)")

CONFIG_EXERCISED = {
    **{name: ("encoder.bidirectional",) for name in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
        "layer_norm_eps", "max_position_embeddings", "type_vocab_size")},
    "is_decoder": ("encoder.causal", "head.causal_lm"),
    "id2label": ("head.sequence_classification", "head.token_classification"),  # num_labels lives here
    "label2id": ("head.sequence_classification", "head.token_classification"),
    "problem_type": ("loss.sequence_classification.", "options.num_labels_one.", "options.problem_type_persists"),
    "add_cross_attention": ("decoding.cross.",),
    "use_cache": ("decoding.incremental.",),
    "position_embedding_type": ("surface.relative_positions",),
    "output_attentions": ("surface.attentions",),
    "output_hidden_states": ("surface.hidden_states",),
    "tie_word_embeddings": ("surface.untied_decoder",),
    "hidden_dropout_prob": ("train.dropout",),
    "attention_probs_dropout_prob": ("train.dropout",),
    "classifier_dropout": ("train.dropout",),
    "gradient_checkpointing": ("train.checkpointing.",),
    "chunk_size_feed_forward": ("train.chunking",),
}
CONFIG_OUT_OF_SCOPE = {
    **dict.fromkeys((
        "bad_words_ids", "begin_suppress_tokens", "bos_token_id", "eos_token_id", "sep_token_id", "diversity_penalty",
        "do_sample", "early_stopping", "encoder_no_repeat_ngram_size", "exponential_decay_length_penalty",
        "forced_bos_token_id", "forced_eos_token_id", "length_penalty", "max_length", "min_length",
        "no_repeat_ngram_size", "num_beam_groups", "num_beams", "num_return_sequences", "output_scores",
        "remove_invalid_values", "repetition_penalty", "return_dict_in_generate", "suppress_tokens", "temperature",
        "top_k", "top_p", "typical_p"), _GENERATION),
    **dict.fromkeys(("_name_or_path", "architectures", "finetuning_task", "model_type", "prefix",
                     "task_specific_params", "tokenizer_class", "transformers_version"), _METADATA),
    **dict.fromkeys(("is_encoder_decoder", "tie_encoder_decoder", "cross_attention_hidden_size",
                     "decoder_start_token_id"), _ENCODER_DECODER),
    **dict.fromkeys(("tf_legacy_loss", "use_bfloat16"), _TENSORFLOW),
    "return_dict": _RETURN_DICT,
    "dtype": "the harness sets each target's dtype on the built model (float64, float32), not through the config",
    "torch_dtype": "the harness sets each target's dtype on the built model (float64, float32), not through the config",
    "_attn_implementation_autoset": "bookkeeping of how attn_implementation was resolved; each attention "
                                    "implementation is a target of its own (eager, sdpa)",
    "initializer_range": "the initialization's scale: the harness draws and loads every weight, so initialization "
                         "is never compared",
    "pad_token_id": "BERT reads it only as the word embedding's padding_idx (initialization and that row's gradient); "
                    "the harness loads every weight and draws no other value than the default",
    "pruned_heads": "head pruning (prune_heads) changes the attention weights' shapes: not drawn",
    "torchscript": "TorchScript export (weights cloned instead of tied): not a computation rule",
    "**kwargs": "BertConfig.__init__'s **kwargs go on to PretrainedConfig, whose fields are classified one by one",
}

FORWARD_EXERCISED = {
    **{name: ("encoder.bidirectional", "head.") for name in (
        "input_ids", "attention_mask", "token_type_ids", "position_ids")},
    "labels": ("head.", "loss."),
    "next_sentence_label": ("head.pretraining", "options.nsp_alias"),
    "start_positions": ("head.question_answering", "options.no_input_writes.question_answering"),
    "end_positions": ("head.question_answering", "options.no_input_writes.question_answering"),
    "inputs_embeds": ("surface.inputs_embeds",),
    "head_mask": ("surface.head_mask",),
    "output_attentions": ("surface.attentions",),
    "output_hidden_states": ("surface.hidden_states",),
    "encoder_hidden_states": ("decoding.cross.",),
    "encoder_attention_mask": ("decoding.cross.",),
    "past_key_values": ("decoding.incremental.",),
    "cache": ("decoding.incremental.",),
    "use_cache": ("decoding.incremental.",),
    "cache_position": ("decoding.incremental.",),  # derived from the cache's length where not given
    "**kwargs": ("loss.causal_lm.num_items_in_batch", "options.nsp_alias"),  # num_items_in_batch; 4.x's NSP alias
}
FORWARD_OUT_OF_SCOPE = {
    "return_dict": _RETURN_DICT,
    "logits_to_keep": "BertLMHeadModel's slice of the last positions' logits for generation: a slice, not a rule "
                      "(not drawn)",
}

# An activation the reference states (reference.activations.ACTIVATIONS) is exercised by encoder.bidirectional,
# which draws every activation both sides know (`conformance.check.activations`).
ACTIVATION_CHECKS = ("encoder.bidirectional",)
ACTIVATION_OUT_OF_SCOPE = {
    "prelu": "nn.PReLU has a learnable slope: the activation becomes a parameter of the model, not a fixed function",
    "hardswish": "not yet in the reference (reference/activations.py); not used by any BERT checkpoint",
    "laplace": "not yet in the reference (reference/activations.py); not used by any BERT checkpoint",
    "sqrtsoftplus": "not yet in the reference (reference/activations.py); not used by any BERT checkpoint",
    "xielu": "a learnable activation (its alpha and beta are parameters): not a fixed function",
}

COLLATOR_EXERCISED = {
    "tokenizer": ("masking.rule.",),
    "mlm": ("masking.rule.", "masking.rates."),
    "mlm_probability": ("masking.rule.", "masking.rates.", "errors.masking.probabilities"),
    "mask_replace_prob": ("masking.rule.", "masking.rates.", "errors.masking.probabilities"),
    "random_replace_prob": ("masking.rule.", "masking.rates.", "errors.masking.probabilities"),
    "seed": ("masking.rule.",),
    "return_tensors": ("masking.rule.",),  # "pt" and "np"
}
COLLATOR_OUT_OF_SCOPE = {
    "pad_to_multiple_of": "pads the batch's length up to a multiple (through tokenizer.pad): the masking checks "
                          "compare the mask of the rows as drawn, not the padded length (a gap)",
    "tf_experimental_compile": _TENSORFLOW,
    "whole_word_mask": _WORDS,
}
WHOLE_WORD_OUT_OF_SCOPE = _WORDS  # every field of DataCollatorForWholeWordMask


def classification(kind, name, reference_activations=()):
    """(check references, None) where `name` of catalog `kind` is exercised, (None, reason) where it is out of scope,
    (None, None) where it is unclassified. `kind` as `surface_catalog` names it: "config", "forward.<class>",
    "activations", "collator.<class>"."""
    if kind == "config":
        return CONFIG_EXERCISED.get(name), CONFIG_OUT_OF_SCOPE.get(name)
    if kind.startswith("forward."):
        return FORWARD_EXERCISED.get(name), FORWARD_OUT_OF_SCOPE.get(name)
    if kind == "activations":
        return (ACTIVATION_CHECKS if name in reference_activations else None), ACTIVATION_OUT_OF_SCOPE.get(name)
    if kind == "collator.DataCollatorForWholeWordMask":
        return None, WHOLE_WORD_OUT_OF_SCOPE
    if kind.startswith("collator."):
        return COLLATOR_EXERCISED.get(name), COLLATOR_OUT_OF_SCOPE.get(name)
    return None, None
