"""The releases that offer each name of the catalogs (`conformance/checks/catalogs.py`): for every BertConfig field,
forward keyword of the nine BERT classes, activation and MLM collator field, the span of releases that offer it, so
each release is held to its own set both ways (a name it offers and the span does not cover is unclassified, a name
the span covers and it lacks was removed without being recorded). Data only.

A span is `(since, until)`: offered from `since` up to, not including, `until`; None on either side is open (every
release of the matrix, 4.4.2 on; still offered by the newest). A boundary is a drift change id (conformance/drift.py,
drift_model.py: its first release, as the adapter's `has` answers, where the name's going or coming is a behaviour
change), or a release number: the first release on the new side. Measured on the matrix's envs (4.4.2 4.6.0 4.6.1
4.17.0 4.27.0 4.36.0 4.41.0 4.47.1 4.49.0 4.50.0 4.54.0 5.0.0 5.4.0 5.19.0 5.24.0) and narrowed by reading the
released wheels between them (the first release of each minor version in a gap holding a boundary; "exact" notes
the release read on the old side)."""

from ..port import HEADS

ALWAYS = (None, None)
# 5.0.0 is exact for every name it ends or starts (4.57.0 read: it offers all of them)
GENERATION_MOVED = "5.0.0"  # PretrainedConfig no longer carries generate()'s settings (GenerationConfig holds them)
V5_SIGNATURES = "5.0.0"  # output_attentions, output_hidden_states and return_dict go to **kwargs (still honoured)


def _each(span, *names):
    return dict.fromkeys(names, span)


CONFIG = {
    **_each(ALWAYS, "_name_or_path", "add_cross_attention", "architectures", "attention_probs_dropout_prob",
            "bos_token_id", "chunk_size_feed_forward", "eos_token_id", "hidden_act", "hidden_dropout_prob",
            "hidden_size", "id2label", "initializer_range", "intermediate_size", "is_decoder", "is_encoder_decoder",
            "label2id", "layer_norm_eps", "max_position_embeddings", "model_type", "num_attention_heads",
            "num_hidden_layers", "output_attentions", "output_hidden_states", "pad_token_id", "return_dict",
            "tie_word_embeddings", "transformers_version", "type_vocab_size", "use_cache", "vocab_size"),
    **_each((None, GENERATION_MOVED), "bad_words_ids", "decoder_start_token_id", "diversity_penalty", "do_sample",
            "early_stopping", "encoder_no_repeat_ngram_size", "forced_bos_token_id", "forced_eos_token_id",
            "length_penalty", "max_length", "min_length", "no_repeat_ngram_size", "num_beam_groups", "num_beams",
            "num_return_sequences", "output_scores", "repetition_penalty", "return_dict_in_generate", "sep_token_id",
            "temperature", "top_k", "top_p"),
    "remove_invalid_values": ("4.5.0", GENERATION_MOVED),  # exact (4.4.2)
    "typical_p": ("4.17.0", GENERATION_MOVED),  # exact (4.16.0 read)
    "exponential_decay_length_penalty": ("4.18.0", GENERATION_MOVED),  # exact (4.17.0)
    **_each(("4.23.0", GENERATION_MOVED), "begin_suppress_tokens", "suppress_tokens"),  # exact (4.22.0 read)
    **_each((None, "5.0.0"), "finetuning_task", "prefix", "pruned_heads", "task_specific_params",
            "tie_encoder_decoder", "tokenizer_class", "torchscript", "use_bfloat16"),
    "cross_attention_hidden_size": ("4.12.0", "5.0.0"),  # exact (4.11.0 read)
    "torch_dtype": ("4.9.0", "4.56.0"),  # renamed dtype; exact (4.8.0, 4.55.0 read)
    "dtype": ("4.56.0", None),
    "tf_legacy_loss": ("4.21.0", "5.0.0"),  # exact (4.20.0 read)
    "position_embedding_type": (None, "relative-position-embeddings-removed"),
    "problem_type": ("sequence-classification-problem-type", None),
    "classifier_dropout": ("classifier-dropout", None),
    # exact (4.10.0 read); config.gradient_checkpointing is still honoured by post_init (through **kwargs)
    "gradient_checkpointing": (None, "4.11.0"),
    "_attn_implementation_autoset": ("4.46.1", "4.52.1"),  # exact (4.45.0, 4.51.0 read; no 4.46.0, 4.52.0)
    "**kwargs": (None, "5.4.0"),  # exact (5.1.0 to 5.3.0 read)
}

