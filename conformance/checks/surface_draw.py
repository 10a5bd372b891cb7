"""What the surface checks draw beyond `surface_cases`: 4D attention masks (`with_mask_4d`), the head among every
head that takes a feature, and several sub-cases per drawn example (`SurfaceBatch`, `surface_batches`).

A `SurfaceBatch` is a `CaseBatch` of `SurfaceCase`s on one head, config and weight seed (one model to build), each
with its own inputs: every drawn example carries that many forwards and references (`conformance.batch`).
"""

import json
from dataclasses import replace

import numpy as np
from hypothesis import strategies as st

from ..batch import CaseBatch
from ..check import activations
from ..port import narrowing
from ..strategies import header_and_bytes
from .surface_cases import MAX_HEADS, SurfaceCase, surface_cases

# The heads whose forward takes the surface's keywords, simplest first; multiple choice, whose [batch, choices,
# length] inputs it flattens to [batch * choices, length], takes every one but a 3D or 4D mask (it views every mask
# as [-1, length]).
SURFACE_HEADS = ("BertModel", "BertForSequenceClassification", "BertForTokenClassification",
                 "BertForQuestionAnswering", "BertForNextSentencePrediction", "BertForMaskedLM", "BertForPreTraining",
                 "BertLMHeadModel", "BertForMultipleChoice")
FLAT_MASK_HEADS = SURFACE_HEADS[:-1]  # the heads that take a 3D or 4D attention mask
DECODER_HEADS = ("BertModel", "BertLMHeadModel")  # the heads drawn with is_decoder=True
UNTIED_HEADS = ("BertForMaskedLM", "BertForPreTraining", "BertLMHeadModel")  # the heads with an MLM decoder

MASK_4D_KINDS = ("int", "bool", "float_keep", "additive")
ADDITIVE_VALUES = (0.0, -10000.0, -1.0, 0.5, 2.0)  # the entries of a drawn additive 4D mask
SUBCASES = 4  # sub-cases per drawn example


class SurfaceBatch(CaseBatch):
    """A `CaseBatch` of `SurfaceCase`s (what `repro` reads back: a batch, or one failing sub-case)."""

    @classmethod
    def from_json(cls, text: str) -> "SurfaceBatch":
        d = json.loads(text)
        if "cases" not in d:
            return cls([SurfaceCase.from_json(text)])
        return cls([SurfaceCase.from_json(json.dumps(c)) for c in d["cases"]])

    def to_json(self) -> str:
        """The batch's JSON; a batch of one is its case's JSON (what `from_json` reads back)."""
        return self.cases[0].to_json() if len(self.cases) == 1 else super().to_json()

    def __repr__(self) -> str:
        return f"SurfaceBatch.from_json({self.to_json()!r})"


def mask_4d_of(kind, heads, raw, batch, length):
    """A 4D attention mask [batch, heads, length, length] of `kind` from bytes: "int" (int64), "bool" and
    "float_keep" (float64) hold 0/1 (rows may be all 0); "additive" holds values of ADDITIVE_VALUES (0 most often)."""
    cube = raw[:batch * heads * length * length].reshape(batch, heads, length, length)
    if kind == "additive":
        return np.asarray(ADDITIVE_VALUES)[cube % len(ADDITIVE_VALUES)]
    bits = cube % 2
    return bits.astype({"int": np.int64, "bool": bool, "float_keep": np.float64}[kind])


@st.composite
def with_mask_4d(draw, case):
    """`case` with a 4D attention mask [batch, 1 or num_heads, length, length] of a drawn kind (MASK_4D_KINDS)."""
    batch, length = np.shape(case.inputs.get("input_ids", case.inputs.get("inputs_embeds")))[:2]
    h, raw = header_and_bytes(draw, [("kind", len(MASK_4D_KINDS)), ("per_head", 2)],
                              batch * MAX_HEADS * length * length)
    heads = case.config["num_attention_heads"] if h["per_head"] else 1
    mask = mask_4d_of(MASK_4D_KINDS[h["kind"]], heads, raw, batch, length)
    return replace(case, inputs=dict(case.inputs, attention_mask=mask))


def head_keywords(head, kw):
    """`surface_cases`' keywords `kw` for `head`: BertLMHeadModel is drawn as a decoder, question answering with
    two labels (start, end)."""
    kw = dict(kw, is_decoder=kw.get("is_decoder", False) or head == "BertLMHeadModel")
    if head == "BertForQuestionAnswering":
        kw["num_labels"] = 2
    if head == "BertForMultipleChoice":
        kw["num_labels"] = 1
    return kw


@st.composite
def surface_batches(draw, heads, acts, features, narrowed, subcases=SUBCASES, mask_4d=False, **kw):
    """A `SurfaceBatch` of `subcases` `surface_cases` with `features` on one head drawn from `heads` (shrinking to
    the first), one config and weight seed (the first sub-case's), each with its own inputs (and with `mask_4d`, its
    own 4D mask). `narrowed` maps a head to its port's narrowing keywords."""
    head = heads[draw(st.integers(0, len(heads) - 1))]
    out, port = [], dict(narrowed(head))
    for _ in range(subcases):
        if out:  # the first sub-case's config: the inputs are drawn for it
            port["fixed"] = dict(port.get("fixed") or {}, **out[0].config)
        case = draw(surface_cases(head, acts, features, **head_keywords(head, kw), **port))
        if out:
            case = replace(case, config=out[0].config, weights_seed=out[0].weights_seed)
        out.append(draw(with_mask_4d(case)) if mask_4d else case)
    return SurfaceBatch(out)


def surface_batch_strategy(heads, features, **kw):
    """adapter -> `surface_batches` of `heads` with `features`, over the activations both sides know, narrowed to
    the adapter's port."""
    return lambda adapter: surface_batches(heads, activations(adapter), features,
                                           lambda head: narrowing(adapter, head), **kw)
