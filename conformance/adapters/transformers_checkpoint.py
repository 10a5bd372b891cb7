"""The transformers adapter's real-checkpoint methods: the checkpoint's tokenizers, its weights written as the release
reads them and loaded with each head's `from_pretrained`, and the outputs the checkpoint checks compare (a mixin of
`TransformersAdapter`, which provides `self.transformers`, `self.version` and `self.has`). Releases differ in the
tokenizer classes (5.0 made `BertTokenizer` the tokenizers-backed class and kept the pure-Python one as
`BertTokenizerLegacy`), in the weight file `from_pretrained` reads (drift: from-pretrained-reads-safetensors) and in
what its loading report lists (4.x lists a tied decoder's alias as missing, ignores a checkpoint's pooler in heads
without one)."""

import collections
import functools
import gc
import hashlib
import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ..case import logit_keys
from .torch_models import TORCH_DTYPES, BuiltModel, forward, to_numpy


def write_weights(directory, tensors, safetensors):
    """Write `tensors` (numpy by state-dict name) into `directory` as `model.safetensors` (with `safetensors`;
    metadata format "pt", which from_pretrained asks for) or `pytorch_model.bin`; returns the file's path."""
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in tensors.items()}
    if safetensors:
        path = Path(directory) / "model.safetensors"
        save_file(state, str(path), metadata={"format": "pt"})
    else:
        path = Path(directory) / "pytorch_model.bin"
        torch.save(state, path)
    return path


