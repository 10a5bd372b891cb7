"""The drift catalog's changes of the model's surface (attention variants, masks, cross-attention, the KV cache,
outputs, forward arguments, head options), part of `conformance.drift.CHANGES`. Each `Change` as in
`conformance.change`; `example()` computes both rules with the reference's variants."""

from .change import Change, fmt, refused  # noqa: F401

CHANGES = []


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


CHANGES += [  # noqa: F405
    Change("cross-attention-mask-any-dtype", "4.21.0", "decoding",
           "Cross-attention's encoder mask is built in any dtype",
           "invert_attention_mask multiplies (1 - mask) by -1e9 in float32 and -1e4 in float16 and raises ValueError "
           "'torch.float64 not recognized' for any other dtype: a float64 (or bfloat16) decoder refuses "
           "encoder_hidden_states",
           "(1 - mask) * torch.finfo(dtype).min, in every dtype",
           ("decoding.cross.model", "decoding.cross.causal_lm", "decoding.incremental.causal_lm",
            "decoding.incremental.model"), _cross_any_dtype_example),
    Change("sdpa-cross-attention-not-causal", "4.42.0", "decoding",
           "sdpa cross-attention is never causal",
           "BertSdpaSelfAttention sets is_causal for cross-attention too: when the batch's encoder mask is all 1 "
           "(or absent) and a forward has as many decoder positions (> 1) as encoder positions, the mask is "
           "dropped and decoder position i (within the forward) sees encoder positions 0..i only",
           "is_causal only for self-attention: every decoder position sees every unmasked encoder position",
           ("decoding.cross.model", "decoding.cross.causal_lm", "decoding.incremental.causal_lm",
            "decoding.incremental.model"), _sdpa_cross_causal_example),
]

