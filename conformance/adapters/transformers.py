"""The adapter to the implementation under test: HuggingFace transformers, the one bridge to it.

Every difference between transformers releases is bridged here (and in the two mixins beside it, for the training
utilities and the real checkpoint) and nowhere else; which rule a release follows is `has(change_id)`, answered from
the drift catalog. An adapter for another implementation offers the same methods and is passed to the suite with
`--adapter module:Class`.
"""

import collections
import copy
import functools
import importlib
import json
import platform
import time
import warnings

import numpy as np
import torch
import transformers
from packaging.version import Version

from ..case import Case, draw_weights, logit_keys
from ..drift import CHANGES_BY_ID
from .torch_models import (TINY, BuiltModel, autocast, available_devices, forward, read_only, recall, structure,
                           to_numpy)
from .transformers_checkpoint import CheckpointMethods
from .transformers_decoding import DecodingMethods
from .transformers_gradients import GradientMethods
from .transformers_options import OptionMethods
from .transformers_surface import SurfaceMethods
from .transformers_training import TrainingMethods


def fresh(config, built):
    """Put `config` back as it was built (`built`: its attributes then): forward() writes into the config (the
    problem type it infers from the first labels it sees), and a cached model is reused across cases, each of
    which a user would run on a model of its own."""
    attributes = vars(config)
    for key in set(attributes) - set(built):
        del attributes[key]
    for key, value in built.items():
        if key not in attributes or attributes[key] != value:
            attributes[key] = copy.deepcopy(value)


