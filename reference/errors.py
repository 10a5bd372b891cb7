"""The one exception the reference raises for input it refuses, and the refusal it expects of an implementation."""

import re
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class Refusal:
    """The refusal an implementation is expected to make of input the reference refuses.

    `kind` names the bad input (e.g. "label-out-of-range"); `classes` are the exception class names accepted (an
    exception matches when one of them is in its class's MRO); `pattern`, where the message is stable, is a regex
    searched in the exception's message.
    """

    kind: str
    classes: Tuple[str, ...]
    pattern: Optional[str] = None

    def matches(self, exc):
        """Whether the exception `exc` is this refusal: an accepted class and, with a pattern, a matching message."""
        names = {cls.__name__ for cls in type(exc).__mro__}
        if not names & set(self.classes):
            return False
        return self.pattern is None or re.search(self.pattern, str(exc)) is not None

    def __str__(self):
        classes = " or ".join(self.classes)
        return f"{self.kind}: {classes}" + (f" matching /{self.pattern}/" if self.pattern else "")


class ReferenceInputError(ValueError):
    """Input outside what the specification defines (bad label, bad shape, bad config).

    The reference never returns a number for such input: a silent wrong number is worse than an error. `expected`
    (a `Refusal`, or None where no particular refusal is stated) is what the implementation should raise instead;
    `computed` holds what the reference computed before it refused (e.g. the steps before a refusing step), or None.
    """

    def __init__(self, message, expected=None, computed=None):
        super().__init__(message)
        self.expected = expected
        self.computed = computed
