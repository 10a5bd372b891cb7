"""A drawn case: everything that determines one comparison, serialisable to JSON for reproduction, and the names of
the outputs a head returns."""

import json
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np


@dataclass
class Case:
    """One input to a check: the head, its config, the seed of its weights, the inputs and the labels.

    Arrays are numpy; `labels` maps the head's label argument names (`labels`, `next_sentence_label`,
    `start_positions`, ...) to arrays. `to_json`/`from_json` round-trip exactly.
    """

    head: str
    config: Dict
    weights_seed: int
    inputs: Dict[str, np.ndarray]
    labels: Dict[str, np.ndarray] = field(default_factory=dict)
    num_items_in_batch: Optional[int] = None

    def to_json(self) -> str:
        def arrays(d):
            return {k: {"dtype": str(v.dtype), "data": v.tolist()} for k, v in d.items()}

        return json.dumps(
            {
                "head": self.head,
                "config": self.config,
                "weights_seed": self.weights_seed,
                "inputs": arrays(self.inputs),
                "labels": arrays(self.labels),
                "num_items_in_batch": self.num_items_in_batch,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "Case":
        d = json.loads(text)

        def arrays(m):
            return {k: np.array(v["data"], dtype=v["dtype"]) for k, v in m.items()}

        return cls(d["head"], d["config"], d["weights_seed"], arrays(d["inputs"]), arrays(d["labels"]),
                   d.get("num_items_in_batch"))

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        return f"Case.from_json({self.to_json()!r})"

    def copy(self) -> "Case":
        """A case with copies of every array: what an implementation writes into its inputs stays there."""
        return Case(self.head, dict(self.config), self.weights_seed, {k: v.copy() for k, v in self.inputs.items()},
                    {k: v.copy() for k, v in self.labels.items()}, self.num_items_in_batch)


@dataclass
class SubjectCase:
    """A case of a check whose subject is not one drawn model: `subject` names what is under test (a schedule, an
    AdamW variant, a collator output type, a checkpoint part or head) and `params` holds JSON values."""

    subject: str
    params: Dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"subject": self.subject, "params": self.params}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "SubjectCase":
        d = json.loads(text)
        return cls(d["subject"], d["params"])

    def __repr__(self) -> str:
        return f"SubjectCase.from_json({self.to_json()!r})"

    def arrays(self, key):
        """`params[key]` (a mapping of integer lists) as int64 numpy arrays."""
        return {k: np.asarray(v, dtype=np.int64) for k, v in self.params.get(key, {}).items()}


# The outputs a head returns besides the loss, as transformers' output objects name them.
OUTPUT_KEYS = {
    "BertModel": ("last_hidden_state", "pooler_output"),
    "BertForPreTraining": ("prediction_logits", "seq_relationship_logits"),
    "BertForQuestionAnswering": ("start_logits", "end_logits"),
}


def logit_keys(head):
    """The names of `head`'s outputs (`logits` unless OUTPUT_KEYS says otherwise)."""
    return OUTPUT_KEYS.get(head, ("logits",))


def draw_weights(shapes: Dict[str, tuple], seed: int) -> Dict[str, np.ndarray]:
    """Weights in which every parameter matters (no zero biases, no unit LayerNorm), reproducible from `seed`.

    Matrices ~ N(0, 1/fan_in) keep activations O(1) through the layers; embeddings ~ N(0, 1); biases ~ N(0, 0.5^2);
    LayerNorm weights ~ 1 + N(0, 0.3^2). Names are visited in sorted order so a seed always means the same weights.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if "LayerNorm.weight" in name:
            out[name] = 1.0 + 0.3 * rng.standard_normal(shape)
        elif len(shape) == 1:
            out[name] = 0.5 * rng.standard_normal(shape)
        elif "embeddings" in name:
            out[name] = rng.standard_normal(shape)
        else:
            out[name] = rng.standard_normal(shape) / np.sqrt(shape[-1])
    return out
