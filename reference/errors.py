"""The one exception the reference raises for input it refuses."""


class ReferenceInputError(ValueError):
    """Input outside what the specification defines (bad label, bad shape, bad config).

    The reference never returns a number for such input: a silent wrong number is worse than an error.
    """
