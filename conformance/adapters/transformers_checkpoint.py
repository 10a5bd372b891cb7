"""The transformers adapter's real-checkpoint methods: the checkpoint's tokenizers, models built from its config,
its weights loaded with `load_state_dict`, and the outputs the checkpoint checks compare (a mixin of
`TransformersAdapter`, which provides `self.transformers`, `self.version` and `self._construct`). Releases differ
in the tokenizer classes (5.0 made `BertTokenizer` the tokenizers-backed class and kept the pure-Python one as
`BertTokenizerLegacy`) and in which buffers `BertModel` keeps in its state dict."""

import collections
import functools
import gc
import importlib.util
import json

import numpy as np
import torch

from ..case import logit_keys
from .torch_models import TORCH_DTYPES, BuiltModel, forward, to_numpy


class CheckpointMethods:
    """Tokenize, build, load and run the real checkpoint through the installed transformers."""

    CHECKPOINT_MODELS_KEPT = 2  # 22M parameters per (head, config, attention, device), float64 and float32: ~270 MB

    @functools.cached_property
    def _checkpoint_models(self):
        return collections.OrderedDict()

    @functools.lru_cache(maxsize=2)
    def checkpoint_tokenizer(self, directory, fast=False):
        """The checkpoint's tokenizer in `directory`: the pure-Python one (vocab.txt and tokenizer_config.json) or,
        with `fast`, the tokenizers-backed one (tokenizer.json), None where the `tokenizers` package is missing."""
        return self._fast_tokenizer(directory) if fast else self._slow_tokenizer(directory)

    def _slow_tokenizer(self, directory):
        """`BertTokenizer` before 5.0, `BertTokenizerLegacy` from 5.0, when `BertTokenizer` became the
        tokenizers-backed class."""
        candidates = [getattr(self.transformers, "BertTokenizerLegacy", None), self.transformers.BertTokenizer]
        for cls in candidates:
            if cls is None:
                continue
            tokenizer = cls.from_pretrained(str(directory))
            if not tokenizer.is_fast:
                return tokenizer
        raise RuntimeError(f"transformers {self.version} has no pure-Python BertTokenizer")

    def _fast_tokenizer(self, directory):
        """`BertTokenizerFast`; `BertTokenizer` from 5.0."""
        if importlib.util.find_spec("tokenizers") is None:
            return None
        cls = getattr(self.transformers, "BertTokenizerFast", None) or self.transformers.BertTokenizer
        tokenizer = cls.from_pretrained(str(directory))
        return tokenizer if tokenizer.is_fast else None

    def encode(self, directory, texts, max_length, padding="longest", fast=False):
        """Token ids, token types and attention mask of `texts` (strings or [first, second] pairs) by the tokenizer
        in `directory`, as int64 numpy: truncated to `max_length` (longest first for pairs), padded to the longest
        row or to `max_length`."""
        tokenizer = self.checkpoint_tokenizer(directory, fast)
        firsts = [t[0] if isinstance(t, list) else t for t in texts]
        seconds = [t[1] if isinstance(t, list) else None for t in texts]
        encoded = [tokenizer(a, b, truncation=True, max_length=max_length, return_token_type_ids=True,
                             return_attention_mask=True)
                   for a, b in zip(firsts, seconds)]  # one by one: mixed single rows and pairs
        width = max_length if padding == "max_length" else max(len(e["input_ids"]) for e in encoded)
        pad = tokenizer.pad_token_id
        out = {k: np.full((len(texts), width), pad if k == "input_ids" else 0, dtype=np.int64)
               for k in ("input_ids", "token_type_ids", "attention_mask")}
        for i, e in enumerate(encoded):
            for k in out:
                out[k][i, :len(e[k])] = e[k]
        return out

    def checkpoint_model(self, head, config, attn="eager", device="cpu", dtype="float64"):
        """transformers' `head` with the BertConfig fields `config` (the checkpoint's, plus a head's), in eval mode,
        computing in `dtype`, its weights not yet loaded (`load_checkpoint`).

        Built once per (head, config, attention, device) and kept (the newest CHECKPOINT_MODELS_KEPT): building
        is slow next to a forward at this size, and the targets of a check take turns on every case. A switch of
        dtype sets each parameter back to its tensor in that dtype (`BuiltModel.to`), which still holds the weights
        loaded in it (forward and autograd do not write parameters), so `load_checkpoint` then copies only the
        head's own drawn parameters."""
        models = self._checkpoint_models
        key = (head, json.dumps(config, sort_keys=True), attn, device)
        if key in models:
            models.move_to_end(key)
            built = models[key]
        else:
            # a check uses one head: the models of other heads go first (memory), then the least recently used
            for stale in [k for k in models if k[:2] != key[:2]]:
                del models[stale]
            while len(models) >= self.CHECKPOINT_MODELS_KEPT:
                models.popitem(last=False)
            gc.collect()  # modules hold reference cycles: free the evicted parameters before allocating new ones
            model = self._construct(head, self.transformers.BertConfig(**config, attn_implementation=attn))
            actual = getattr(model.config, "_attn_implementation", "eager")
            if actual != attn:
                raise RuntimeError(f"asked for attention {attn!r}, transformers {self.version} chose {actual!r}")
            built = BuiltModel(model.to(device).eval())
            built.checkpoint_in = set()  # the dtypes whose tensors hold the checkpoint, verified on loading
            twin = next((b for k, b in models.items() if k[:2] == key[:2] and k[3] == device), None)
            if twin is not None:
                share_parameters(twin, built)
            models[key] = built
        built.to(dtype)
        built.data[dtype] = ([p.data for p in built.params], built.loaded)  # a twin switching to dtype finds them
        return built.model

    def forget_checkpoint_models(self):
        """Drop every kept checkpoint model: for whoever changed one's parameters other than through
        `load_checkpoint` (a test that plants a fault), since a kept model's encoder is not loaded again."""
        self._checkpoint_models.clear()
        gc.collect()

    @staticmethod
    def parameter_prefix(model):
        """"bert." inside the task heads, "" for BertModel: what the model's own parameter names say."""
        return "bert." if any(n.startswith("bert.") for n, _ in model.named_parameters()) else ""

    def load_checkpoint(self, model, encoder, head_params):
        """Load `encoder` (the checkpoint's float32 encoder parameters as BertModel names them; the model's prefix
        added) and `head_params` (the head's own parameters, float32 numpy) with `load_state_dict(strict=False)`: releases differ in the buffers their
        state dict holds (`position_ids`, `token_type_ids`). Raise unless every parameter was loaded: each name of
        `named_parameters()` (tied parameters appear once) is in the loaded state dict; every key left missing is a
        buffer or a tied alias of a loaded parameter (the MLM decoder); nothing unexpected. Checkpoint tensors the
        model has no place for must be the pooler's, in heads without one."""
        prefix = self.parameter_prefix(model)
        built = next((b for b in self._checkpoint_models.values() if b.model is model), None)
        if built is not None and built.dtype in built.checkpoint_in:  # verified when loaded in this dtype
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, value in head_params.items():
                    params[name].copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))
            return prefix
        own = model.state_dict(keep_vars=True)
        state = {prefix + k: torch.from_numpy(v) for k, v in encoder.items() if prefix + k in own}
        unused = [k for k in encoder if prefix + k not in own]
        if any(not name.startswith("pooler.") for name in unused):
            raise AssertionError(f"checkpoint tensors without a place in {type(model).__name__}: {sorted(unused)}")
        state.update({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in head_params.items()})
        missing, unexpected = model.load_state_dict(state, strict=False)
        params = dict(model.named_parameters())
        not_loaded = sorted(set(params) - set(state))
        buffers = {n for n, _ in model.named_buffers()}
        loaded = [params[n] for n in params if n in state]
        strays = [k for k in missing if k not in buffers and not any(own[k] is p for p in loaded)]
        if not_loaded or strays or unexpected:
            raise AssertionError(f"{type(model).__name__} (transformers {self.version}): parameters not loaded "
                                 f"{not_loaded}; missing keys that are neither buffers nor tied {strays}; "
                                 f"unexpected keys {list(unexpected)}")
        if built is not None:
            built.checkpoint_in.add(built.dtype)
        return prefix

    def own_parameter_shapes(self, model, encoder):
        """The shapes of `model`'s parameters that `encoder` (names as BertModel names them) does not provide."""
        provided = {self.parameter_prefix(model) + k for k in encoder}
        return {n: tuple(p.shape) for n, p in model.named_parameters() if n not in provided}

    def run_model(self, model, head, inputs, labels, device, dtype, grad=True):
        """Run `model` on `inputs` (and `labels`); return numpy float64 outputs as `run` does: the head's outputs,
        `last_hidden_state`, with labels `loss` and `loss_grad` (autograd)."""
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in inputs.items()}
        kwargs.update({k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in labels.items()})
        if hasattr(model.config, "problem_type"):  # forward() writes the inferred problem type into the config
            model.config.problem_type = None
        return to_numpy(forward(model, head, logit_keys(head), kwargs, grad and bool(labels)))

    def parameter_names(self, model):
        """The names of `model`'s parameters (tied ones once)."""
        return [name for name, _ in model.named_parameters()]

    def parameter(self, model, name):
        """Parameter `name` of `model` as float64 numpy (one at a time: the model may be large)."""
        return dict(model.named_parameters())[name].detach().to("cpu", torch.float64).numpy()

    def buffers(self, model):
        """`model`'s buffers as numpy, by name."""
        return {name: b.cpu().numpy() for name, b in model.named_buffers()}

    def decoder_tied(self, model):
        """Whether `model`'s output embedding (the MLM decoder) is its input word-embedding matrix itself."""
        return model.get_output_embeddings().weight is model.get_input_embeddings().weight

    def mean_pooled(self, model, inputs, device, dtype, normalize):
        """The sentence-transformers embedding as it computes it, in `dtype`: the last hidden state mean-pooled over
        the attention-masked positions, L2-normalised with `normalize`; and the embeddings' cosine similarities.
        Returns {"embedding", "cosine"} as float64 numpy."""
        kwargs = {k: torch.from_numpy(v).to(device) for k, v in inputs.items()}
        with torch.no_grad():
            hidden = model(**kwargs, return_dict=True).last_hidden_state
            mask = kwargs["attention_mask"].unsqueeze(-1).to(TORCH_DTYPES[dtype])
            emb = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
            if normalize:
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
            return to_numpy({"embedding": emb, "cosine": emb @ emb.T})


def share_parameters(twin, built):
    """Make `built` (the same head and config as `twin`, another attention implementation) compute with `twin`'s
    parameter tensors, in every dtype: one copy of the 22M parameters serves both (the targets of a check take turns
    on each case, and both hold the same weights: the checkpoint and the case's head parameters). Loading into one
    loads into both."""
    if [tuple(p.shape) for p in twin.params] != [tuple(p.shape) for p in built.params] or not twin.swap:
        return
    for p, q in zip(built.params, twin.params):
        p.data = q.data
    built.data, built.checkpoint_in = twin.data, twin.checkpoint_in  # the same objects: dtype -> tensors, loaded
    built.dtype, built.loaded = twin.dtype, twin.loaded
