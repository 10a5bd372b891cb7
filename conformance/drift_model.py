"""The drift catalog's changes of the model's surface (attention variants, masks, cross-attention, the KV cache,
outputs, forward arguments, head options), part of `conformance.drift.CHANGES`. Each `Change` as in
`conformance.change`; `example()` computes both rules with the reference's variants."""

from .change import Change, fmt, refused  # noqa: F401

CHANGES = []


# --- head options and forward contracts (conformance/checks/options.py) -----------------------------------------

def _regression_squeezed_example():
    import numpy as np

    from reference import losses, options
    logits, labels = np.array([[0.5], [-1.0]]), np.array([0.5, -1.0])
    return {"input": "BertForSequenceClassification, num_labels=1, logits [[0.5], [-1.0]], labels [0.5, -1.0] "
                     "(shape [B])",
            "old": "loss " + fmt(options.mse_broadcast(logits, labels)[0]) + " (4.6.0: [B, 1] - [B] broadcast to "
                   "[B, B]; 4.4.2 flattens both and computes the new value)",
            "new": "loss " + fmt(losses.sequence_classification_loss(logits, labels))}


def _qa_in_place_example():
    import numpy as np

    from reference import options
    positions = np.array([-2, 1, 9])
    return {"input": "BertForQuestionAnswering, sequence length 4, the caller's start_positions [-2, 1, 9]",
            "old": "after the forward the caller's tensor holds "
                   + fmt(options.positions_after_forward(positions, 4, clamps_in_place=True)),
            "new": "after the forward the caller's tensor holds "
                   + fmt(options.positions_after_forward(positions, 4, clamps_in_place=False))}


def _nsp_alias_example():
    import numpy as np

    from reference import losses
    logits, labels = np.array([[1.0, -1.0]]), np.array([1])
    return {"input": "BertForNextSentencePrediction(..., next_sentence_label=[1]) with seq_relationship logits "
                     "[[1, -1]]",
            "old": "loss " + fmt(losses.next_sentence_loss(logits, labels)) + " (as labels=[1], with a FutureWarning)",
            "new": "no loss: the keyword is swallowed by **kwargs and ignored, without a warning"}


def _one_label_single_example():
    from reference import options
    return {"input": "BertConfig(num_labels=1, problem_type='single_label_classification')",
            "old": "built; the loss is a cross-entropy over one class ("
                   + options.one_label_problem_type("single_label_classification", False) + ": 0 for label 0)",
            "new": refused(lambda: options.one_label_problem_type("single_label_classification", True))}


CHANGES += [  # noqa: F405 (appended: other subjects declare theirs above)
    Change("regression-one-label-squeezed", "4.6.1", "loss",
           "regression with num_labels == 1 squeezes logits and labels",
           "4.6.0 computes MSELoss(logits.view(-1, num_labels), labels): [B] labels broadcast against [B, 1] "
           "logits, a B x B mean (the known bug `regression-broadcast-4.6.0`; 4.4.2 flattened both)",
           "MSELoss(logits.squeeze(), labels.squeeze())",
           ("loss.sequence_classification.regression", "options.num_labels_one.regression"),
           _regression_squeezed_example),
    Change("qa-positions-clamped-out-of-place", "4.7.0", "head",
           "question answering clamps a copy of the positions",
           "start_positions.clamp_(0, L) and end_positions.clamp_(0, L): the caller's tensors are clamped in place "
           "(a [B, 1] tensor too: squeeze(-1) is a view)",
           "start_positions = start_positions.clamp(0, L): the caller's tensors are left as they were",
           ("options.no_input_writes.question_answering",), _qa_in_place_example),
    Change("nsp-alias-removed", "5.0.0", "head",
           "BertForNextSentencePrediction drops the next_sentence_label alias",
           "next_sentence_label=... is taken as labels (a FutureWarning says it is deprecated)",
           "next_sentence_label is accepted by **kwargs and ignored: no loss, no warning",
           ("options.nsp_alias",), _nsp_alias_example),
    Change("config-refuses-single-label-one-label", "5.7.0", "loss",
           "BertConfig refuses single_label_classification with num_labels == 1",
           "accepted: a cross-entropy over one class (loss 0 for label 0, IndexError for any other label)",
           "ValueError when the config is built: `problem_type=\"single_label_classification\"` requires "
           "`num_labels > 1`",
           ("options.num_labels_one.single_label_classification",), _one_label_single_example),
]


