"""bert-conformance reference: an independent numpy float64 specification of BERT's heads and loss rules.

Modules: `encoder` (embeddings, attention, layers, pooler), `heads` (the eight task heads), `losses` (every loss
rule and its gradient), `activations`, `config` (`BertSpec`). Nothing here imports torch or transformers.
"""

from . import activations, encoder, heads, losses
from .config import BertSpec
from .errors import ReferenceInputError

__all__ = ["BertSpec", "ReferenceInputError", "activations", "encoder", "heads", "losses"]
