"""Mutants of refusals, problem types and other outcome rules."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

MUTANTS = []
