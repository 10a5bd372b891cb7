"""The adapter's model building: skipping the random initialisation must not change the model's structure; labels
reach the model as a user passes them; a cached model starts every case from its config as built."""

import numpy as np
import pytest
import torch
from hypothesis import find, settings

from conformance.adapters.torch_models import structure
from conformance.adapters.transformers import TransformersAdapter
from conformance.registry import CHECKS_BY_ID

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


def _first(check_id, adapter, condition=lambda case: True):
    case = find(CHECKS_BY_ID[check_id].strategy(adapter), condition, settings=settings(database=None, max_examples=200))
    return getattr(case, "cases", [case])[0]  # a CaseBatch's first sub-case (`conformance.batch`)


def test_labels_reach_the_model_as_numpy_gives_them(monkeypatch):
    """No cast to the model's dtype: float64 regression labels reach a float32 model as float64, int32 as int32."""
    import conformance.adapters.transformers as module

    adapter, seen = TransformersAdapter(), {}

    def forward(model, head, keys, kwargs, grad):
        seen.update({k: v.dtype for k, v in kwargs.items() if k == "labels"})
        return original(model, head, keys, kwargs, grad)

    original = module.forward
    monkeypatch.setattr(module, "forward", forward)
    adapter.run(_first("loss.sequence_classification.regression", adapter), dtype="float32")
    assert seen["labels"] == torch.float64
    adapter.run(_first("loss.sequence_classification.int32_labels", adapter, lambda c: c.config["num_labels"] == 1))
    assert seen["labels"] == torch.int32


def test_a_cached_model_does_not_carry_one_cases_inferred_problem_type_into_the_next():
    """transformers writes the problem type it infers from the first labels into the config; the next case, on the
    same cached model, starts from the config as built (as on a model of its own)."""
    adapter = TransformersAdapter()
    if not adapter.has("sequence-classification-problem-type"):
        pytest.skip(f"transformers {adapter.version}'s BertConfig has no problem_type")
    multi = _first("loss.sequence_classification.multi_label", adapter)
    model, _ = adapter.build(multi)
    adapter.run(multi)
    assert model.config.problem_type == "multi_label_classification"
    single = multi.copy()
    single.labels = {"labels": np.zeros(len(multi.labels["labels"]), dtype=np.int64)}
    again, _ = adapter.build(single)
    assert again is model and again.config.problem_type is None
    adapter.run(single)  # cross-entropy of class indices, not BCE of [B] against [B, C] logits
    assert model.config.problem_type == "single_label_classification"
