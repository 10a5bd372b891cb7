"""The model's wider surface against the reference: relative positions, any attention mask, attention probabilities and every hidden state, inputs_embeds, head_mask, the untied decoder."""

CHECKS = []
