"""Adapters: the bridges to the implementations under test. `transformers` is HuggingFace transformers; a port of
BERT elsewhere gets an adapter of its own, passed to the suite with `--adapter module:Class`."""
