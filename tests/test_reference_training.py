"""reference/training.py against independent formulations: the clipping factor by hand, AdamW steps against
reference.optim.adamw's loop, the warmup learning rates by hand, and a loop over a linear loss (constant gradients)
against AdamW on those gradients."""

import numpy as np
import pytest

from reference import optim, training

pytestmark = pytest.mark.reference


def test_clip_grad_norm_below_and_above():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    same, norm = training.clip_grad_norm(grads, 10.0)
    assert norm == 5.0
    for a, b in zip(same, grads):
        np.testing.assert_array_equal(a, b)
    clipped, norm = training.clip_grad_norm(grads, 1.0)
    factor = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(clipped[0], [3.0 * factor, 0.0], rtol=1e-15)
    np.testing.assert_allclose(clipped[1], [[4.0 * factor]], rtol=1e-15)
    assert np.sqrt(sum(float(np.sum(g * g)) for g in clipped)) < 1.0


def test_adamw_step_matches_the_adamw_loop():
    rng = np.random.default_rng(0)
    p0, grads = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(3)]
    kw = dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    expected = optim.adamw([p0], [[g] for g in grads], variant="torch", **kw)
    p, m, v = p0.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate(grads, start=1):
        p, m, v = training.adamw_step(p, g, m, v, t, **kw)
        np.testing.assert_allclose(p, expected[t - 1]["params"][0], rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(m, expected[t - 1]["exp_avg"][0], rtol=1e-14)
        np.testing.assert_allclose(v, expected[t - 1]["exp_avg_sq"][0], rtol=1e-14)


def test_loop_on_a_linear_loss_is_adamw_on_its_constant_gradient():
    c = {"w": np.array([0.5, -2.0]), "b": np.array([1.0])}

    def gradients(weights, batch):
        assert weights["tied"] is weights["w"]  # an alias reads the parameter itself
        return float(sum(np.sum(c[n] * weights[n]) for n in c)), {n: c[n] * batch for n in c}

    params = {"w": np.array([1.0, 2.0]), "b": np.array([0.3])}
    kw = dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.2)
    history = training.train(params, {"tied": "w"}, [1.0] * 3, gradients, decayed={"w"}, schedule="constant", **kw)
    decayed = optim.adamw([params["w"]], [[c["w"]]] * 3, variant="torch", **kw)
    plain = optim.adamw([params["b"]], [[c["b"]]] * 3, variant="torch", **dict(kw, weight_decay=0.0))
    for t in range(3):
        np.testing.assert_allclose(history[t]["params"]["w"], decayed[t]["params"][0], rtol=1e-14)
        np.testing.assert_allclose(history[t]["params"]["b"], plain[t]["params"][0], rtol=1e-14)
        assert history[t]["lr"] == 0.1 and history[t]["norm"] is None


def test_warmup_then_linear_decay_and_clipping():
    def gradients(weights, batch):
        return 0.0, {"w": np.array([30.0, 40.0])}

    history = training.train({"w": np.zeros(2)}, {}, [None] * 4, gradients, decayed=set(), lr=0.2, max_norm=1.0,
                             num_warmup_steps=2, num_training_steps=4)
    assert [h["lr"] for h in history] == [0.0, 0.1, 0.2, 0.1]
    assert [h["norm"] for h in history] == [50.0] * 4
    np.testing.assert_allclose(history[0]["grads"]["w"], np.array([30.0, 40.0]) / (50.0 + 1e-6), rtol=1e-15)
    np.testing.assert_array_equal(history[0]["params"]["w"], np.zeros(2))  # learning rate 0 at step 0


def _micro_item_losses(rng, sizes):
    """Per-item cross-entropy losses of micro-batches of token rows, the ignored (-100) labels left out, by a loop."""
    out = []
    for rows in sizes:
        logits = rng.standard_normal((rows, 4, 3))
        labels = rng.integers(-1, 3, size=(rows, 4))
        items = []
        for r in range(rows):
            for t in range(4):
                if labels[r, t] >= 0:
                    z = logits[r, t]
                    items.append(np.log(np.sum(np.exp(z))) - z[labels[r, t]])
        out.append(np.array(items))
    return out


def test_accumulated_loss_num_items_is_every_items_loss_over_the_total_count():
    rng = np.random.default_rng(3)
    micro = _micro_item_losses(rng, (1, 3, 2))
    every = [x for m in micro for x in m]
    assert training.accumulated_loss(micro, "num_items") == pytest.approx(sum(every) / len(every), rel=1e-14)
    assert training.accumulated_loss(micro, "num_items", num_items_in_batch=len(every) + 2) == pytest.approx(
        sum(every) / (len(every) + 2), rel=1e-14)
    # the batch's own mean, however it is split: the same loss as one micro-batch of everything
    assert training.accumulated_loss([np.array(every)], "num_items") == pytest.approx(
        training.accumulated_loss(micro, "num_items"), rel=1e-14)


def test_accumulated_loss_mean_and_sum_of_the_micro_batch_means():
    rng = np.random.default_rng(4)
    micro = [np.array([1.0]), np.array([2.0, 2.0, 2.0])]
    assert training.accumulated_loss(micro, "mean") == 1.5  # (1 + 2) / 2, against (1 + 6) / 4 by num_items
    assert training.accumulated_loss(micro, "num_items") == 1.75
    assert training.accumulated_loss(micro, "sum") == 3.0
    micro = _micro_item_losses(rng, (2, 2, 3))
    means = [sum(m) / len(m) for m in micro]
    assert training.accumulated_loss(micro, "mean") == pytest.approx(sum(means) / 3, rel=1e-14)
    assert training.accumulated_loss(micro, "sum") == pytest.approx(sum(means), rel=1e-14)
    with pytest.raises(training.ReferenceInputError):
        training.accumulation_weights([1, 2], "median")


def test_accumulation_weights_give_the_gradient_of_the_accumulated_loss():
    """Items with loss a_j . w: the weighted micro-batch mean gradients equal the accumulated loss's gradient by
    central differences."""
    rng = np.random.default_rng(5)
    counts = (1, 4, 2)
    a = [rng.standard_normal((n, 3)) for n in counts]
    w = rng.standard_normal(3)
    for rule in training.ACCUMULATION_RULES:
        weights = training.accumulation_weights(counts, rule)
        grad = sum(wi * ai.mean(axis=0) for wi, ai in zip(weights, a))
        h, numeric = 1e-6, np.zeros(3)
        for k in range(3):
            e = np.eye(3)[k] * h
            numeric[k] = (training.accumulated_loss([ai @ (w + e) for ai in a], rule)
                          - training.accumulated_loss([ai @ (w - e) for ai in a], rule)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-8, atol=1e-9)


def test_num_items_weights_a_micro_batch_without_items_zero():
    assert list(training.accumulation_weights([0, 2, 2], "num_items")) == [0.0, 0.5, 0.5]
    assert list(training.accumulation_weights([0, 0], "num_items")) == [0.0, 0.0]
    assert list(training.accumulation_weights([1, 3], "num_items", num_items_in_batch=5)) == [0.2, 0.6]
