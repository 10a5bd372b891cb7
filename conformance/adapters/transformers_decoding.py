"""The transformers adapter's cross-attention (encoder_hidden_states, encoder_attention_mask) and incremental decoding with the KV cache (a mixin of `TransformersAdapter`, which provides `self.transformers`,
`self.version`, `self.has`, `self.build` and `self._model`)."""


class DecodingMethods:
    """Cross-attention (encoder_hidden_states, encoder_attention_mask) and incremental decoding with the KV cache."""
