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
