"""Several independent sub-cases in one drawn example: `CaseBatch`, and a check's property run over each of them.

Where a check's bare calls (one forward, one reference) take a few milliseconds, the fixed cost of a drawn example
(Hypothesis' own per example, and building the model of a new config) is as large as the work it is drawn for. A
`CaseBatch` draws one config and weight seed (one model to build) and `SUBCASES` cases on it, each with its own
inputs and labels, so every drawn example carries that many checks' worth of calls (`conformance.strategies.
case_batches`). Each sub-case is an ordinary `Case`, run exactly as the check runs a single case; a failure names
the sub-case and prints it as a case of its own, which `repro` takes as well as the whole batch.
"""

import json
from dataclasses import dataclass, replace
from typing import List

from .case import Case

SUBCASES = 2  # sub-cases per drawn example


@dataclass
class CaseBatch:
    """Independent `Case`s of one drawn example, sharing head, config and weights seed (one model to build)."""

    cases: List[Case]

    @property
    def head(self):
        return self.cases[0].head

    @property
    def config(self):
        """The config every sub-case shares (what a failure message prints)."""
        return self.cases[0].config

    def to_json(self) -> str:
        return json.dumps({"cases": [json.loads(c.to_json()) for c in self.cases]}, sort_keys=True,
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "CaseBatch":
        """A batch from its JSON, or a batch of one from a single `Case`'s JSON (a failing sub-case)."""
        d = json.loads(text)
        if "cases" not in d:
            return cls([Case.from_json(text)])
        return cls([Case.from_json(json.dumps(c)) for c in d["cases"]])

    def __repr__(self) -> str:
        return f"CaseBatch.from_json({self.to_json()!r})"


def each_case(prop):
    """`prop(adapter, case, target) -> [Comparison]` of one `Case`, run on every sub-case of a `CaseBatch` (a plain
    `Case` is run as it is): the comparisons of sub-case i are keyed "case i: ...", and a failed one's message names
    the sub-case and gives it as a case of its own."""
    def over(adapter, case, target):
        if not isinstance(case, CaseBatch):
            return prop(adapter, case, target)
        results = []
        for i, sub in enumerate(case.cases):
            for r in prop(adapter, sub, target):
                message = r.message if r.ok else (f"sub-case {i} of {len(case.cases)}: {r.message}\n"
                                                 f"sub-case {i}: {sub.to_json()}")
                results.append(replace(r, key=f"case {i}: {r.key}", message=message))
        return results
    over.__doc__ = prop.__doc__
    return over


def reference_of_each_case(check):
    """The property that compares each sub-case with the reference as the `kind="reference"` `check` compares one
    case, known differences and known bugs included (a sub-case that fails as a known bug of `check` predicts holds
    as that bug)."""
    from .known_bugs import judged
    from .runner import compare_with_reference

    def one(adapter, case, target):
        return judged(check, adapter, case, target, compare_with_reference(check, case, adapter, target))
    return each_case(one)


def batched(check):
    """`check`, a reference check whose strategy draws `CaseBatch`es, as the property that compares each of their
    sub-cases with the reference (`reference_of_each_case`)."""
    return replace(check, kind="property", prop=reference_of_each_case(check), case_type=CaseBatch)
