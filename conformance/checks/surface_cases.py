"""Cases of the model's wider surface: `SurfaceCase` (a `Case` with forward options) and its strategy, which draws
on top of `conformance.strategies.cases` the config fields and inputs each surface feature needs.

Features (each a choice of one header byte, shrinking toward the simplest value):
- "relative": `position_embedding_type` relative_key or relative_key_query.
- "mask": an attention mask of any pattern: right padding, left padding, holes, or holes with fully masked rows;
  or ("3d") a [batch, query, key] mask, a key mask per query.
- "attentions", "hidden_states": the forward option `output_attentions` / `output_hidden_states`.
- "inputs_embeds": float embeddings instead of `input_ids`.
- "head_mask": a [heads] or [layers, heads] mask of values in HEAD_MASK_VALUES.
- "untied": `tie_word_embeddings=False`.
"""

import json
from dataclasses import dataclass, field
from typing import Dict

import numpy as np
from hypothesis import strategies as st

from ..case import Case
from ..check import activations
from ..port import narrowing
from ..strategies import MAX_BATCH, MAX_CHOICES, MAX_LENGTH, cases, header_and_bytes

RELATIVE = ("relative_key", "relative_key_query")
MASKS = ("right", "left", "holes", "fully_masked")
HEAD_MASK_VALUES = (1.0, 0.0, 0.5, 2.0)
MAX_HEADS, MAX_LAYERS, MAX_HIDDEN = 4, 3, 16


@dataclass
class SurfaceCase(Case):
    """A `Case` whose `options` are forward keywords besides the inputs (`output_attentions`, ...)."""

    options: Dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = json.loads(super().to_json())
        d["options"] = self.options
        return json.dumps(d, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "SurfaceCase":
        base = Case.from_json(text)
        return cls(**vars(base), options=json.loads(text).get("options", {}))

    def __repr__(self) -> str:
        return f"SurfaceCase.from_json({self.to_json()!r})"

    def copy(self) -> "SurfaceCase":
        return SurfaceCase(**vars(Case.copy(self)), options=dict(self.options))


def surface_mask(kind, bits, lengths, batch, length):
    """An attention mask [batch, length] of pattern `kind` from bytes: "right"/"left" pad each row to 1..length real
    tokens at the start/end; "holes" keeps each position with probability 1/2 but at least one per row;
    "fully_masked" is "holes" where rows may be all 0."""
    n = 1 + lengths[:batch] % length
    positions = np.arange(length)[None, :]
    if kind == "right":
        return (positions < n[:, None]).astype(np.int64)
    if kind == "left":
        return (positions >= (length - n)[:, None]).astype(np.int64)
    mask = (bits[:batch, :length] % 2).astype(np.int64)
    if kind == "holes":
        mask[np.arange(batch), (lengths[:batch] % length)] = 1
    return mask


@st.composite
def surface_cases(draw, head, acts, features, is_decoder=False, num_labels=None, fixed=None, lacking=(),
                  ignore_index=-100):
    """A SurfaceCase of `head` without labels, with the surface `features` drawn: a dict from feature names (see
    the module docstring) to True, or for "mask" to one of MASKS or "any"."""
    config_fixed = dict(fixed or {})
    if "untied" in features:
        config_fixed["tie_word_embeddings"] = False
    base = draw(cases(head, acts, labels="none", is_decoder=is_decoder, num_labels=num_labels, fixed=config_fixed,
                      lacking=lacking, ignore_index=ignore_index))
    fields = [("relative", len(RELATIVE)), ("mask", len(MASKS)), ("head_mask_shape", 2)]
    config, inputs, options = dict(base.config), dict(base.inputs), {}
    # multiple choice: its [batch, choices, length] inputs are drawn as the [batch * choices, length] rows it flattens
    # them to, and shaped back at the end
    choices = inputs["input_ids"].shape[1] if head == "BertForMultipleChoice" else None
    if choices:
        inputs = {k: v.reshape(-1, v.shape[-1]) for k, v in inputs.items()}
    rows = MAX_BATCH * (MAX_CHOICES if choices else 1)
    grid = rows * MAX_LENGTH
    embedded = MAX_BATCH * MAX_LENGTH * MAX_HIDDEN if "inputs_embeds" in features else 0  # rows beyond: repeated
    per_query = grid * MAX_LENGTH if features.get("mask") == "3d" else 0
    h, raw = header_and_bytes(draw, fields, grid + rows + MAX_LAYERS * MAX_HEADS + embedded + per_query)
    bits, lengths = raw[:grid].reshape(rows, MAX_LENGTH), raw[grid:grid + rows]
    rest = raw[grid + rows:]
    head_bytes, rest = rest[:MAX_LAYERS * MAX_HEADS], rest[MAX_LAYERS * MAX_HEADS:]
    embed_bytes, mask_bytes = rest[:embedded], rest[embedded:]
    batch, length = inputs["input_ids"].shape
    if "relative" in features:
        config["position_embedding_type"] = RELATIVE[h["relative"]]
    if "mask" in features:
        kind = MASKS[h["mask"]] if features["mask"] == "any" else features["mask"]
        if kind == "3d":
            cube = mask_bytes.reshape(rows, MAX_LENGTH, MAX_LENGTH)[:batch, :length, :length]
            inputs["attention_mask"] = (cube % 2).astype(np.int64)
        else:
            inputs["attention_mask"] = surface_mask(kind, bits, lengths, batch, length)
    if "head_mask" in features:
        layers, heads = config["num_hidden_layers"], config["num_attention_heads"]
        shape = (heads,) if h["head_mask_shape"] == 0 else (layers, heads)
        values = np.asarray(HEAD_MASK_VALUES)[head_bytes[:int(np.prod(shape))] % len(HEAD_MASK_VALUES)]
        inputs["head_mask"] = values.reshape(shape)
    if "inputs_embeds" in features:
        hidden = config["hidden_size"]
        table = embed_bytes.reshape(MAX_BATCH, MAX_LENGTH, MAX_HIDDEN)
        values = (table[np.arange(batch) % MAX_BATCH, :length, :hidden] - 128) / 64.0
        del inputs["input_ids"]
        inputs["inputs_embeds"] = values
    for option in ("attentions", "hidden_states"):
        if option in features:
            options[f"output_{option}"] = True
    if choices:
        inputs = {k: v if k == "head_mask" else v.reshape(-1, choices, *v.shape[1:]) for k, v in inputs.items()}
    return SurfaceCase(head, config, base.weights_seed, inputs, {}, None, options)


def surface_strategy(head, features, **kw):
    """adapter -> `surface_cases` of `head` with `features`, over the activations both sides know, narrowed to the
    adapter's port."""
    return lambda adapter: surface_cases(head, activations(adapter), features, **kw, **narrowing(adapter, head))

