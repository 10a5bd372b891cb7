"""The drift catalog's changes of the model's surface (attention variants, masks, cross-attention, the KV cache,
outputs, forward arguments, head options), part of `conformance.drift.CHANGES`. Each `Change` as in
`conformance.change`; `example()` computes both rules with the reference's variants."""

from .change import Change, fmt, refused  # noqa: F401

CHANGES = []