class CheckpointMethods:
    """Tokenize, build, load and run the real checkpoint through the installed transformers."""

    CHECKPOINT_MODELS_KEPT = 2  # 22M parameters per (head, config, attention, device), float64 and float32: ~270 MB

    @functools.cached_property
    def _checkpoint_models(self):
        return collections.OrderedDict()

    def checkpoint_tokenizer(self, directory, fast=False):
        """The checkpoint's tokenizer in `directory`: the pure-Python one (vocab.txt and tokenizer_config.json) or,
        with `fast`, the tokenizers-backed one (tokenizer.json), None where the `tokenizers` package is missing.
        One object per directory and kind, however they are spelled."""
        return self._tokenizer(str(directory), bool(fast))

    @functools.lru_cache(maxsize=2)
    def _tokenizer(self, directory, fast):
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
        """Token ids, token types and attention mask of `texts` (strings or [first, second] pairs, mixed in one
        batch) as the tokenizer in `directory` makes them itself: one call on the whole batch with
        `truncation=True, max_length=max_length` (longest first for pairs) and `padding` ("longest" or
        "max_length"); int64 numpy [rows, width]. Raises if the rows it returns differ in length."""
        tokenizer = self.checkpoint_tokenizer(directory, fast)
        batch = [tuple(t) if isinstance(t, list) else t for t in texts]  # a tuple is a pair in every release
        encoded = tokenizer(batch, padding=padding, truncation=True, max_length=max_length,
                            return_token_type_ids=True, return_attention_mask=True)
        out = {}
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            rows = [list(row) for row in encoded[key]]
            if len({len(row) for row in rows}) != 1:
                raise ValueError(f"{type(tokenizer).__name__} padded {key} to different lengths "
                                 f"{[len(row) for row in rows]} (padding={padding!r})")
            out[key] = np.asarray(rows, dtype=np.int64)
        return out

    # --- the checkpoint written as this release reads it, and loaded with from_pretrained ----------------------

    @functools.cached_property
    def _checkpoint_directories(self):
        return {}

    checkpoint_root = None  # where written checkpoints are kept; None: bert-conformance-checkpoints in the temp dir

    def save_checkpoint(self, tensors, config):
        """A pretrained directory holding `tensors` (float32 numpy by the names BertModel's state dict gives them)
        and `config.json` (`config`: BertConfig fields, plus model_type "bert"), in the format this release's
        `from_pretrained` reads: `model.safetensors` (metadata format "pt") where it reads safetensors
        (`has("from-pretrained-reads-safetensors")`), else `pytorch_model.bin` (`torch.save` of the state dict).

        Kept under `checkpoint_root` by a digest of the format, the config and every tensor's name, dtype, shape
        and bytes, so that the processes of a run (and later runs) write it once: written into a fresh folder, then
        renamed into place (a reader never sees half a checkpoint). Within a process, looked up by the `tensors`
        object and the config. Returns its path."""
        key = (id(tensors), json.dumps(config, sort_keys=True))
        kept = self._checkpoint_directories
        if key in kept and kept[key][0] is tensors:
            return kept[key][1]
        safetensors = self.has("from-pretrained-reads-safetensors")
        digest = hashlib.sha256(json.dumps([key[1], safetensors]).encode())
        for name in sorted(tensors):
            value = np.ascontiguousarray(tensors[name])
            digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
            digest.update(value.tobytes())
        root = Path(self.checkpoint_root or Path(tempfile.gettempdir()) / "bert-conformance-checkpoints")
        directory = root / digest.hexdigest()[:24]
        if not (directory / "config.json").is_file():
            root.mkdir(parents=True, exist_ok=True)
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=root))
            try:
                write_weights(partial, tensors, safetensors)
                (partial / "config.json").write_text(json.dumps(dict(config, model_type="bert"), indent=1))
                partial.rename(directory)
            except OSError:
                if not (directory / "config.json").is_file():  # not another process's rename that came first
                    raise
            finally:
                shutil.rmtree(partial, ignore_errors=True)
        kept[key] = (tensors, directory)
        return directory

    def checkpoint_model(self, directory, head, overrides=None, attn="eager", device="cpu", dtype="float64"):
        """transformers' `head` loaded by `head.from_pretrained(directory, **overrides)` (the BertConfig fields a
        head adds: num_labels, is_decoder), with `attn_implementation=attn` where the release takes it (it can run
        BERT under sdpa), in eval mode, on `device`, computing in `dtype`. The head's own parameters are whatever
        from_pretrained left in them until `set_parameters`; what it reported is `loading_report(model)`.

        Loaded once per (directory, head, overrides, attention, device) and kept (the newest
        CHECKPOINT_MODELS_KEPT): loading is slow next to a forward at this size, and the targets of a check take
        turns on every case. A switch of dtype sets each parameter back to its tensor in that dtype
        (`BuiltModel.to`), converted once from the loaded float32 values (exact in float64)."""
        models = self._checkpoint_models
        overrides = dict(overrides or {})
        key = (str(directory), head, json.dumps(overrides, sort_keys=True), attn, device)
        if key in models:
            models.move_to_end(key)
            built = models[key]
        else:
            # a check uses one head: the models of other heads go first (memory), then the least recently used
            for stale in [k for k in models if k[:3] != key[:3]]:
                del models[stale]
            while len(models) >= self.CHECKPOINT_MODELS_KEPT:
                models.popitem(last=False)
            gc.collect()  # modules hold reference cycles: free the evicted parameters before allocating new ones
            built = self._from_pretrained(directory, head, overrides, attn, device)
            twin = next((b for k, b in models.items() if k[:3] == key[:3] and k[4] == device), None)
            if twin is not None:
                share_parameters(twin, built)
            models[key] = built
        built.to(dtype)
        built.data[dtype] = ([p.data for p in built.params], built.loaded)  # a twin switching to dtype finds them
        return built.model

    def _from_pretrained(self, directory, head, overrides, attn, device):
        kwargs = dict(overrides)
        if self.has("bert-sdpa-attention"):
            kwargs["attn_implementation"] = attn
        elif attn != "eager":
            raise RuntimeError(f"transformers {self.version} has no attention implementation {attn!r} for BERT")
        disable = getattr(self.transformers.utils.logging, "disable_progress_bar", None)
        if disable is not None:  # 5.x draws a progress bar of the tensors loaded
            disable()
        model, info = getattr(self.transformers, head).from_pretrained(str(directory), output_loading_info=True,
                                                                         **kwargs)
        actual = getattr(model.config, "_attn_implementation", "eager")
        if actual != attn:
            raise RuntimeError(f"asked for attention {attn!r}, transformers {self.version} chose {actual!r}")
        built = BuiltModel(model.to(device).eval())
        built.loading_info = {k: sorted(str(x) for x in v) for k, v in info.items()}
        return built

    def forget_checkpoint_models(self):
        """Drop every kept checkpoint model and the process's lookup of written directories: for whoever changed a
        model's parameters other than through `set_parameters`, or what is written (a test that plants a fault, with
        its own `checkpoint_root`)."""
        self._checkpoint_models.clear()
        self._checkpoint_directories.clear()
        gc.collect()

    def _built(self, model):
        built = next((b for b in self._checkpoint_models.values() if b.model is model), None)
        if built is None:
            raise KeyError(f"{type(model).__name__} is not a checkpoint model of this adapter")
        return built

    def loading_report(self, model):
        """What `from_pretrained` reported when it loaded `model` (`output_loading_info`: missing_keys,
        unexpected_keys, error_msgs and, where the release has it, mismatched_keys; sorted names), with `tied`:
        each state-dict name that is another parameter's alias (tied weights) -> that parameter's name, and
        `buffers`: the model's buffer names."""
        built = self._built(model)
        report = dict(built.loading_info)
        report["tied"] = {name: first for name, first in built.aliases.items() if name != first}
        report["buffers"] = sorted(name for name, _ in model.named_buffers())
        return report

    def set_parameters(self, model, params):
        """Copy `params` (float32 numpy by parameter name: a head's own parameters) into `model`, in its dtype."""
        named = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in params.items():
                named[name].copy_(torch.from_numpy(np.asarray(value, dtype=np.float32)))

    @staticmethod
    def parameter_prefix(model):
        """"bert." inside the task heads, "" for BertModel: what the model's own parameter names say."""
        return "bert." if any(n.startswith("bert.") for n, _ in model.named_parameters()) else ""

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
    sets both."""
    if [tuple(p.shape) for p in twin.params] != [tuple(p.shape) for p in built.params] or not twin.swap:
        return
    for p, q in zip(built.params, twin.params):
        p.data = q.data
    built.data = twin.data  # the same object: dtype -> (tensors, loaded)
    built.dtype, built.loaded = twin.dtype, twin.loaded