DECODERS = ("BertModel", "BertLMHeadModel")  # the classes that take a KV cache
WITH_LABELS = tuple(h for h in HEADS if h not in ("BertModel", "BertForQuestionAnswering"))
FORWARD = {  # name -> {classes: span}
    **{name: {HEADS: ALWAYS} for name in ("input_ids", "attention_mask", "token_type_ids", "position_ids",
                                           "inputs_embeds")},
    "head_mask": {HEADS: (None, "head-mask-removed")},
    **{name: {HEADS: (None, V5_SIGNATURES)} for name in ("output_attentions", "output_hidden_states", "return_dict")},
    "**kwargs": {("BertForNextSentencePrediction",): ALWAYS,  # 4.x: the next_sentence_label alias
                 ("BertLMHeadModel",): ("causal-lm-loss-function", None),  # num_items_in_batch
                 tuple(h for h in HEADS if h not in ("BertForNextSentencePrediction", "BertLMHeadModel")):
                     (V5_SIGNATURES, None)},
    "labels": {WITH_LABELS: ALWAYS},
    "next_sentence_label": {("BertForPreTraining",): ALWAYS},
    "start_positions": {("BertForQuestionAnswering",): ALWAYS},
    "end_positions": {("BertForQuestionAnswering",): ALWAYS},
    "encoder_hidden_states": {DECODERS + ("BertForMaskedLM",): ALWAYS},
    "encoder_attention_mask": {DECODERS + ("BertForMaskedLM",): ALWAYS},
    "use_cache": {DECODERS: ALWAYS},
    # renamed `cache` (past_key_values still taken, deprecated until 5.40); exact: 5.20.0 to 5.23.0 read
    "past_key_values": {DECODERS: (None, "5.24.0")},
    "cache": {DECODERS: ("5.24.0", None)},
    "cache_position": {DECODERS: ("4.54.0", "5.4.0")},  # exact (4.53.0, 5.3.0 read)
    "logits_to_keep": {("BertLMHeadModel",): ("5.0.0", None)},
}

ACTIVATIONS = {
    **_each(ALWAYS, "gelu", "gelu_fast", "gelu_new", "linear", "mish", "relu", "sigmoid", "silu", "swish", "tanh"),
    "quick_gelu": ("4.6.0", None),  # exact (4.5.1 read)
    "gelu_10": ("4.17.0", None),  # exact (4.16.0 read)
    "gelu_python": ("4.12.0", None),  # exact (4.11.0 read)
    "relu6": ("4.25.1", None),  # exact (4.24.0 read; no 4.25.0)
    "gelu_pytorch_tanh": ("4.27.0", None),  # exact (4.26.0 read)
    **_each(("4.28.0", None), "gelu_accurate", "laplace", "relu2"),  # exact (4.27.0)
    "leaky_relu": ("4.36.0", None),  # exact (4.35.0 read)
    "prelu": ("4.49.0", None),  # exact (4.48.0 read)
    "xielu": ("4.56.0", None),  # exact (4.55.0 read)
    "gelu_python_tanh": ("4.57.0", None),  # exact (4.56.0 read)
    "hardswish": ("5.4.0", None),  # exact (5.1.0 to 5.3.0 read)
    "sqrtsoftplus": ("5.8.0", None),  # exact (5.7.0 read)
}

_COLLATOR = {
    **_each(ALWAYS, "tokenizer", "mlm", "mlm_probability"),
    "pad_to_multiple_of": ("4.6.0", None),  # exact (4.5.1 read)
    "return_tensors": ("4.10.0", None),  # exact (4.9.0 read)
    "tf_experimental_compile": ("4.10.0", "5.0.0"),  # exact (4.9.0 read)
    **_each(("collator-replacement-probabilities", None), "mask_replace_prob", "random_replace_prob"),
    "seed": ("4.50.0", None),
    "whole_word_mask": ("4.57.0", None),  # exact (4.56.0 read)
}
COLLATORS = {  # collator class -> (its span, name -> span within it)
    "DataCollatorForLanguageModeling": (ALWAYS, _COLLATOR),
    "DataCollatorForWholeWordMask": ((None, "whole-word-mask-collator-removed"),
                                     {**_COLLATOR, "**kwargs": ("4.57.0", None)}),  # 4.57: a subclass, *args **kwargs
}


def expected(reached):
    """The catalog a release offers by these tables, as `surface_catalog` lists it ({kind: set of names}), where
    `reached(boundary) -> bool` says whether the release is at or after a boundary."""
    def covers(span):
        since, until = span
        return (since is None or reached(since)) and (until is None or not reached(until))

    catalog = {"config": {n for n, s in CONFIG.items() if covers(s)},
               "activations": {n for n, s in ACTIVATIONS.items() if covers(s)}}
    for head in HEADS:
        catalog[f"forward.{head}"] = {n for n, by_class in FORWARD.items()
                                      for classes, s in by_class.items() if head in classes and covers(s)}
    for name, (span, fields) in COLLATORS.items():
        if covers(span):
            catalog[f"collator.{name}"] = {n for n, s in fields.items() if covers(s)}
    return catalog


def recorded(kind, name):
    """The span(s) recorded for `name` of catalog `kind`, as text for a failure message ("not recorded" where none)."""
    if kind == "config":
        spans = [CONFIG[name]] if name in CONFIG else []
    elif kind == "activations":
        spans = [ACTIVATIONS[name]] if name in ACTIVATIONS else []
    elif kind.startswith("forward."):
        spans = [s for classes, s in FORWARD.get(name, {}).items() if kind[len("forward."):] in classes]
    elif kind.startswith("collator."):
        span, fields = COLLATORS.get(kind[len("collator."):], (None, {}))
        spans = [fields[name]] if name in fields else []
    else:
        spans = []
    return " or ".join(f"[{s[0] or 'the first'}, {s[1] or 'the newest'}{']' if s[1] is None else ')'}"
                       for s in spans) or "not recorded"
