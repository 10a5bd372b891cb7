"""Activation functions, keyed by the `hidden_act` strings `BertConfig` accepts.

Each is the textbook formula in float64 numpy; `ACTIVATIONS[name](x)` is what BERT applies for that name.
"""

import math

import numpy as np

from .errors import ReferenceInputError

from scipy.special import erf as _erf  # numpy has no erf


def gelu(x):
    """Exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    """Tanh approximation of GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu_fast(x):
    """GELU tanh approximation with the constant sqrt(2/pi) rounded to 0.7978845608 (as transformers writes it)."""
    return 0.5 * x * (1.0 + np.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x):
    """Sigmoid approximation of GELU: x * sigmoid(1.702 x)."""
    return x * sigmoid(1.702 * x)


def gelu_10(x):
    """Exact GELU clipped to [-10, 10]."""
    return np.clip(gelu(x), -10.0, 10.0)


def sigmoid(x):
    """Logistic function 1 / (1 + exp(-x)), evaluated without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(x):
    """SiLU / swish: x * sigmoid(x)."""
    return x * sigmoid(x)


def relu(x):
    """max(x, 0)."""
    return np.maximum(x, 0.0)


def relu6(x):
    """min(max(x, 0), 6)."""
    return np.clip(x, 0.0, 6.0)


def relu2(x):
    """Squared ReLU: max(x, 0)^2."""
    return np.maximum(x, 0.0) ** 2


def leaky_relu(x):
    """x for x >= 0, 0.01 x otherwise (torch's default negative slope)."""
    return np.where(x >= 0, x, 0.01 * x)


def softplus(x):
    """log(1 + exp(x)), stable for large |x|."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def mish(x):
    """x * tanh(softplus(x))."""
    return x * np.tanh(softplus(x))


def linear(x):
    """Identity."""
    return x


ACTIVATIONS = {
    "gelu": gelu,
    "gelu_python": gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_python_tanh": gelu_tanh,
    "gelu_accurate": gelu_tanh,
    "gelu_fast": gelu_fast,
    "gelu_10": gelu_10,
    "quick_gelu": quick_gelu,
    "relu": relu,
    "relu2": relu2,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "silu": silu,
    "swish": silu,
    "mish": mish,
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "linear": linear,
}


def activation(name: str):
    """The activation function for a `hidden_act` name; unknown names are refused."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ReferenceInputError(f"unknown hidden_act {name!r}; known: {sorted(ACTIVATIONS)}") from None


# --- derivatives, for the backward pass (`reference.backward_encoder`) ------------------------------------------


def _normal_pdf(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def gelu_grad(x):
    """d gelu / dx = Phi(x) + x phi(x)."""
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * _normal_pdf(x)


def _tanh_gelu_grad(x, c):
    t = np.tanh(c * (x + 0.044715 * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x)


def gelu_tanh_grad(x):
    """d gelu_tanh / dx = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2), t = tanh(c (x + 0.044715 x^3)),
    c = sqrt(2/pi)."""
    return _tanh_gelu_grad(x, math.sqrt(2.0 / math.pi))


def gelu_fast_grad(x):
    """The derivative of `gelu_fast`: `gelu_tanh_grad`'s formula with c = 0.7978845608."""
    return _tanh_gelu_grad(x, 0.7978845608)


def quick_gelu_grad(x):
    """d [x sigmoid(1.702 x)] / dx = s + 1.702 x s (1 - s), s = sigmoid(1.702 x)."""
    s = sigmoid(1.702 * x)
    return s + 1.702 * x * s * (1.0 - s)


def gelu_10_grad(x):
    """gelu'(x) where gelu(x) lies in [-10, 10] (the clamp passes the gradient on its bounds, as torch's does), else 0."""
    y = gelu(x)
    return np.where((y >= -10.0) & (y <= 10.0), gelu_grad(x), 0.0)


def sigmoid_grad(x):
    """s (1 - s)."""
    s = sigmoid(x)
    return s * (1.0 - s)


def silu_grad(x):
    """s + x s (1 - s), s = sigmoid(x)."""
    s = sigmoid(x)
    return s + x * s * (1.0 - s)


def relu_grad(x):
    """1 for x > 0, else 0 (0 at x = 0, as torch)."""
    return (x > 0).astype(np.float64)


def relu6_grad(x):
    """1 for 0 < x < 6, else 0 (torch's hardtanh passes no gradient on its bounds)."""
    return ((x > 0) & (x < 6)).astype(np.float64)


def relu2_grad(x):
    """2 max(x, 0)."""
    return 2.0 * np.maximum(x, 0.0)


def leaky_relu_grad(x):
    """1 for x > 0, else 0.01 (torch takes the negative slope at x = 0)."""
    return np.where(x > 0, 1.0, 0.01)


def mish_grad(x):
    """tanh(sp) + x (1 - tanh(sp)^2) sigmoid(x), sp = softplus(x)."""
    t = np.tanh(softplus(x))
    return t + x * (1.0 - t * t) * sigmoid(x)


def tanh_grad(x):
    """1 - tanh(x)^2."""
    return 1.0 - np.tanh(x) ** 2


def linear_grad(x):
    """1."""
    return np.ones_like(x, dtype=np.float64)


DERIVATIVES = {gelu: gelu_grad, gelu_tanh: gelu_tanh_grad, gelu_fast: gelu_fast_grad, gelu_10: gelu_10_grad,
               quick_gelu: quick_gelu_grad, relu: relu_grad, relu2: relu2_grad, relu6: relu6_grad,
               leaky_relu: leaky_relu_grad, silu: silu_grad, mish: mish_grad, sigmoid: sigmoid_grad,
               np.tanh: tanh_grad, linear: linear_grad}
"""The derivative of each activation function of ACTIVATIONS."""


def activation_derivative(name: str):
    """The derivative of the activation `hidden_act` names (d activation(x) / dx, elementwise)."""
    return DERIVATIVES[activation(name)]
