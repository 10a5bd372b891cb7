"""The transformers adapter's the gradient of the loss with respect to every parameter, through autograd (a mixin of `TransformersAdapter`, which provides `self.transformers`,
`self.version`, `self.has`, `self.build` and `self._model`)."""


class GradientMethods:
    """The gradient of the loss with respect to every parameter, through autograd."""
