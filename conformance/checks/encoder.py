"""The BERT encoder (`BertModel`) against the reference: embeddings, attention masks, every activation, pooler."""

from ..check import SDPA_FLOAT64_CAUSAL_MASK, Check, activations
from ..port import narrowing
from ..strategies import cases


def model_cases(head, **kw):
    """adapter -> the model cases of `head` (see `conformance.strategies.cases`) over the activations both sides
    know, narrowed to what the adapter's port supports (`conformance.port.narrowing`)."""
    return lambda adapter: cases(head, activations(adapter), **kw, **narrowing(adapter, head))


CHECKS = [
    Check("encoder.bidirectional", "encoder", "BertModel",
          "BertModel last hidden state and pooled output: embeddings, padded-key masking, every activation, pooler",
          model_cases("BertModel", labels="none"), reduced_precision=True),
    Check("encoder.causal", "encoder", "BertModel",
          "BertModel as a decoder (is_decoder=True): causal plus padding mask",
          model_cases("BertModel", labels="none", is_decoder=True), known=(SDPA_FLOAT64_CAUSAL_MASK,),
          reduced_precision=True),
]
