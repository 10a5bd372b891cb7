"""Shared helpers for the oracle's own tests (tests/test_reference_*.py).

Nothing here imports torch or transformers: weights are random numpy arrays named like the transformers
`state_dict` of each BERT class, and gradients are checked against central finite differences.
"""

import numpy as np

from reference import BertSpec, backward


def tiny_spec(**overrides) -> BertSpec:
    """A BERT small enough that a forward pass costs microseconds; `overrides` replace any field."""
    fields = dict(
        vocab_size=13,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=12,
        hidden_act="gelu",
        max_position_embeddings=16,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
        num_labels=3,
    )
    fields.update(overrides)
    return BertSpec(**fields)


def _dense(w, rng, name, out_features, in_features):
    w[name + ".weight"] = rng.normal(0.0, 1.5 / np.sqrt(in_features), (out_features, in_features))
    w[name + ".bias"] = rng.normal(0.0, 0.1, out_features)


def _layer_norm(w, rng, name, size):
    w[name + ".weight"] = 1.0 + 0.1 * rng.normal(size=size)
    w[name + ".bias"] = 0.1 * rng.normal(size=size)


def encoder_weights(spec: BertSpec, rng, prefix="bert.", pooler=True):
    """Random weights of a `BertModel` under `prefix`, with the transformers `state_dict` names."""
    h, i = spec.hidden_size, spec.intermediate_size
    w = {}
    e = prefix + "embeddings."
    w[e + "word_embeddings.weight"] = rng.normal(size=(spec.vocab_size, h))
    w[e + "position_embeddings.weight"] = rng.normal(size=(spec.max_position_embeddings, h))
    w[e + "token_type_embeddings.weight"] = rng.normal(size=(spec.type_vocab_size, h))
    _layer_norm(w, rng, e + "LayerNorm", h)
    for n in range(spec.num_hidden_layers):
        layer = f"{prefix}encoder.layer.{n}."
        for part in ("query", "key", "value"):
            _dense(w, rng, layer + "attention.self." + part, h, h)
        _dense(w, rng, layer + "attention.output.dense", h, h)
        _layer_norm(w, rng, layer + "attention.output.LayerNorm", h)
        _dense(w, rng, layer + "intermediate.dense", i, h)
        _dense(w, rng, layer + "output.dense", h, i)
        _layer_norm(w, rng, layer + "output.LayerNorm", h)
    if pooler:
        _dense(w, rng, prefix + "pooler.dense", h, h)
    return w


def _lm_head(w, rng, spec):
    h = spec.hidden_size
    _dense(w, rng, "cls.predictions.transform.dense", h, h)
    _layer_norm(w, rng, "cls.predictions.transform.LayerNorm", h)
    w["cls.predictions.bias"] = rng.normal(0.0, 0.1, spec.vocab_size)
    # tied, as in the transformers state_dict
    w["cls.predictions.decoder.weight"] = w["bert.embeddings.word_embeddings.weight"]
    w["cls.predictions.decoder.bias"] = w["cls.predictions.bias"]


def head_weights(head: str, spec: BertSpec, seed=0):
    """Random weights for the transformers class `head` (a key of `reference.heads.HEADS`)."""
    rng = np.random.default_rng(seed)
    h = spec.hidden_size
    if head == "BertModel":
        return encoder_weights(spec, rng, prefix="")
    no_pooler = head in ("BertForMaskedLM", "BertLMHeadModel", "BertForTokenClassification", "BertForQuestionAnswering")
    w = encoder_weights(spec, rng, pooler=not no_pooler)
    if head in ("BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel"):
        _lm_head(w, rng, spec)
    if head in ("BertForPreTraining", "BertForNextSentencePrediction"):
        _dense(w, rng, "cls.seq_relationship", 2, h)
    if head in ("BertForSequenceClassification", "BertForTokenClassification"):
        _dense(w, rng, "classifier", spec.num_labels, h)
    if head == "BertForMultipleChoice":
        _dense(w, rng, "classifier", 1, h)
    if head == "BertForQuestionAnswering":
        _dense(w, rng, "qa_outputs", spec.num_labels, h)
    return w


def numerical_gradient(f, x, h=1e-5):
    """Central finite differences (f(x + h e_i) - f(x - h e_i)) / 2h of the scalar function f at every entry of x."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp = x.copy()
        xp[idx] += h
        xm = x.copy()
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2.0 * h)
    return g


def assert_matches_finite_differences(f, x, analytic, rtol=1e-6, atol=1e-9):
    """The analytic gradient equals the central difference of f at x, entry by entry."""
    analytic = np.asarray(analytic)
    assert analytic.shape == np.shape(x), (analytic.shape, np.shape(x))
    assert np.isfinite(analytic).all()
    np.testing.assert_allclose(analytic, numerical_gradient(f, x), rtol=rtol, atol=atol)


def directional(loss, weights, name, direction, h=1e-6):
    """d/dt loss(weights with `name` + t direction) at t = 0, by central differences (tied aliases move along)."""
    def at(t):
        return loss({k: (v + t * direction if v is weights[name] else v) for k, v in weights.items()})
    return (at(h) - at(-h)) / (2 * h)


def assert_directional(loss, spec, weights, grads, skip=()):
    """Every parameter's gradient in `grads` against central differences of `loss(weights)` along a random
    direction (a tied alias once; the [PAD] row of the word embeddings left still: its gradient is not d loss)."""
    rng = np.random.default_rng(5)
    for name in sorted(weights):
        if name in backward.TIED and weights[name] is weights[backward.TIED[name]] or name in skip:
            continue
        direction = rng.normal(size=np.shape(weights[name]))
        if name.endswith("word_embeddings.weight") and spec.pad_token_id is not None:
            direction[spec.pad_token_id] = 0.0
        np.testing.assert_allclose((grads[name] * direction).sum(), directional(loss, weights, name, direction),
                                   rtol=1e-5, atol=1e-7, err_msg=name)