# --- cross-attention and the KV cache (conformance/checks/decoding.py) ------------------------------------------

def _tiny_decoder_example():
    """A one-layer decoder with cross-attention (hidden 3, one head): weights, input_ids [[1, 2]], encoder states."""
    import numpy as np

    from reference import BertSpec
    spec = BertSpec(vocab_size=3, hidden_size=3, num_hidden_layers=1, num_attention_heads=1, intermediate_size=3,
                    max_position_embeddings=4, type_vocab_size=1, is_decoder=True, add_cross_attention=True)
    rng = np.random.default_rng(0)
    shapes = {"embeddings.word_embeddings.weight": (3, 3), "embeddings.position_embeddings.weight": (4, 3),
              "embeddings.token_type_embeddings.weight": (1, 3)}
    for block in ("attention", "crossattention"):
        for part in ("self.query", "self.key", "self.value", "output.dense"):
            shapes[f"encoder.layer.0.{block}.{part}.weight"] = (3, 3)
            shapes[f"encoder.layer.0.{block}.{part}.bias"] = (3,)
        shapes[f"encoder.layer.0.{block}.output.LayerNorm.weight"] = (3,)
        shapes[f"encoder.layer.0.{block}.output.LayerNorm.bias"] = (3,)
    shapes.update({"encoder.layer.0.intermediate.dense.weight": (3, 3), "encoder.layer.0.intermediate.dense.bias": (3,),
                   "encoder.layer.0.output.dense.weight": (3, 3), "encoder.layer.0.output.dense.bias": (3,),
                   "encoder.layer.0.output.LayerNorm.weight": (3,), "encoder.layer.0.output.LayerNorm.bias": (3,),
                   "embeddings.LayerNorm.weight": (3,), "embeddings.LayerNorm.bias": (3,)})
    weights = {name: rng.standard_normal(shape) for name, shape in sorted(shapes.items())}
    return spec, weights, np.array([[1, 2]]), np.array([[[1.0, -1.0, 0.0], [0.5, 2.0, -1.0]]])


def _cross_any_dtype_example():
    from reference.decoder import decoder_model
    spec, weights, ids, enc = _tiny_decoder_example()
    hidden = decoder_model(weights, spec, ids, encoder_hidden_states=enc, prefix="", add_pooling_layer=False)[0]
    return {"input": "BertModel(is_decoder=True, add_cross_attention=True) in float64, input_ids [[1, 2]], "
                     "encoder_hidden_states [[[1, -1, 0], [0.5, 2, -1]]] (one layer, hidden 3, weights N(0, 1) seed 0)",
            "old": "refused (ValueError: torch.float64 not recognized. `dtype` should be set to either `torch.float32` "
                   "or `torch.float16`)",
            "new": "last_hidden_state " + fmt(hidden)}


def _sdpa_cross_causal_example():
    from reference.decoder import decoder_model
    spec, weights, ids, enc = _tiny_decoder_example()

    def run(old):
        return decoder_model(weights, spec, ids, encoder_hidden_states=enc, prefix="", add_pooling_layer=False,
                             cross_causal_when_square=old)[0]
    return {"input": "attn_implementation='sdpa', BertModel(is_decoder=True, add_cross_attention=True), input_ids "
                     "[[1, 2]], encoder_hidden_states [[[1, -1, 0], [0.5, 2, -1]]], no encoder_attention_mask (one layer, "
                     "hidden 3, weights N(0, 1) seed 0)",
            "old": "last_hidden_state " + fmt(run(True)) + " (position 0 sees encoder position 0 only)",
            "new": "last_hidden_state " + fmt(run(False))}


def _cross_refusals_example():
    from reference import BertSpec
    from reference.decoder import decoder_model
    return {"input": "BertConfig(is_decoder=False, add_cross_attention=True), any model class",
            "old": "refused (AssertionError: BertLayer(...) should be used as a decoder model if cross attention is "
                   "added; gone under python -O, which builds the model)",
            "new": refused(lambda: decoder_model({}, BertSpec(add_cross_attention=True), [[1]]))
                   + " (transformers: ValueError with the same message)"}


