"""The gradient of the loss with respect to every parameter against the reference backward pass."""

CHECKS = []
