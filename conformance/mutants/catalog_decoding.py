"""Mutants of cross-attention and incremental decoding with the KV cache."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

MUTANTS = []
