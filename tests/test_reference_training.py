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
