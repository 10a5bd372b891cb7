"""Mutants of the backward pass: bugs that change only the gradients of parameters."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

MUTANTS = []
