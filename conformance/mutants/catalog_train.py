"""Mutants of train mode: dropout and the training step."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

MUTANTS = []
