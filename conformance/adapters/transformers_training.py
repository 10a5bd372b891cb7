"""The transformers adapter's training utilities: learning-rate schedules, AdamW, the Trainer's weight-decay
grouping, the MLM collator and train mode (dropout recorded), bridged across releases (a mixin of
`TransformersAdapter`, which provides `self.transformers`, `self.version`, `self.has`, `self.build` and
`self._model`). The training loops and the Trainer are `TrainerMethods` (transformers_trainer.py), its base."""

import contextlib
import copy
import functools
import importlib
import inspect
import json
import os
import tempfile
import warnings

import numpy as np
import torch

from ..case import logit_keys
from .torch_models import TORCH_DTYPES, to_numpy
from .transformers_trainer import TrainerMethods

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@contextlib.contextmanager
def computed_so_far(steps):
    """An exception the implementation raises inside carries the steps computed before it as `computed` (the list
    `steps`, copied), so that they can still be compared (`conformance.runner.refusals`); it propagates unchanged."""
    try:
        yield
    except Exception as exc:
        exc.computed = list(steps)
        raise


class TrainingMethods(TrainerMethods):
    """Schedules, AdamW, decay grouping, MLM collation and train mode through the installed transformers; the
    training loops and the Trainer through its base `TrainerMethods`."""

    @functools.cached_property
    def _collator_fields(self):
        return set(getattr(self.transformers.DataCollatorForLanguageModeling, "__dataclass_fields__", {}))

    @property
    def collator_replacement_configurable(self):
        """Whether DataCollatorForLanguageModeling takes `mask_replace_prob` / `random_replace_prob` (else 0.8/0.1)."""
        return self.has("collator-replacement-probabilities")

    @property
    def collator_has_numpy(self):
        """Whether DataCollatorForLanguageModeling can return numpy arrays (`return_tensors="np"`)."""
        return "return_tensors" in self._collator_fields

    def schedule_names(self):
        """Every `SchedulerType` value this version has."""
        return [s.value for s in importlib.import_module("transformers.trainer_utils").SchedulerType]

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
        optimization = importlib.import_module("transformers.optimization")
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
        with computed_so_far(lrs):
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
        with computed_so_far(history):
            for step in grads:
                for p, g in zip(tensors, step):
                    p.grad = torch.tensor(g, dtype=p.dtype, device=device)
                optimizer.step()
                state = [optimizer.state[p] for p in tensors]
                history.append({"params": [to_numpy(p) for p in tensors],
                                "exp_avg": [to_numpy(s["exp_avg"]) for s in state],
                                "exp_avg_sq": [to_numpy(s["exp_avg_sq"]) for s in state]})
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
        collator = self.transformers.DataCollatorForLanguageModeling(self.tokenizer(vocab_size), **settings)
        batch = collator([{"input_ids": list(r)} for r in rows])
        return tuple(np.asarray(batch[k]) for k in ("input_ids", "labels"))

    # --- train mode --------------------------------------------------------------------------------------------

    def train_run(self, case, attn="eager", device="cpu", dtype="float64", seed=0, record=False,
                  checkpointing=False, parameter_grads=False):
        """Run `case` in train mode (`model.train()`; eval mode again after), with torch's RNGs seeded with `seed`.

        Returns a dict: `outputs` (as `run` returns them: logits, `last_hidden_state`, with labels `loss` and
        `loss_grad`), `weights`; with `record`, `dropout`: every training-mode call of `torch.nn.functional.dropout`
        (which `nn.Dropout` goes through) of the forward pass, in call order, as (p, input, output) numpy triples;
        with `parameter_grads` (and labels), `grads`: d loss / d each parameter, by `named_parameters` name (tied
        ones once; zeros for a parameter the loss does not reach). With `checkpointing`, a copy of the model with
        gradient checkpointing on (`gradient_checkpointing_enable()` from 4.11, `config.gradient_checkpointing`
        before) runs instead."""
        model, weights = self.build(case, attn, device, dtype)
        if checkpointing:
            model = copy.deepcopy(model)
            with warnings.catch_warnings():  # 5.x: deprecated in favour of another API, still the documented one
                warnings.simplefilter("ignore")
                if hasattr(model, "gradient_checkpointing_enable"):
                    model.gradient_checkpointing_enable()
                else:
                    model.config.gradient_checkpointing = True
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device) for k, v in case.inputs.items()}
        kwargs.update({k: torch.from_numpy(np.array(v, order="C")).to(device) for k, v in case.labels.items()})
        if case.num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = case.num_items_in_batch
        calls = []
        model.train()
        try:
            torch.manual_seed(seed)
            with contextlib.ExitStack() as stack:
                stack.enter_context(warnings.catch_warnings())
                warnings.simplefilter("ignore")  # torch's checkpoint warns when use_reentrant is not passed
                if record:
                    stack.enter_context(recording_dropout(calls))
                out = model(**kwargs, output_hidden_states=True, return_dict=True)
            result = self._train_outputs(model, case, out, parameter_grads)
        finally:
            model.eval()
        result["weights"] = weights
        if record:
            result["dropout"] = [(p, to_numpy(a), to_numpy(b)) for p, a, b in calls]
        return result

    @staticmethod
    def _train_outputs(model, case, out, parameter_grads):
        keys = logit_keys(case.head)
        outputs = {key: getattr(out, key) for key in keys}
        if case.head != "BertModel":
            outputs["last_hidden_state"] = out.hidden_states[-1]
        loss = getattr(out, "loss", None)
        named = list(model.named_parameters())
        result = {}
        if loss is not None:  # backward(), as a training loop calls it: reentrant checkpointing refuses .grad()
            outputs["loss"] = loss
            for key in keys:
                outputs[key].retain_grad()
            for p in model.parameters():
                p.grad = None
            try:
                loss.backward()
                outputs["loss_grad"] = {k: torch.zeros_like(outputs[k]) if outputs[k].grad is None
                                        else outputs[k].grad for k in keys}
                if parameter_grads:
                    result["grads"] = {name: to_numpy(torch.zeros_like(p) if p.grad is None else p.grad)
                                       for name, p in named}
            finally:
                for p in model.parameters():
                    p.grad = None
        result["outputs"] = to_numpy(outputs)
        return result


@contextlib.contextmanager
def recording_dropout(calls):
    """Record into `calls` every training-mode call of `torch.nn.functional.dropout` made inside, as (p, input,
    output) with detached copies; the function itself runs unchanged."""
    original = torch.nn.functional.dropout

    def dropout(input, p=0.5, training=True, inplace=False):
        before = input.detach().clone()
        output = original(input, p, training, inplace)
        if training:
            calls.append((float(p), before, output.detach().clone()))
        return output

    torch.nn.functional.dropout = dropout
    try:
        yield
    finally:
        torch.nn.functional.dropout = original

