"""Mutants of refusals, problem types and other outcome rules."""

from .mutant import MODELING_BERT, OPTIMIZATION, Mutant  # noqa: F401

MUTANTS = []

MUTANTS += [  # helper H7: transformers.AdamW's own argument checks
    Mutant("adamw.negative_lr_accepted", "adamw", "transformers.AdamW no longer refuses a negative learning rate "
           "(its `if lr < 0.0` check dropped): it ascends", OPTIMIZATION,
           '        if lr < 0.0:\n            raise ValueError(f"Invalid learning rate',
           '        if False:\n            raise ValueError(f"Invalid learning rate',
           "errors.adamw.transformers_hyperparameters", ">=4.5,<4.50", path="error"),
    Mutant("adamw.negative_lr_accepted@4.4", "adamw", "transformers.AdamW no longer refuses a negative learning rate "
           "(its `if lr < 0.0` check dropped; the 4.4 source formats its message with str.format)", OPTIMIZATION,
           '        if lr < 0.0:\n            raise ValueError("Invalid learning rate',
           '        if False:\n            raise ValueError("Invalid learning rate',
           "errors.adamw.transformers_hyperparameters", "<4.5", path="error"),
]
