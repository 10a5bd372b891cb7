"""Mutants of the model's wider surface: relative positions, masks, attention probabilities, hidden states, inputs_embeds, head_mask, untied decoder, head options."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

MUTANTS = []
