"""The train-mode forward of reference/dropout.py against independent formulations: with every mask keeping
everything, dropout at a site is a 1 / (1 - p) scaling of a linear layer's weights (or a LayerNorm's), which the
eval-mode reference computes; a dropped element is checked by hand on the classifier."""

import numpy as np
import pytest

from reference import BertSpec, ReferenceInputError, dropout, heads
from reference.encoder import linear

pytestmark = pytest.mark.reference

SPEC = BertSpec(vocab_size=11, hidden_size=6, num_hidden_layers=2, num_attention_heads=2, intermediate_size=5,
                hidden_act="gelu", max_position_embeddings=12, num_labels=3)
ZERO = {"hidden": 0.0, "attention": 0.0, "classifier": 0.0}


def _weights(head, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"bert.embeddings.word_embeddings.weight": (11, 6), "bert.embeddings.position_embeddings.weight": (12, 6),
              "bert.embeddings.token_type_embeddings.weight": (2, 6), "bert.embeddings.LayerNorm.weight": (6,),
              "bert.embeddings.LayerNorm.bias": (6,), "bert.pooler.dense.weight": (6, 6), "bert.pooler.dense.bias": (6,)}
    for i in range(2):
        p = f"bert.encoder.layer.{i}."
        for name in ("query", "key", "value"):
            shapes[f"{p}attention.self.{name}.weight"], shapes[f"{p}attention.self.{name}.bias"] = (6, 6), (6,)
        shapes.update({f"{p}attention.output.dense.weight": (6, 6), f"{p}attention.output.dense.bias": (6,),
                       f"{p}attention.output.LayerNorm.weight": (6,), f"{p}attention.output.LayerNorm.bias": (6,),
                       f"{p}intermediate.dense.weight": (5, 6), f"{p}intermediate.dense.bias": (5,),
                       f"{p}output.dense.weight": (6, 5), f"{p}output.dense.bias": (6,),
                       f"{p}output.LayerNorm.weight": (6,), f"{p}output.LayerNorm.bias": (6,)})
    shapes.update({"classifier.weight": (3, 6), "classifier.bias": (3,)})
    return {k: rng.standard_normal(s) * (0.4 if len(s) == 2 else 0.2) + (1.0 if "LayerNorm.weight" in k else 0.0)
            for k, s in shapes.items()}


INPUTS = {"input_ids": np.array([[1, 4, 7, 2], [3, 9, 0, 5]]), "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]])}


def _keep_all(head, rates):
    """Masks keeping everything, shaped as each site's input is."""
    shapes = {"embeddings": (2, 4, 6), "attention_probs": (2, 2, 4, 4), "attention_output": (2, 4, 6),
              "output": (2, 4, 6), "classifier": (2, 6) if head == "BertForSequenceClassification" else (2, 4, 6)}
    return [np.ones(shapes[site.split(".")[-1]], dtype=bool) for site, _ in dropout.sites(head, 2, rates)]


def test_apply_scales_kept_and_zeroes_dropped():
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(dropout.apply(x, np.array([True, False, True]), 0.25), [4 / 3, 0.0, 4.0])
    np.testing.assert_array_equal(dropout.apply(x, np.ones(3, bool), 1.0), np.zeros(3))


def test_classifier_rate_rule():
    assert dropout.classifier_rate(0.1, None) == 0.1
    assert dropout.classifier_rate(0.1, 0.5) == 0.5
    assert dropout.classifier_rate(0.1, 0.0) == 0.0
    assert dropout.classifier_rate(0.1, 0.5, configurable=False) == 0.1


def test_sites_in_call_order_without_rate_zero():
    rates = {"hidden": 0.1, "attention": 0.0, "classifier": 0.3}
    assert dropout.sites("BertForSequenceClassification", 1, rates) == [
        ("embeddings", 0.1), ("layer0.attention_output", 0.1), ("layer0.output", 0.1), ("classifier", 0.3)]
    assert [s for s, _ in dropout.sites("BertForQuestionAnswering", 1, dict(rates, attention=0.2))] == [
        "embeddings", "layer0.attention_probs", "layer0.attention_output", "layer0.output"]


@pytest.mark.parametrize("head", ["BertForSequenceClassification", "BertForTokenClassification"])
def test_rates_zero_is_eval_mode(head):
    w = _weights(head)
    out = dropout.forward(head, w, SPEC, INPUTS, [], ZERO)
    ref = heads.HEADS[head](w, SPEC, **INPUTS)
    for key in out:
        np.testing.assert_allclose(out[key], ref[key], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", ["hidden", "attention", "classifier"])
def test_keeping_everything_is_a_scaled_linear_map(kind):
    """Dropout with masks keeping everything multiplies each site's input by 1 / (1 - p); each site's input is
    linear in some weights (embeddings: the LayerNorm's weight and bias; attention probabilities: the value
    projection, through probs @ V; the attention and feed-forward outputs: their dense weight and bias; the
    classifier: its weight), so it equals eval mode with those weights scaled."""
    head, p = "BertForSequenceClassification", 0.25
    rates = dict(ZERO, **{kind: p})
    w = _weights(head)
    parts = {"hidden": ["attention.output.dense", "output.dense"], "attention": ["attention.self.value"]}.get(kind, [])
    names = [f"bert.encoder.layer.{i}.{part}.{k}" for i in range(2) for part in parts for k in ("weight", "bias")]
    names += {"hidden": ["bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"],
              "classifier": ["classifier.weight"]}.get(kind, [])
    scaled = dict(w)
    for name in names:
        scaled[name] = w[name] / (1 - p)
    out = dropout.forward(head, w, SPEC, INPUTS, _keep_all(head, rates), rates)
    ref = heads.HEADS[head](scaled, SPEC, **INPUTS)
    for key in out:
        np.testing.assert_allclose(out[key], ref[key], rtol=1e-12, atol=1e-12)


def test_one_dropped_classifier_input():
    head, p = "BertForSequenceClassification", 0.5
    rates = dict(ZERO, classifier=p)
    w = _weights(head)
    keep = np.ones((2, 6), dtype=bool)
    keep[1, 2] = False
    out = dropout.forward(head, w, SPEC, INPUTS, [keep], rates)
    pooled = heads.HEADS["BertModel"]({k[5:]: v for k, v in w.items() if k.startswith("bert.")}, SPEC,
                                      **INPUTS)["pooler_output"]
    features = pooled / (1 - p)
    features[1, 2] = 0.0
    np.testing.assert_allclose(out["logits"], linear(features, w["classifier.weight"], w["classifier.bias"]),
                               rtol=1e-12, atol=1e-12)


def test_masks_must_fit_the_sites():
    head = "BertForSequenceClassification"
    rates = dict(ZERO, hidden=0.1)
    masks = _keep_all(head, rates)
    w = _weights(head)
    with pytest.raises(ReferenceInputError, match="no keep-mask left"):
        dropout.forward(head, w, SPEC, INPUTS, masks[:-1], rates)
    with pytest.raises(ReferenceInputError, match="left over"):
        dropout.forward(head, w, SPEC, INPUTS, masks + masks[:1], rates)
    with pytest.raises(ReferenceInputError, match="shape"):
        dropout.forward(head, w, SPEC, INPUTS, [np.ones((2, 6), bool)] + masks[1:], rates)