def _cross_refusal_before(kind, pattern):
    from reference.errors import Refusal
    return {kind: Refusal(kind, ("AssertionError",), pattern)}


CHANGES += [  # noqa: F405
    Change("cross-attention-refusals-value-error", "4.12.0", "decoding",
           "The cross-attention configuration errors are ValueErrors",
           "assert statements: AssertionError for cross-attention layers without is_decoder (when the model is built) "
           "and for encoder_hidden_states given to a decoder without cross-attention layers (in the forward); "
           "under python -O neither is checked",
           "ValueError with the same messages",
           ("decoding.refusals",), _cross_refusals_example,
           refused_before={**_cross_refusal_before("cross-attention-not-decoder",
                                                   r"should be used as a decoder model if cross attention is added"),
                           **_cross_refusal_before("encoder-states-without-cross-attention",
                                                   r"has to be instantiated with cross-attention layers")}),
    Change("cross-attention-mask-any-dtype", "4.21.0", "decoding",
           "Cross-attention's encoder mask is built in any dtype",
           "invert_attention_mask multiplies (1 - mask) by -1e9 in float32 and -1e4 in float16 and raises ValueError "
           "'torch.float64 not recognized' for any other dtype: a float64 (or bfloat16) decoder refuses "
           "encoder_hidden_states",
           "(1 - mask) * torch.finfo(dtype).min, in every dtype",
           ("decoding.cross.model", "decoding.cross.causal_lm", "decoding.cross.masked_lm",
            "decoding.incremental.causal_lm", "decoding.incremental.model"), _cross_any_dtype_example),
    Change("sdpa-cross-attention-not-causal", "4.42.0", "decoding",
           "sdpa cross-attention is never causal",
           "BertSdpaSelfAttention sets is_causal for cross-attention too: when the batch's encoder mask is all 1 "
           "(or absent) and a forward has as many decoder positions (> 1) as encoder positions, the mask is "
           "dropped and decoder position i (within the forward) sees encoder positions 0..i only",
           "is_causal only for self-attention: every decoder position sees every unmasked encoder position",
           ("decoding.cross.model", "decoding.cross.causal_lm", "decoding.cross.masked_lm",
            "decoding.incremental.causal_lm", "decoding.incremental.model"), _sdpa_cross_causal_example),
]


# --- relative positions, masks, attention outputs, head_mask, the untied decoder (conformance/checks/surface.py) --

def _tiny_surface_model(**overrides):
    """A one-layer BertModel (hidden 4, two heads, vocabulary 3, 4 positions) with weights N(0, 1) seed 0."""
    import numpy as np

    from reference import BertSpec
    spec = BertSpec(vocab_size=3, hidden_size=4, num_hidden_layers=1, num_attention_heads=2, intermediate_size=4,
                    max_position_embeddings=4, type_vocab_size=1, **overrides)
    shapes = {"embeddings.word_embeddings.weight": (3, 4), "embeddings.position_embeddings.weight": (4, 4),
              "embeddings.token_type_embeddings.weight": (1, 4), "embeddings.LayerNorm.weight": (4,),
              "embeddings.LayerNorm.bias": (4,), "encoder.layer.0.attention.self.distance_embedding.weight": (7, 2)}
    for part in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                 "intermediate.dense", "output.dense"):
        shapes[f"encoder.layer.0.{part}.weight"], shapes[f"encoder.layer.0.{part}.bias"] = (4, 4), (4,)
    for part in ("attention.output.LayerNorm", "output.LayerNorm"):
        shapes[f"encoder.layer.0.{part}.weight"], shapes[f"encoder.layer.0.{part}.bias"] = (4,), (4,)
    rng = np.random.default_rng(0)
    return spec, {name: rng.standard_normal(shape) for name, shape in sorted(shapes.items())}


