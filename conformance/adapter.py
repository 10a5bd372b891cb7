"""The adapter to the implementation under test: HuggingFace transformers.

Every difference between transformers versions is bridged here and nowhere else. A user porting BERT elsewhere
can write a class with the same methods (`build`, `run`, `attention_implementations`, `activations`) and pass it
to the suite with `--adapter module:Class`.
"""

import copy
import functools
import inspect
import json
import os
import tempfile
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

    @functools.lru_cache(maxsize=64)
    def _model(self, head, config_json, attn, device, dtype):
        config = json.loads(config_json)
        bert_config = self.transformers.BertConfig(**config, attn_implementation=attn)
        model = getattr(self.transformers, head)(bert_config)
        actual = getattr(model.config, "_attn_implementation", "eager")
        if actual != attn:
            raise RuntimeError(f"asked for attention {attn!r}, transformers {self.version} chose {actual!r}")
        shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        return model.to(device=device, dtype=TORCH_DTYPES[dtype]).eval(), shapes

    def build(self, case: Case, attn="eager", device="cpu", dtype="float64"):
        """The model for `case`, with the case's drawn weights loaded; returns (model, weights as float64 numpy).

        Models are cached per (head, config, attention, device, dtype); only the weights are loaded anew.
        Tied parameters appear once in `named_parameters`, so tying is what makes decoder == word embeddings.
        """
        model, shapes = self._model(case.head, json.dumps(case.config, sort_keys=True), attn, device, dtype)
        drawn = draw_weights(shapes, case.weights_seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(drawn[name]))
        if hasattr(model.config, "problem_type"):  # forward() writes the inferred problem type back into the config
            model.config.problem_type = case.config.get("problem_type")
        weights = {k: v.detach().to("cpu", torch.float64).numpy() for k, v in model.state_dict().items()}
        return model, weights

    def run(self, case: Case, attn="eager", device="cpu", dtype="float64", grad=True):
        """Run `case` in eval mode; return numpy float64 outputs: the head's logits, `last_hidden_state`, and with
        labels `loss` and `loss_grad` (d loss / d each logits output, via autograd)."""
        model, weights = self.build(case, attn, device, dtype)
        # contiguous copies: BertForMultipleChoice .view()s its inputs, which fails on strided tensors
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in case.inputs.items()}
        for k, v in case.labels.items():
            t = torch.from_numpy(np.ascontiguousarray(v))
            kwargs[k] = (t.to(TORCH_DTYPES[dtype]) if t.is_floating_point() else t).to(device)
        if case.num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = case.num_items_in_batch
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
                result["loss_grad"] = {k: (torch.zeros_like(result[k]) if g is None else g) for k, g in zip(keys, grads)}
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

    def _scheduler(self, name, optimizer, params):
        """The schedule's own function (`TYPE_TO_SCHEDULER_FUNCTION`), called with exactly `params`: the formulas,
        without `get_scheduler`'s plumbing, whose argument passing changed across releases."""
        from transformers import optimization

        function = optimization.TYPE_TO_SCHEDULER_FUNCTION[optimization.SchedulerType(name)]
        return function(optimizer, **params)

    def lr_curve(self, name, params, base_lrs, lr_init, steps=None, metrics=None, resume_at=None):
        """The groups' learning rates from `get_scheduler(name, ...)`: after construction and after each of `steps`
        steps (closed-form schedules), or after each `step(metric)` (stateful ones). With `resume_at`, the
        optimizer's and scheduler's state dicts are saved after that many steps and loaded into fresh ones, as
        when training resumes from a checkpoint."""
        with warnings.catch_warnings():  # e.g. warmup_stable_decay warns when given both step counts
            warnings.simplefilter("ignore")
            return self._lr_curve(name, params, base_lrs, lr_init, steps, metrics, resume_at)

    def _lr_curve(self, name, params, base_lrs, lr_init, steps, metrics, resume_at):
        optimizer = self._param_groups(base_lrs, lr_init)
        scheduler = self._scheduler(name, optimizer, params)
        lrs = [] if metrics is not None else [[g["lr"] for g in optimizer.param_groups]]
        inputs = metrics if metrics is not None else [None] * steps
        for t, metric in enumerate(inputs):
            if t == resume_at:
                saved = copy.deepcopy((optimizer.state_dict(), scheduler.state_dict()))
                optimizer = self._param_groups(base_lrs, lr_init)
                scheduler = self._scheduler(name, optimizer, params)
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