class TransformersAdapter(TrainingMethods, CheckpointMethods, SurfaceMethods, DecodingMethods, GradientMethods,
                         OptionMethods):
    """Builds, loads and runs transformers' BERT classes; returns numpy float64 outputs."""

    name = "transformers"
    bare_seconds = 0.0  # time inside transformers' forward and autograd calls (see `run`)

    def __init__(self):
        self.transformers = transformers
        self.version = Version(transformers.__version__)
        transformers.logging.set_verbosity_error()
        warnings.filterwarnings("ignore", module="transformers")
        # The models are tiny: one intra-op thread is fastest, and with xdist several threads per worker
        # oversubscribe the cores.
        torch.set_num_threads(1)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def __repr__(self):
        return f"transformers {self.version}"

    # --- what this version offers --------------------------------------------------------------------------

    def attention_implementations(self):
        """Eager attention always; the library's sdpa path where this version has one for BERT."""
        cls = self.transformers.BertModel
        return ["eager", "sdpa"] if getattr(cls, "_supports_sdpa", False) else ["eager"]

    def activations(self):
        """The `hidden_act` names this version's ACT2FN knows."""
        ACT2FN = importlib.import_module("transformers.activations").ACT2FN
        return sorted(getattr(ACT2FN, "keys", lambda: ACT2FN)())

    def has(self, change_id):
        """Whether this version follows the new rule of the drift catalog's change `change_id` (it is at least the
        first release with it). An adapter for another implementation answers for its own rules."""
        return self.version >= Version(CHANGES_BY_ID[change_id].since)

    def devices(self):
        """The devices torch sees: cpu always, cuda and mps when present."""
        return available_devices()

    def environment(self):
        """What a run record says of this implementation besides its version: torch's version and the devices."""
        devices = {"cpu": platform.processor() or platform.machine()}
        if torch.cuda.is_available():
            devices["cuda"] = torch.cuda.get_device_name(0)
        return {"torch": torch.__version__, "devices": devices}

    # --- building and running ------------------------------------------------------------------------------

    MODELS_KEPT = 256  # built models kept per adapter (a tiny BERT is ~0.1-0.3 MB with its modules)

    def _entry(self, head, config_json, attn, device):
        """The cached model of `head` built from `config_json` with attention `attn` on `device` (its dtype is
        whatever the last caller asked for), as a `BuiltModel`; least recently used ones are dropped beyond
        MODELS_KEPT. Building costs far more than loading the weights, so a model is built once per config and reused for every example, target dtype and check that draws the
        same config."""
        key = (head, config_json, attn, device)
        models = self.__dict__.setdefault("_models", collections.OrderedDict())
        if key in models:
            models.move_to_end(key)
            return models[key]
        bert_config = self.transformers.BertConfig(**json.loads(config_json), attn_implementation=attn)
        model = self._construct(head, bert_config)
        actual = getattr(model.config, "_attn_implementation", "eager")
        if actual != attn:
            raise RuntimeError(f"asked for attention {attn!r}, transformers {self.version} chose {actual!r}")
        while len(models) >= self.MODELS_KEPT:
            models.popitem(last=False)
        models[key] = built = BuiltModel((model if device == "cpu" else model.to(device)).eval())
        built.fresh_config = copy.deepcopy(vars(model.config))  # the config as built, before any forward
        return built

    def _construct(self, head, bert_config):
        """`head(bert_config)`, without the random initialization where this version can skip it (its own
        `no_init_weights`; a third of a tiny model's construction): every parameter is overwritten by drawn weights
        before use. `no_init_weights` also skips the weight tying of 4.x, so the model ties its weights after; the
        first model of each head is checked, in a tiny copy of its config, against one built the ordinary way
        (the same parameters tied, the same buffers), and a version where they differ builds the ordinary way from
        then on."""
        cls = getattr(self.transformers, head)
        checked = self.__dict__.setdefault("_no_init_checked", set())
        if self._no_init_weights is not None and head not in checked:
            checked.add(head)
            tiny = copy.deepcopy(bert_config)
            for key, value in TINY.items():
                setattr(tiny, key, value)
            if structure(self._construct_without_init(cls, tiny)) != structure(cls(tiny)):
                self._no_init_weights = None
        if self._no_init_weights is None:
            return cls(bert_config)
        return self._construct_without_init(cls, bert_config)

    def _construct_without_init(self, cls, bert_config):
        with self._no_init_weights():
            model = cls(bert_config)
        model.tie_weights()
        return model

    @functools.cached_property
    def _no_init_weights(self):
        """transformers' context manager that skips weight initialization (5.x: `transformers.initialization`;
        4.x: `modeling_utils`; 4.4 has none), or None."""
        for module in ("transformers.initialization", "transformers.modeling_utils"):
            try:
                found = getattr(importlib.import_module(module), "no_init_weights", None)
            except ImportError:
                found = None
            if found is not None:
                return found
        return None

    def _model(self, head, config_json, attn, device, dtype):
        """(model, {parameter name: shape}) for `head` built from `config_json`, in `dtype` on `device`."""
        built = self._entry(head, config_json, attn, device)
        built.to(dtype)
        return built.model, built.shapes

    def build(self, case: Case, attn="eager", device="cpu", dtype="float64"):
        """The model for `case`, with the case's drawn weights loaded; returns (model, weights as float64 numpy).

        Models are cached per (head, config, attention, device) and converted to `dtype` in place when asked for
        another (every parameter is then overwritten: nothing of the previous dtype survives); only the weights are
        loaded anew. The weights returned are those the model holds, named as in its state dict: the drawn arrays
        themselves in float64 (copying float64 into float64 is exact), read back from the model in other dtypes (so
        they carry its rounding). Tied parameters appear once in `named_parameters`, so one array is drawn for them,
        and it is returned under each of their names: the MLM decoder equals the word embeddings only because
        transformers tied them (an untied decoder gets its own drawn array, which the reference never reads).
        Buffers (position_ids, token_type_ids) are not weights and are not returned. The returned arrays are
        read-only, and the same objects for every attention implementation of a case (see `recall`).
        """
        config_json = json.dumps(case.config, sort_keys=True)
        built = self._entry(case.head, config_json, attn, device)
        built.to(dtype)
        # every target of a check runs the same cases: the drawn arrays, and the weights handed back, are kept for
        # the recent cases (the same for every attention implementation: same parameters, same rounding)
        drawn = recall(self, "_drawn", (case.head, config_json, case.weights_seed),
                        lambda: draw_weights(built.shapes, case.weights_seed))
        built.load(drawn)
        model = built.model
        fresh(model.config, built.fresh_config)

        def held():
            arrays = drawn if dtype == "float64" else built.read(drawn)
            return {alias: read_only(arrays[name]) for alias, name in built.aliases.items()}

        return model, recall(self, "_held", (case.head, config_json, case.weights_seed, dtype, device), held)

    def run(self, case: Case, attn="eager", device="cpu", dtype="float64", grad=True):
        """Run `case` in eval mode; return numpy float64 outputs: the head's logits, `last_hidden_state`, and with
        labels `loss` and `loss_grad` (d loss / d each logits output, via autograd). `bare_seconds` accumulates the
        time spent in the forward and autograd calls themselves (what `bert-conformance bench` calls the floor)."""
        model, weights = self.build(case, attn, device, dtype)
        # contiguous copies: BertForMultipleChoice .view()s its inputs, which fails on strided tensors; labels as
        # numpy gives them (a private copy, no dtype cast), as a user passes them
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in case.inputs.items()}
        kwargs.update({k: torch.from_numpy(np.array(v, order="C")).to(device) for k, v in case.labels.items()})
        if case.num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = case.num_items_in_batch
        start = time.perf_counter()
        try:
            with autocast(dtype, device):
                result = forward(model, case.head, logit_keys(case.head), kwargs, grad and bool(case.labels))
        finally:
            self.bare_seconds += time.perf_counter() - start
        return to_numpy(result), weights