def _surface_hidden(ids, mask=None, head_mask=None, fully_masked="refuse", **overrides):
    from reference.encoder import bert_model
    spec, weights = _tiny_surface_model(**overrides)
    return bert_model(weights, spec, ids, mask, prefix="", add_pooling_layer=False, head_mask=head_mask,
                      fully_masked=fully_masked)[0]


def _finfo_min_example():
    import numpy as np
    ids, mask = np.array([[1, 2, 0]]), np.array([[0, 0, 0]])
    return {"input": "BertModel, input_ids [[1, 2, 0]], attention_mask [[0, 0, 0]] (every key masked; one layer, "
                     "hidden 4, two heads, weights N(0, 1) seed 0)",
            "old": "last_hidden_state " + fmt(_surface_hidden(ids, mask, fully_masked="all_keys"))
                   + " (each query attends to every key by its raw scores)",
            "new": "last_hidden_state " + fmt(_surface_hidden(ids, mask, fully_masked="uniform"))
                   + " (each query attends to every key with weight 1/3)"}


def _sdpa_zero_example():
    import numpy as np
    ids, mask = np.array([[1, 2, 0]]), np.array([[0, 0, 0]])
    return {"input": "attn_implementation='sdpa', BertModel, input_ids [[1, 2, 0]], attention_mask [[0, 0, 0]] "
                     "(one layer, hidden 4, two heads, weights N(0, 1) seed 0)",
            "old": "last_hidden_state " + fmt(_surface_hidden(ids, mask, fully_masked="uniform"))
                   + " (uniform attention, as eager)",
            "new": "last_hidden_state " + fmt(_surface_hidden(ids, mask, fully_masked="zero"))
                   + " (the attention output of a fully masked query is 0)"}


def _relative_example():
    import numpy as np
    ids = np.array([[1, 2, 0]])
    return {"input": "BertModel(position_embedding_type='relative_key'), input_ids [[1, 2, 0]] (one layer, hidden 4, "
                     "two heads, weights N(0, 1) seed 0)",
            "old": "last_hidden_state " + fmt(_surface_hidden(ids, position_embedding_type="relative_key")),
            "new": "last_hidden_state " + fmt(_surface_hidden(ids)) + " (absolute positions; the field is ignored)"}


def _head_mask_example():
    import numpy as np
    ids = np.array([[1, 2, 0]])
    return {"input": "BertModel, input_ids [[1, 2, 0]], head_mask [0.0, 1.0] (one layer, hidden 4, two heads, "
                     "weights N(0, 1) seed 0)",
            "old": "last_hidden_state " + fmt(_surface_hidden(ids, head_mask=np.array([0.0, 1.0]))),
            "new": "last_hidden_state " + fmt(_surface_hidden(ids)) + " (head_mask accepted by **kwargs, ignored)"}


def _sdpa_attentions_example():
    import numpy as np

    from reference.encoder import bert_model
    spec, weights = _tiny_surface_model()
    record = {}
    bert_model(weights, spec, np.array([[1, 2]]), prefix="", add_pooling_layer=False, record=record)
    return {"input": "attn_implementation='sdpa', BertModel, input_ids [[1, 2]], output_attentions=True (one layer, "
                     "hidden 4, two heads, weights N(0, 1) seed 0)",
            "old": "attentions (" + fmt(record["attentions"][0]) + ",): sdpa falls back to eager for this forward",
            "new": "attentions None (5.0) or () (later 5.x): no probabilities, no error"}


def _untied_bias_example():
    return {"input": "BertForMaskedLM(tie_word_embeddings=False): its state dict's cls.predictions.bias and "
                     "cls.predictions.decoder.bias",
            "old": "one parameter under both names: the logits add cls.predictions.bias",
            "new": "two parameters: the logits add cls.predictions.decoder.bias; cls.predictions.bias is unused"}


