"""The elementary steps of the numpy backward pass: each forward step returns its output and a function that takes
d(loss)/d(output), adds its parameters' gradients into a dict `grads` (name -> array, accumulated with +=) and
returns d(loss)/d(input)."""

import numpy as np

from .activations import ACTIVATIONS, DERIVATIVES, activation
from .encoder import layer_norm, linear

_DERIVATIVES_BY_NAME = {name: DERIVATIVES[function] for name, function in ACTIVATIONS.items()}


def derivative(name):
    """The derivative of the activation `hidden_act` names (`activations.activation_derivative`), looked up by name:
    a table keyed by the activation functions themselves fails where a caller wraps them (the bench's timing)."""
    activation(name)  # refuses an unknown name
    return _DERIVATIVES_BY_NAME[name]


def accumulate(grads, name, g):
    """grads[name] += g (the first contribution is stored as a copy)."""
    if name in grads:
        grads[name] = grads[name] + g
    else:
        grads[name] = np.array(g, dtype=np.float64)


def linear_step(x, weights, grads, name):
    """y = x W^T + b for the dense layer `name` (weights `name.weight`, `name.bias`); its backward gives
    dW = sum over rows of dy^T x, db = sum over rows of dy, dx = dy W."""
    w, b = weights[name + ".weight"], weights[name + ".bias"]
    y = linear(x, w, b)

    def back(dy):
        rows_dy, rows_x = dy.reshape(-1, dy.shape[-1]), x.reshape(-1, x.shape[-1])
        accumulate(grads, name + ".weight", rows_dy.T @ rows_x)
        accumulate(grads, name + ".bias", rows_dy.sum(axis=0))
        return dy @ w

    return y, back


def layer_norm_step(x, weights, grads, name, eps):
    """LayerNorm `name` over the last axis; with xhat = (x - mean) * r, r = 1 / sqrt(var + eps), N the width:
    dweight = sum dy xhat, dbias = sum dy, dx = r (g - mean(g) - xhat mean(g xhat)) with g = dy * weight."""
    w = weights[name + ".weight"]
    y = layer_norm(x, w, weights[name + ".bias"], eps)
    mean = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * r

    def back(dy):
        accumulate(grads, name + ".weight", (dy * xhat).reshape(-1, dy.shape[-1]).sum(axis=0))
        accumulate(grads, name + ".bias", dy.reshape(-1, dy.shape[-1]).sum(axis=0))
        g = dy * w
        return r * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

    return y, back


def softmax_backward(probs, dprobs):
    """d scores of p = softmax(scores): p (dp - sum(dp p)); entries with probability 0 (masked) get 0."""
    return probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))
