"""Mutants of the backward pass: bugs that change only the gradients of parameters (the forward values stay
bit-identical, so every forward check passes on them; the `gradients.<head>` checks must kill them). The 5.x source
and, where it differs, the older one (`@4.4`)."""

from .mutant import MODELING_BERT, Mutant

GRADIENTS = "gradients."
_OUTPUT = ("        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)\n"
           "        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)\n"
           "        self.dropout = nn.Dropout(config.hidden_dropout_prob)\n\n"
           "    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:\n"
           "        hidden_states = self.dense(hidden_states)\n"
           "        hidden_states = self.dropout(hidden_states)\n")
_OUTPUT_OLD = _OUTPUT.replace("(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:",
                              "(self, hidden_states, input_tensor):")
_RESIDUAL = "        hidden_states = self.LayerNorm(hidden_states + input_tensor)"
_RESIDUAL_DETACHED = "        hidden_states = self.LayerNorm(hidden_states + input_tensor.detach())"
_WORD = "nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)"
_DECODER = "hidden_states = self.decoder(hidden_states)"
_EMBEDDING_NORM = "embeddings = self.LayerNorm(embeddings)"

MUTANTS = [
    Mutant("backward.feed_forward_residual_detached", "backward",
           "the feed-forward block's residual is detached: the layer's input gets gradient only through the "
           "feed-forward branch", MODELING_BERT, _OUTPUT + _RESIDUAL, _OUTPUT + _RESIDUAL_DETACHED, GRADIENTS,
           ">=4.27"),
    Mutant("backward.feed_forward_residual_detached@4.4", "backward",
           "the feed-forward block's residual is detached: the layer's input gets gradient only through the "
           "feed-forward branch", MODELING_BERT, _OUTPUT_OLD + _RESIDUAL, _OUTPUT_OLD + _RESIDUAL_DETACHED, GRADIENTS,
           "<4.27"),
    Mutant("backward.position_embeddings_detached", "backward", "the position embeddings get no gradient",
           MODELING_BERT, "embeddings = embeddings + position_embeddings",
           "embeddings = embeddings + position_embeddings.detach()", GRADIENTS, ">=5.0"),
    Mutant("backward.position_embeddings_detached@4.4", "backward", "the position embeddings get no gradient",
           MODELING_BERT, "embeddings += position_embeddings", "embeddings += position_embeddings.detach()",
           GRADIENTS, "<5.0"),
    Mutant("backward.padding_row_gets_gradient", "backward",
           "the word embeddings lose padding_idx: the [PAD] row gets the gradient of its lookups",
           MODELING_BERT, _WORD, "nn.Embedding(config.vocab_size, config.hidden_size)", GRADIENTS, ">=4.4"),
    Mutant("backward.decoder_untied_backward", "backward",
           "the MLM decoder reads a detached copy of its weight: the tied word embeddings get only their lookup "
           "gradient, not the decoder's", MODELING_BERT, _DECODER,
           "hidden_states = nn.functional.linear(hidden_states, self.decoder.weight.detach(), self.decoder.bias)",
           "gradients.pretraining or gradients.masked_lm or gradients.causal_lm", ">=4.4"),
    Mutant("backward.attention_keys_detached", "backward",
           "eager attention scores read detached keys: the key projections get no gradient, the layer input only "
           "the query's and value's", MODELING_BERT, "attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling",
           "attn_weights = torch.matmul(query, key.detach().transpose(2, 3)) * scaling", GRADIENTS, ">=5.0"),
    Mutant("backward.attention_keys_detached@4.4", "backward",
           "eager attention scores read detached keys: the key projections get no gradient, the layer input only "
           "the query's and value's", MODELING_BERT,
           "attention_scores = torch.matmul(query_layer, key_layer.transpose(-1, -2))",
           "attention_scores = torch.matmul(query_layer, key_layer.detach().transpose(-1, -2))", GRADIENTS, "<5.0"),
    Mutant("backward.embedding_layernorm_weight_detached", "backward",
           "the embedding LayerNorm's weight is detached: it gets no gradient", MODELING_BERT, _EMBEDDING_NORM,
           "embeddings = nn.functional.layer_norm(embeddings, self.LayerNorm.normalized_shape, "
           "self.LayerNorm.weight.detach(), self.LayerNorm.bias, self.LayerNorm.eps)", GRADIENTS, ">=4.4"),
    Mutant("backward.relative_distance_embedding_detached@4.4", "backward",
           "the relative position scores read detached distance embeddings: distance_embedding gets no gradient",
           MODELING_BERT, "positional_embedding = positional_embedding.to(dtype=query_layer.dtype)",
           "positional_embedding = positional_embedding.detach().to(dtype=query_layer.dtype)",
           "gradients.relative_positions", "<5.0"),
    Mutant("backward.cross_attention_keys_detached", "backward",
           "cross-attention keys read detached encoder states: encoder_hidden_states get gradient only through the "
           "values", MODELING_BERT, "key_layer = self.key(encoder_hidden_states).view(",
           "key_layer = self.key(encoder_hidden_states.detach()).view(", "gradients.cross_attention", ">=5.0"),
    Mutant("backward.cross_attention_keys_detached@4.4", "backward",
           "cross-attention keys read detached encoder states: encoder_hidden_states get gradient only through the "
           "values (float32: before 4.21 a float64 decoder refuses encoder states)", MODELING_BERT,
           "key_layer = self.transpose_for_scores(self.key(encoder_hidden_states))",
           "key_layer = self.transpose_for_scores(self.key(encoder_hidden_states.detach()))",
           "gradients.cross_attention", "<4.54", path="float32"),
]
