"""A behaviour change between transformers releases (`Change`), and the formatting its examples share."""

from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Change:
    """A behaviour change between releases. `example() -> dict` with string values `input`, `old`, `new`.
    `refused_before` maps a refusal kind (`reference.errors.Refusal.kind`) to the refusal releases before `since`
    make instead of the one the reference states (see `conformance.check.expected_refusal`)."""

    id: str
    since: str  # the first release with the new rule
    area: str
    title: str
    old: str
    new: str
    checks: Tuple[str, ...] = ()  # the checks that observe it
    example: Optional[Callable] = None
    refused_before: dict = field(default_factory=dict)


def fmt(x):
    return np.array2string(np.asarray(x), precision=6, separator=", ") if not isinstance(x, str) else x


def refused(call):
    try:
        return fmt(call())
    except ValueError as exc:  # ReferenceInputError
        return f"refused ({exc})"
