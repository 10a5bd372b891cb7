"""The adapter's model building: skipping the random initialisation must not change the model's structure."""

import pytest
import torch

from conformance.adapters.torch_models import structure
from conformance.adapters.transformers import TransformersAdapter

pytestmark = pytest.mark.harness

CONFIG = dict(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=4,
              max_position_embeddings=8)


def _config(adapter):
    return adapter.transformers.BertConfig(**CONFIG, attn_implementation="eager")


@pytest.mark.parametrize("head", ["BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification"])
def test_construct_matches_an_ordinary_build(head):
    adapter = TransformersAdapter()
    model = adapter._construct(head, _config(adapter))
    assert structure(model) == structure(getattr(adapter.transformers, head)(_config(adapter)))


class UntiesWithoutInit(TransformersAdapter):
    """A release whose skipped initialisation also leaves the MLM decoder untied."""

    def _construct_without_init(self, cls, bert_config):
        model = super()._construct_without_init(cls, bert_config)
        decoder = model.cls.predictions.decoder
        decoder.weight = torch.nn.Parameter(decoder.weight.detach().clone())
        return model


def test_construct_falls_back_where_skipping_the_init_changes_thestructure():
    adapter = UntiesWithoutInit()
    model = adapter._construct("BertForMaskedLM", _config(adapter))
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert adapter._no_init_weights is None  # ordinary builds from then on