SURFACE_CHECKS = ("surface.masks", "surface.masks.causal", "surface.attentions")
CHANGES += [  # noqa: F405
    Change("attention-mask-finfo-min", "4.21.0", "surface",
           "Masked attention scores get the dtype's minimum instead of -10000",
           "(1 - mask) * -10000.0 is added to the scores: a query whose every key is masked attends to every key "
           "by its raw scores (softmax is shift-invariant)",
           "(1 - mask) * torch.finfo(dtype).min: every score of a fully masked query rounds to that minimum, so it "
           "attends to every key uniformly (the mean of the values)", SURFACE_CHECKS, _finfo_min_example),
    Change("sdpa-fully-masked-query-zero", "5.0.0", "surface",
           "Under sdpa a fully masked query's attention output is 0",
           "4.41-4.57 sdpa adds the same finfo.min float mask as eager: uniform attention over every key",
           "the boolean mask of masking_utils: torch's sdpa gives a query with no visible key a zero output "
           "(eager stays uniform)", SURFACE_CHECKS, _sdpa_zero_example),
    Change("relative-position-embeddings-removed", "5.0.0", "surface",
           "position_embedding_type relative_key / relative_key_query is gone",
           "relative_key adds q . E[l - r] to the scores (relative_key_query also k . E[l - r]), from a "
           "distance_embedding table per layer, and no absolute position embedding",
           "the config field is ignored without a word: absolute position embeddings, no distance_embedding",
           ("surface.relative_positions", "surface.relative_positions.causal"), _relative_example),
    Change("head-mask-removed", "5.0.0", "surface",
           "head_mask is no longer applied",
           "head_mask ([heads] or [layers, heads]) multiplies each layer's attention probabilities; sdpa falls back "
           "to eager for it",
           "the forward accepts head_mask through **kwargs and ignores it", ("surface.head_mask",),
           _head_mask_example),
    Change("sdpa-output-attentions-dropped", "5.0.0", "surface",
           "sdpa returns no attention probabilities",
           "output_attentions=True under sdpa falls back to eager attention for that forward and returns every "
           "layer's probabilities",
           "no probabilities (attentions None in 5.0, an empty tuple later) and no error; eager still returns them",
           ("surface.attentions", "surface.head_mask"), _sdpa_attentions_example),
    Change("untied-decoder-own-bias", "5.0.0", "surface",
           "An untied MLM decoder keeps its own bias",
           "cls.predictions.decoder.bias is cls.predictions.bias (set in __init__), tied or not",
           "the bias is tied through _tied_weights_keys like the weight, so tie_word_embeddings=False leaves the "
           "decoder its own bias (initialised 0, loaded under cls.predictions.decoder.bias)",
           ("surface.untied_decoder", "surface.untied_decoder.pretraining"), _untied_bias_example),
]


def _mask_3d_example():
    import numpy as np
    ids, mask = np.array([[1, 2, 0]]), np.array([[[1, 0, 0], [1, 1, 0], [0, 1, 1]]])
    return {"input": "BertModel (eager), input_ids [[1, 2, 0]], attention_mask [[[1, 0, 0], [1, 1, 0], [0, 1, 1]]] "
                     "([batch, query, key]; one layer, hidden 4, two heads, weights N(0, 1) seed 0)",
            "old": "last_hidden_state " + fmt(_surface_hidden(ids, mask)) + " (query i sees the keys of row i)",
            "new": "refused (RuntimeError: expand(...): the number of sizes provided (4) must be greater or equal to "
                   "the number of dimensions in the tensor)"}


CHANGES += [  # noqa: F405
    Change("attention-mask-3d-refused", "5.0.0", "surface",
           "A [batch, query, key] attention mask is refused",
           "eager attention takes a 3D mask as a key mask per query (get_extended_attention_mask adds a head axis); "
           "4.41-4.44 sdpa refuses it (ValueError), 4.45-4.57 sdpa expands it as eager does (see "
           "sdpa-attention-mask-3d-expanded)",
           "masking_utils expands every mask as [batch, key]: RuntimeError for a 3D mask (a 4D 0/1 mask is taken "
           "as an additive bias, not as a mask)", ("surface.masks_3d",), _mask_3d_example),
]

def _sdpa_mask_3d_example():
    import numpy as np
    ids, mask = np.array([[1, 2, 0]]), np.array([[[1, 0, 0], [1, 1, 0], [0, 1, 1]]])
    return {"input": "BertModel (sdpa), input_ids [[1, 2, 0]], attention_mask [[[1, 0, 0], [1, 1, 0], [0, 1, 1]]] "
                     "([batch, query, key]; one layer, hidden 4, two heads, weights N(0, 1) seed 0)",
            "old": "refused (ValueError: too many values to unpack (expected 2))",
            "new": "last_hidden_state " + fmt(_surface_hidden(ids, mask)) + " (as eager: query i sees the keys of row "
                   "i)"}


