"""Cross-attention and incremental decoding with the KV cache against the reference and the full causal pass."""

CHECKS = []
