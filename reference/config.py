"""The few configuration fields the BERT math depends on, as a plain frozen dataclass."""

from dataclasses import dataclass, fields
from typing import Mapping, Optional

from .errors import ReferenceInputError


@dataclass(frozen=True)
class BertSpec:
    """Hyper-parameters of a BERT model, named as in `BertConfig` so `BertSpec.from_mapping(config.to_dict())` works.

    Only fields that change the arithmetic are kept; dropout is absent because the reference is eval-mode math.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    is_decoder: bool = False
    add_cross_attention: bool = False
    num_labels: int = 2
    problem_type: Optional[str] = None
    tie_word_embeddings: bool = True
    position_embedding_type: str = "absolute"  # or "relative_key", "relative_key_query" (transformers < 5.0)
    pad_token_id: int = 0

    def __post_init__(self):
        if self.num_attention_heads < 1 or self.hidden_size < 1:
            raise ReferenceInputError("hidden_size and num_attention_heads must be positive")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ReferenceInputError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )
        if self.position_embedding_type not in ("absolute", "relative_key", "relative_key_query"):
            raise ReferenceInputError(f"unknown position_embedding_type {self.position_embedding_type!r}")
        if self.problem_type not in (None, "regression", "single_label_classification", "multi_label_classification"):
            raise ReferenceInputError(f"unknown problem_type {self.problem_type!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_mapping(cls, mapping: Mapping) -> "BertSpec":
        """Build from any mapping (e.g. `BertConfig.to_dict()`), ignoring keys the math does not use.

        `num_labels` is derived from `id2label` when only that is present, as `PretrainedConfig` does.
        """
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in mapping.items() if k in names}
        if "num_labels" not in values and mapping.get("id2label"):
            values["num_labels"] = len(mapping["id2label"])
        return cls(**values)