CHANGES += [  # noqa: F405
    Change("sdpa-attention-mask-3d-expanded", "4.45.0", "surface",
           "sdpa attention takes a [batch, query, key] attention mask as eager does",
           "BertModel prepares every mask under sdpa with _prepare_4d_(causal_)attention_mask_for_sdpa, which reads "
           "it as [batch, key]: ValueError (too many values to unpack) for a 3D mask, except a decoder's mask of all "
           "1, which it drops (the decoder then attends causally, where eager adds no causal mask to a 3D mask)",
           "only a 2D mask takes sdpa's own preparation; a 3D mask goes through get_extended_attention_mask, as "
           "under eager: query i sees the keys of row i, no causal mask added",
           ("surface.masks_3d",), _sdpa_mask_3d_example),
    Change("decoder-cache-created-on-first-pass", "4.54.0", "surface",
           "a decoder with use_cache creates its KV cache before the first forward",
           "the cache exists only once a forward returned it (past_key_value is None on a first full pass)",
           "BertModel builds an empty EncoderDecoderCache when use_cache is on, so every layer sees a cache on the "
           "first pass too (where relative positions read it: the known bug relative-positions-cache-on-first-pass)",
           ("surface.relative_positions.causal",)),
]


def _mask_4d_example():
    import numpy as np

    from reference.encoder import bert_model
    spec, weights = _tiny_surface_model()
    ids, mask = np.array([[1, 2, 0]]), np.array([[[[1, 0, 0], [1, 1, 0], [0, 1, 1]]]])

    def hidden(rule):
        return fmt(bert_model(weights, spec, ids, mask, prefix="", add_pooling_layer=False, mask_4d=rule)[0])
    return {"input": "BertModel, input_ids [[1, 2, 0]], attention_mask [[[[1, 0, 0], [1, 1, 0], [0, 1, 1]]]] "
                     "(int64, [batch, 1, query, key]; one layer, hidden 4, two heads, weights N(0, 1) seed 0)",
            "old": "refused (ValueError: Wrong shape for input_ids (shape torch.Size([1, 3])) or attention_mask "
                   "(shape torch.Size([1, 1, 3, 3])))",
            "new": "eager: last_hidden_state " + hidden("additive") + " (the 0/1 entries added to the scaled scores); "
                   "as a bool mask under sdpa: " + hidden("keep") + " (a keep-mask); as int64 under sdpa: refused "
                   "(RuntimeError: Expected attn_mask dtype to be bool or float or to match query dtype)"}


CHANGES += [  # noqa: F405
    Change("attention-mask-4d-prepared", "5.0.0", "surface",
           "A 4D attention mask [batch, 1 or heads, query, key] is taken as the attention implementation's own mask",
           "refused by every attention implementation: ValueError (get_extended_attention_mask: 'Wrong shape for "
           "input_ids ... or attention_mask'; 4.41-4.53 sdpa: 'too many values to unpack')",
           "masking_utils passes a 4D mask on as it is (a decoder adds no causal mask to it): eager adds it to the "
           "scaled scores whatever its dtype (a bool or 0/1 mask is a bias of 0 and 1, not a mask); sdpa hands it "
           "to torch, which takes bool as a keep-mask (a query with no key gets 0), float as an additive bias, and "
           "refuses int (RuntimeError)", ("surface.masks_4d",), _mask_4d_example),
]


CHANGES += [  # noqa: F405
    Change("whole-word-mask-collator-removed", "5.20.0", "masking",
           "DataCollatorForWholeWordMask is gone",
           "DataCollatorForWholeWordMask(tokenizer, ...) masks whole words (a '##' piece with the word it continues); "
           "from 4.57 a deprecated subclass of DataCollatorForLanguageModeling with whole_word_mask=True",
           "no such class (ImportError): DataCollatorForLanguageModeling(whole_word_mask=True) is the only whole-word "
           "masking", ("catalog.collator_fields",)),
]
