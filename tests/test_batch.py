"""Several independent sub-cases per drawn example (`conformance.batch`): a `CaseBatch` round-trips through JSON (and
takes a single case's JSON, as a failure prints a sub-case), its sub-cases share one model, a check's property runs on
each of them with their comparisons named, and a failure shrinks to one readable failing sub-case beside minimal
ones."""

import numpy as np
import pytest
from hypothesis import find, settings

from conformance.batch import SUBCASES, CaseBatch, each_case
from conformance.case import Case
from conformance.compare import Comparison
from conformance.strategies import case_batches

pytestmark = pytest.mark.harness

ACTIVATIONS = ["gelu", "relu"]


def _batch(condition=lambda batch: True, **kw):
    return find(case_batches("BertForSequenceClassification", ACTIVATIONS, **kw), condition,
                settings=settings(database=None, max_examples=500))


def test_sub_cases_share_head_config_and_weights():
    batch = _batch(lambda b: len({c.inputs["input_ids"].shape for c in b.cases}) > 1, labels="class")
    assert len(batch.cases) == SUBCASES
    assert len({(c.head, str(c.config), c.weights_seed) for c in batch.cases}) == 1
    assert batch.config == batch.cases[0].config and batch.head == "BertForSequenceClassification"


def test_json_round_trip_and_a_single_case():
    batch = _batch(lambda b: b.cases[1].inputs["input_ids"].shape[0] > 1, labels="regression", num_labels=1)
    again = CaseBatch.from_json(batch.to_json())
    assert again.to_json() == batch.to_json() and repr(again).startswith("CaseBatch.from_json(")
    one = CaseBatch.from_json(batch.cases[1].to_json())
    assert [c.to_json() for c in one.cases] == [batch.cases[1].to_json()]


def _fails_on_long_inputs(adapter, case, target):
    ok = case.inputs["input_ids"].shape[1] < 3
    return [Comparison("logits", ok, 0.0 if ok else 2.0, "" if ok else "logits: too long")]


def test_each_case_names_the_failing_sub_case_and_prints_it():
    prop = each_case(_fails_on_long_inputs)
    batch = _batch(lambda b: b.cases[-1].inputs["input_ids"].shape[1] >= 3, labels="class")
    results = prop(None, batch, None)
    assert [r.key for r in results] == [f"case {i}: logits" for i in range(len(batch.cases))]
    failed = [(i, r) for i, r in enumerate(results) if not r.ok]
    assert failed
    for i, r in failed:
        assert r.message.startswith(f"sub-case {i} of {len(batch.cases)}: logits: too long")
        printed = r.message.splitlines()[-1][len(f"sub-case {i}: "):]
        assert Case.from_json(printed).to_json() == batch.cases[i].to_json()
    assert all(r.message == "" for r in results if r.ok)
    single = batch.cases[failed[0][0]]
    assert [r.key for r in prop(None, single, None)] == ["logits"]  # a plain case runs as it is


def test_a_failure_shrinks_to_minimal_sub_cases_beside_the_failing_one():
    """The shrinker lowers every byte: the sub-cases that need not fail come out minimal (batch 1, length 1, no
    optional input), the failing one as short as the failure allows."""
    batch = _batch(lambda b: any(c.inputs["input_ids"].shape[1] >= 3 for c in b.cases), labels="class")
    shapes = [c.inputs["input_ids"].shape for c in batch.cases]
    assert sorted(shapes) == [(1, 1)] * (len(shapes) - 1) + [(1, 3)], shapes
    assert all(set(c.inputs) == {"input_ids"} for c in batch.cases)
    assert batch.config["num_hidden_layers"] == 1 and batch.config["num_attention_heads"] == 1
    assert all(np.all(c.labels["labels"] == 0) for c in batch.cases)
