"""Mutants of cross-attention and incremental decoding with the KV cache: the 5.x source (>=5.24) and the 4.4
source (`@4.4`, float32 where cross-attention is involved: 4.4 refuses a float64 encoder mask)."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

CACHE_UTILS = "cache_utils.py"
MODELING_UTILS = "modeling_utils.py"
CROSS = "decoding.cross"
INCREMENTAL = "decoding.incremental"

MUTANTS = [
    # --- 5.x -------------------------------------------------------------------------------------------------------
    Mutant("decoding.cross_mask_dropped", "decoding", "the encoder_attention_mask never reaches cross-attention",
           MODELING_BERT, "attention_mask=encoder_attention_mask,\n                encoder_hidden_states=",
           "attention_mask=None,\n                encoder_hidden_states=", CROSS, ">=5.24"),
    Mutant("decoding.cross_mask_inverted", "decoding",
           "the encoder mask is inverted: padded encoder positions attended, real ones hidden",
           MODELING_BERT, "attention_mask=encoder_attention_mask,\n                encoder_hidden_states=",
           "attention_mask=1 - encoder_attention_mask,\n                encoder_hidden_states=", CROSS, ">=5.24"),
    Mutant("decoding.cross_uses_self_keys", "decoding",
           "cross-attention takes its keys and values from the decoder's own states instead of the encoder's",
           MODELING_BERT, "None,  # attention_mask\n                encoder_hidden_states,",
           "None,  # attention_mask\n                self_attention_output,", CROSS, ">=5.24"),
    Mutant("decoding.cache_position_offset", "decoding",
           "with a cache, default positions continue from one before the cache length",
           MODELING_BERT, "position_ids = self.position_ids[:, cache_length : seq_length + cache_length]",
           "position_ids = self.position_ids[:, max(cache_length - 1, 0) : seq_length + max(cache_length - 1, 0)]",
           INCREMENTAL, ">=5.24"),
    Mutant("decoding.cache_order", "decoding", "the cache puts new keys before the cached ones (values in order)",
           CACHE_UTILS, "self.lazy_initialization(key_states, value_states)\n\n"
                        "        self.keys = torch.cat([self.keys, key_states], dim=-2)",
           "self.lazy_initialization(key_states, value_states)\n\n"
           "        self.keys = torch.cat([key_states, self.keys], dim=-2)", INCREMENTAL, ">=5.24"),
    Mutant("decoding.cross_causal_sdpa", "decoding",
           "cross-attention is built causal: under sdpa without an encoder mask, decoder position i sees encoder "
           "positions 0..i only (4.41's bug brought back)",
           MODELING_BERT, "is_causal=False,\n                layer_idx=layer_idx,\n                is_cross_attention=True,",
           "is_causal=True,\n                layer_idx=layer_idx,\n                is_cross_attention=True,", CROSS,
           ">=5.24", path="sdpa"),
    Mutant("decoding.cross_without_decoder_accepted", "decoding",
           "cross-attention layers are built on a model that is not a decoder (the config check is gone)",
           MODELING_BERT, 'if not self.is_decoder:\n                raise ValueError(f"{self} should be used as a '
                          'decoder model if cross attention is added")',
           'if False:\n                raise ValueError(f"{self} should be used as a decoder model if cross '
           'attention is added")', "decoding.refusals", ">=5.24"),
    # --- 4.4 -------------------------------------------------------------------------------------------------------
    Mutant("decoding.cross_mask_dropped@4.4", "decoding", "the encoder_attention_mask never reaches cross-attention",
           MODELING_BERT, "encoder_attention_mask=encoder_extended_attention_mask,", "encoder_attention_mask=None,",
           CROSS, ">=4.4,<4.5", path="float32"),
    Mutant("decoding.cross_mask_inverted@4.4", "decoding",
           "the encoder mask is inverted: padded encoder positions attended, real ones hidden",
           MODELING_UTILS, "encoder_extended_attention_mask = (1.0 - encoder_extended_attention_mask) * -1e9",
           "encoder_extended_attention_mask = encoder_extended_attention_mask * -1e9", CROSS, ">=4.4,<4.5",
           path="float32"),
    Mutant("decoding.cross_uses_self_keys@4.4", "decoding",
           "cross-attention takes its keys and values from the decoder's own states instead of the encoder's",
           MODELING_BERT, "head_mask,\n                encoder_hidden_states,\n                encoder_attention_mask,\n"
                          "                cross_attn_past_key_value,",
           "head_mask,\n                attention_output,\n                encoder_attention_mask,\n"
           "                cross_attn_past_key_value,", CROSS, ">=4.4,<4.5", path="float32"),
    Mutant("decoding.cache_position_offset@4.4", "decoding",
           "with a cache, default positions continue from one before the cache length",
           MODELING_BERT,
           "position_ids = self.position_ids[:, past_key_values_length : seq_length + past_key_values_length]",
           "position_ids = self.position_ids[:, max(past_key_values_length - 1, 0) : seq_length + "
           "max(past_key_values_length - 1, 0)]", INCREMENTAL, ">=4.4,<4.5"),
    Mutant("decoding.cache_order@4.4", "decoding", "the cache puts new keys before the cached ones (values in order)",
           MODELING_BERT, "key_layer = torch.cat([past_key_value[0], key_layer], dim=2)",
           "key_layer = torch.cat([key_layer, past_key_value[0]], dim=2)", INCREMENTAL, ">=4.4,<4.5"),
]
