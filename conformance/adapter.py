"""The adapter to the implementation under test: HuggingFace transformers.

Every difference between transformers versions is bridged here and nowhere else. A user porting BERT elsewhere
can write a class with the same methods (`build`, `run`, `attention_implementations`, `activations`) and pass it
to the suite with `--adapter module:Class`.
"""

import collections
import copy
import functools
import inspect
import json
import os
import tempfile
import time
import warnings

import numpy as np
import torch
from packaging.version import Version

from .case import Case, draw_weights

TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}

# Output attribute names per head, as the transformers output objects name them.
LOGIT_KEYS = {
    "BertModel": ("last_hidden_state", "pooler_output"),
    "BertForPreTraining": ("prediction_logits", "seq_relationship_logits"),
    "BertForQuestionAnswering": ("start_logits", "end_logits"),
}
DEFAULT_LOGIT_KEYS = ("logits",)
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def logit_keys(head):
    return LOGIT_KEYS.get(head, DEFAULT_LOGIT_KEYS)


class TransformersAdapter:
    """Builds, loads and runs transformers' BERT classes; returns numpy float64 outputs."""

    name = "transformers"
    bare_seconds = 0.0  # time inside transformers' forward and autograd calls (see `run`)

    def __init__(self):
        import transformers

        self.transformers = transformers
        self.version = Version(transformers.__version__)
        transformers.logging.set_verbosity_error()
        warnings.filterwarnings("ignore", module="transformers")
        # The models are tiny: one intra-op thread is fastest, and with xdist several threads per worker
        # oversubscribe the cores (measured: 1.4 ms vs 0.06 ms per LayerNorm + Linear on 2 cores).
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
        from transformers.activations import ACT2FN

        return sorted(getattr(ACT2FN, "keys", lambda: ACT2FN)())

    def has(self, change_id):
        """Whether this version follows the new rule of the drift catalog's change `change_id` (it is at least the
        first release with it). An adapter for another implementation answers for its own rules."""
        from .drift import CHANGES_BY_ID

        return self.version >= Version(CHANGES_BY_ID[change_id].since)

    @functools.cached_property
    def _collator_fields(self):
        from transformers import DataCollatorForLanguageModeling

        return set(getattr(DataCollatorForLanguageModeling, "__dataclass_fields__", {}))

    @property
    def collator_replacement_configurable(self):
        """Whether DataCollatorForLanguageModeling takes `mask_replace_prob` / `random_replace_prob` (else 0.8/0.1)."""
        return self.has("collator-replacement-probabilities")

    @property
    def collator_has_numpy(self):
        """Whether DataCollatorForLanguageModeling can return numpy arrays (`return_tensors="np"`)."""
        return "return_tensors" in self._collator_fields

    # --- building and running ------------------------------------------------------------------------------

    MODELS_KEPT = 256  # built models kept per adapter (a tiny BERT is ~0.1-0.3 MB with its modules)

    def _entry(self, head, config_json, attn, device):
        """The cached model of `head` built from `config_json` with attention `attn` on `device` (its dtype is
        whatever the last caller asked for), as a `_Built`; least recently used ones are dropped beyond
        MODELS_KEPT. Building costs ~5-8 ms of transformers' Python (`_construct`), ten times loading the weights,
        so a model is built once per config and reused for every example, target dtype and check that draws the
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
        models[key] = built = _Built((model if device == "cpu" else model.to(device)).eval())
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
            if _structure(self._construct_without_init(cls, tiny)) != _structure(cls(tiny)):
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
        import importlib

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
        read-only, and the same objects for every attention implementation of a case (see `_recall`).
        """
        config_json = json.dumps(case.config, sort_keys=True)
        built = self._entry(case.head, config_json, attn, device)
        built.to(dtype)
        # every target of a check runs the same cases: the drawn arrays, and the weights handed back, are kept for
        # the recent cases (the same for every attention implementation: same parameters, same rounding)
        drawn = _recall(self, "_drawn", (case.head, config_json, case.weights_seed),
                        lambda: draw_weights(built.shapes, case.weights_seed))
        built.load(drawn)
        model = built.model
        if hasattr(model.config, "problem_type"):  # forward() writes the inferred problem type back into the config
            model.config.problem_type = case.config.get("problem_type")

        def held():
            arrays = drawn if dtype == "float64" else built.read(drawn)
            return {alias: _read_only(arrays[name]) for alias, name in built.aliases.items()}

        return model, _recall(self, "_held", (case.head, config_json, case.weights_seed, dtype, device), held)

    def run(self, case: Case, attn="eager", device="cpu", dtype="float64", grad=True):
        """Run `case` in eval mode; return numpy float64 outputs: the head's logits, `last_hidden_state`, and with
        labels `loss` and `loss_grad` (d loss / d each logits output, via autograd). `bare_seconds` accumulates the
        time spent in the forward and autograd calls themselves (what `bert-conformance bench` calls the floor)."""
        model, weights = self.build(case, attn, device, dtype)
        # contiguous copies: BertForMultipleChoice .view()s its inputs, which fails on strided tensors
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in case.inputs.items()}
        for k, v in case.labels.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            kwargs[k] = (t.to(TORCH_DTYPES[dtype]) if t.is_floating_point() else t).to(device)
        if case.num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = case.num_items_in_batch
        start = time.perf_counter()
        try:
            with torch.set_grad_enabled(grad and bool(case.labels)):
                out = model(**kwargs, output_hidden_states=True, return_dict=True)
            result = {key: getattr(out, key) for key in logit_keys(case.head)}
            if case.head != "BertModel":
                result["last_hidden_state"] = out.hidden_states[-1]
            loss = getattr(out, "loss", None)
            if loss is not None:
                result["loss"] = loss
                if grad:
                    keys = logit_keys(case.head)
                    grads = torch.autograd.grad(loss, [result[k] for k in keys], allow_unused=True)
                    result["loss_grad"] = {k: (torch.zeros_like(result[k]) if g is None else g)
                                           for k, g in zip(keys, grads)}
        finally:
            self.bare_seconds += time.perf_counter() - start
        return _to_numpy(result), weights

    # --- training: schedules, AdamW, weight-decay grouping, MLM masking --------------------------------------------

    def schedule_names(self):
        """Every `SchedulerType` value this version has."""
        from transformers.trainer_utils import SchedulerType

        return [s.value for s in SchedulerType]

    @staticmethod
    def _param_groups(base_lrs, lr_init):
        """An optimizer whose default lr is `lr_init` and whose groups (one scalar parameter each) start at
        `base_lrs`; SGD because schedulers only read and write the groups' `lr`."""
        groups = [{"params": [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], "lr": lr} for lr in base_lrs]
        return torch.optim.SGD(groups, lr=lr_init)

    def _scheduler(self, name, optimizer, params, via="function"):
        """Schedule `name` for `optimizer`. `via="function"`: its own function (`TYPE_TO_SCHEDULER_FUNCTION`),
        called with exactly `params`, the formulas alone. `via="get_scheduler"`: built as the Trainer builds it,
        `get_scheduler(name, optimizer, num_warmup_steps, num_training_steps, scheduler_specific_kwargs=the rest of
        params)`; a release without `scheduler_specific_kwargs` (before 4.36) offers no way to pass the rest."""
        from transformers import optimization

        if via == "function":
            function = optimization.TYPE_TO_SCHEDULER_FUNCTION[optimization.SchedulerType(name)]
            return function(optimizer, **params)
        kwargs = {k: params.get(k) for k in ("num_warmup_steps", "num_training_steps")}
        if "scheduler_specific_kwargs" in inspect.signature(optimization.get_scheduler).parameters:
            kwargs["scheduler_specific_kwargs"] = {k: v for k, v in params.items() if k not in kwargs}
        return optimization.get_scheduler(name, optimizer, **kwargs)

    def lr_curve(self, name, params, base_lrs, lr_init, steps=None, metrics=None, resume_at=None, via="function"):
        """The groups' learning rates from schedule `name` (built `via` its function or get_scheduler, see
        `_scheduler`): after construction and after each of `steps` steps (closed-form schedules), or after each
        `step(metric)` (stateful ones). With `resume_at`, the optimizer's and scheduler's state dicts are saved
        after that many steps and loaded into fresh ones, as when training resumes from a checkpoint."""
        with warnings.catch_warnings():  # e.g. warmup_stable_decay warns when given both step counts
            warnings.simplefilter("ignore")
            return self._lr_curve(name, params, base_lrs, lr_init, steps, metrics, resume_at, via)

    def _lr_curve(self, name, params, base_lrs, lr_init, steps, metrics, resume_at, via):
        optimizer = self._param_groups(base_lrs, lr_init)
        scheduler = self._scheduler(name, optimizer, params, via)
        lrs = [] if metrics is not None else [[g["lr"] for g in optimizer.param_groups]]
        inputs = metrics if metrics is not None else [None] * steps
        for t, metric in enumerate(inputs):
            if t == resume_at:
                saved = copy.deepcopy((optimizer.state_dict(), scheduler.state_dict()))
                optimizer = self._param_groups(base_lrs, lr_init)
                scheduler = self._scheduler(name, optimizer, params, via)
                optimizer.load_state_dict(saved[0])
                scheduler.load_state_dict(saved[1])
            optimizer.step()
            scheduler.step() if metric is None else scheduler.step(metric)
            lrs.append([g["lr"] for g in optimizer.param_groups])
        return lrs

    def adamw_variants(self):
        """Every AdamW this version offers, by name: torch's (single-tensor, foreach and fused kernels) and
        `transformers.AdamW` where it still exists (removed in 4.50)."""
        variants = ["torch.optim.AdamW", "torch.optim.AdamW(foreach)", "torch.optim.AdamW(fused)"]
        if hasattr(self.transformers, "AdamW"):
            variants.append("transformers.AdamW")
        return variants

    def adamw(self, variant, params, grads, hyper, device="cpu", dtype="float64"):
        """Run `variant` from fresh state over `grads` (a list of steps, each a list of arrays); return per step the
        parameters and the moments `exp_avg`, `exp_avg_sq` as float64 numpy."""
        tensors = [torch.nn.Parameter(torch.tensor(p, dtype=TORCH_DTYPES[dtype], device=device)) for p in params]
        hyper = dict(hyper)
        if variant == "transformers.AdamW":
            optimizer = self.transformers.AdamW(tensors, **hyper)
        else:
            kernel = variant[len("torch.optim.AdamW("):-1] if "(" in variant else None
            flags = {"foreach": kernel == "foreach", "fused": kernel == "fused"} if kernel else {"foreach": False}
            optimizer = torch.optim.AdamW(tensors, **hyper, **flags)
        history = []
        for step in grads:
            for p, g in zip(tensors, step):
                p.grad = torch.tensor(g, dtype=p.dtype, device=device)
            optimizer.step()
            state = [optimizer.state[p] for p in tensors]
            history.append({"params": [_to_numpy(p) for p in tensors],
                            "exp_avg": [_to_numpy(s["exp_avg"]) for s in state],
                            "exp_avg_sq": [_to_numpy(s["exp_avg_sq"]) for s in state]})
        return history

    def decay_parameter_names(self, head, config):
        """`head`'s parameter names (as `named_parameters` gives them, tied ones once) and those among them that the
        Trainer puts in its weight-decay group."""
        model, _ = self._model(head, json.dumps(config, sort_keys=True), "eager", "cpu", "float64")
        names = [name for name, _ in model.named_parameters()]
        if hasattr(self.transformers.Trainer, "get_decay_parameter_names"):
            chosen = set(self.transformers.Trainer.get_decay_parameter_names(None, model))
            return names, [name for name in names if name in chosen]
        # before get_decay_parameter_names: build a Trainer and read the groups its optimizer was given
        args = self.transformers.TrainingArguments(output_dir=tempfile.mkdtemp(prefix="bert-conformance-"),
                                                   weight_decay=0.5)
        trainer = self.transformers.Trainer(model=model, args=args)
        create = getattr(trainer, "create_optimizer", None) or (lambda: trainer.create_optimizer_and_scheduler(1))
        create()
        decayed = {id(p) for g in trainer.optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
        return names, [name for name, p in model.named_parameters() if id(p) in decayed]

    @functools.lru_cache(maxsize=8)
    def tokenizer(self, vocab_size):
        """A BertTokenizer over a vocabulary of `vocab_size` tokens written to a temporary file: the five special
        tokens [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4, then words."""
        directory = tempfile.mkdtemp(prefix="bert-conformance-vocab-")
        path = os.path.join(directory, "vocab.txt")
        words = [f"w{i}" for i in range(vocab_size - len(SPECIAL_TOKENS))]
        with open(path, "w") as f:
            f.write("\n".join(list(SPECIAL_TOKENS) + words) + "\n")
        return self.transformers.BertTokenizer(path)

    def mlm_collate(self, vocab_size, rows, settings, seed, return_tensors="pt"):
        """Collate `rows` (lists of ids) with `DataCollatorForLanguageModeling(**settings)` seeded with `seed`;
        return (input_ids, labels) as numpy."""
        from transformers import DataCollatorForLanguageModeling

        settings = dict(settings, return_tensors=return_tensors)
        fields = self._collator_fields
        for key, default in (("mask_replace_prob", 0.8), ("random_replace_prob", 0.1), ("return_tensors", "pt")):
            if key not in fields:  # a release without the setting has its default hard-coded
                if settings.pop(key, default) != default:
                    raise ValueError(f"transformers {self.version}'s collator has no {key}")
        torch.manual_seed(seed)  # releases before the `seed` setting (and 4.50-5.18 with seed 0) use the global RNGs
        np.random.seed(seed)
        if "seed" in fields:
            settings["seed"] = seed
        collator = DataCollatorForLanguageModeling(self.tokenizer(vocab_size), **settings)
        batch = collator([{"input_ids": list(r)} for r in rows])
        return tuple(np.asarray(batch[k]) for k in ("input_ids", "labels"))


class _Built:
    """A built model and what loading weights into it needs: its parameters in `named_parameters` order (tied ones
    once), their names and shapes, every state-dict name of each parameter (`aliases`: name -> the name it is
    listed under), and its current dtype."""

    def __init__(self, model):
        self.model = model
        named = list(model.named_parameters())
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.shapes = {name: tuple(p.shape) for name, p in named}
        first = {id(p): name for name, p in named}
        self.aliases = {name: first[id(p)] for name, p in model.named_parameters(remove_duplicate=False)}
        self.dtype = None
        self.loaded = None  # the drawn arrays last loaded, while the parameters hold them
        self.data = {}  # dtype -> (the parameters' tensors in it, the drawn arrays they hold)
        self.swap = not any(b.is_floating_point() for b in model.buffers())  # else every switch converts them

    def read(self, drawn):
        """The parameters as float64 numpy arrays by name (one conversion of all of them), as loaded from `drawn`
        (loaded again first, should anything have changed them since)."""
        self.loaded = None
        self.load(drawn)
        flat = torch.cat([p.detach().reshape(-1) for p in self.params]).to("cpu", torch.float64).numpy()
        offsets = np.cumsum([p.numel() for p in self.params])[:-1]
        return {name: a.reshape(p.shape) for name, p, a in zip(self.names, self.params, np.split(flat, offsets))}

    def to(self, dtype):
        """Make the model compute in `dtype`. The first time, each parameter's data is converted and set, as
        `Module.to` does (`param.data = converted`); after that, it is set back to the tensor it had in that dtype,
        without converting: a test of several targets switches dtype on every case. BERT has no floating-point
        buffers (position_ids and token_type_ids are int64), so parameters are all there is to switch; should a
        version have one, every switch is `model.to`."""
        if dtype == self.dtype:
            return
        if self.dtype is not None and self.swap:
            self.data[self.dtype] = ([p.data for p in self.params], self.loaded)
        if dtype in self.data:
            tensors, self.loaded = self.data[dtype]
            for p, t in zip(self.params, tensors):
                p.data = t
        elif self.swap:  # what `Module.to` does to each parameter, without its walk over every module
            for p in self.params:
                p.data = p.data.to(TORCH_DTYPES[dtype])
            self.loaded = None
        else:
            self.model.to(TORCH_DTYPES[dtype])
            self.loaded = None
        self.dtype = dtype

    def load(self, drawn):
        """Copy the drawn float64 arrays into the parameters (converting to the model's dtype and device), unless
        they are what the model holds already: the same arrays loaded last, in the same dtype (forward and
        autograd do not write to parameters; should an implementation do so, the next forward of the same weights
        differs from the reference, which reads `drawn`). Metamorphic checks run one case several times, and
        consecutive examples often keep their weight seed."""
        if self.loaded is drawn:
            return
        sources = [torch.from_numpy(drawn[name]) for name in self.names]
        with torch.no_grad():
            if self.params[0].device.type == "cpu" and hasattr(torch, "_foreach_copy_"):
                torch._foreach_copy_(self.params, sources)  # one call instead of one per parameter
            else:
                for p, source in zip(self.params, sources):
                    p.copy_(source)
        self.loaded = drawn


TINY = dict(vocab_size=8, hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=4,
            max_position_embeddings=8)  # the sizes of the config in which `_construct` checks a head's structure


def _structure(model):
    """What construction must get right besides the values: which state-dict names share a parameter (tying),
    the parameters' shapes and dtypes, and the buffers."""
    named = list(model.named_parameters(remove_duplicate=False))
    first = {}
    for name, p in named:
        first.setdefault(id(p), name)
    ties = {name: first[id(p)] for name, p in named}
    shapes = {name: (tuple(p.shape), p.dtype) for name, p in named}
    buffers = {name: (b.dtype, tuple(b.shape), b.tolist()) for name, b in model.named_buffers()}
    return ties, shapes, buffers


RECALLED = 512  # cases whose drawn and held weights are kept (a few tests' worth; ~20-50 KB each)


def _recall(adapter, memo, key, compute):
    """`compute()`, kept in the adapter's `memo` (an LRU of RECALLED entries) under `key`."""
    cache = adapter.__dict__.setdefault(memo, collections.OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = compute()
    while len(cache) > RECALLED:
        cache.popitem(last=False)
    return value


def _read_only(a):
    """A read-only view: weights handed out for many cases must not be changed by whoever reads them."""
    view = a.view()
    view.setflags(write=False)
    return view


def _to_numpy(x):
    if isinstance(x, dict):
        return {k: _to_numpy(v) for k, v in x.items()}
    return x.detach().to("cpu", torch.float64).numpy().copy()  # a copy: float64 CPU tensors would share memory


def available_devices():
    """cpu always; cuda and mps when torch sees them."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices
