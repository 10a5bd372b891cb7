"""The transformers adapter's training loops: optimizer steps end to end as a fine-tuning or pre-training loop
takes them, and what transformers' Trainer builds and does (its default optimizer and schedule, gradient
accumulation through `training_step`), bridged across releases (a mixin of `TransformersAdapter`, which provides
`self.transformers`, `self.version`, `self.has`, `self.build` and `decay_parameter_names`)."""

import copy
import dataclasses
import inspect
import re
import tempfile
import warnings

import numpy as np
import torch

from .torch_models import to_numpy


class TrainerMethods:
    """Optimizer steps end to end and the Trainer's own optimizer, schedule and gradient accumulation."""

    # --- optimizer steps end to end ----------------------------------------------------------------------------

    def train_steps(self, case, settings, steps, device="cpu", dtype="float64"):
        """Train a copy of `case`'s model (its drawn weights loaded) for `steps` steps on the case's batch, as a
        BERT fine-tuning or pre-training loop does: train mode, `loss.backward()`,
        `torch.nn.utils.clip_grad_norm_(parameters, max_norm)`, `torch.optim.AdamW` with the Trainer's two groups
        (its weight-decay parameters at `weight_decay`, the others at 0), `get_linear_schedule_with_warmup`.
        `settings`: lr, betas, eps, weight_decay, max_norm, num_warmup_steps, num_training_steps.

        Returns `names` (the parameters, tied ones once), `aliases` {other state-dict name: name}, `decayed` (the
        names in the decay group), `initial` {name: float64 array}, and per step `loss`, `lr` (of each group, as
        the step used it), `norm` (clip_grad_norm_'s total norm) and `params`, `exp_avg`, `exp_avg_sq` by name after
        the step (moments of a parameter without a gradient: absent)."""
        model, _ = self.build(case, "eager", device, dtype)
        model = copy.deepcopy(model)  # the cached model keeps its loaded weights
        named = dict(model.named_parameters())
        # the Trainer's grouping depends on a parameter's name and module, the same in every layer (and before
        # get_decay_parameter_names it builds a whole Trainer): asked once per head and layer-free names
        groupings = self.__dict__.setdefault("_decay_groupings", {})
        names = list(named)
        key = (case.head, tuple(sorted({_layer_free(n) for n in names})))
        if key not in groupings:
            groupings[key] = {_layer_free(n) for n in self.decay_parameter_names(case.head, case.config)[1]}
        decayed = [n for n in names if _layer_free(n) in groupings[key]]
        aliases = {alias: first for alias, first in self._aliases(model).items() if alias != first}
        groups = [{"params": [named[n] for n in names if n in decayed], "weight_decay": settings["weight_decay"]},
                  {"params": [named[n] for n in names if n not in decayed], "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=settings["lr"],
                                      betas=tuple(settings["betas"]), eps=settings["eps"], foreach=False)
        scheduler = self.transformers.get_linear_schedule_with_warmup(
            optimizer, settings["num_warmup_steps"], settings["num_training_steps"])
        kwargs = {k: torch.from_numpy(np.array(v, order="C")).to(device)
                  for k, v in {**case.inputs, **case.labels}.items()}
        history, initial = [], {n: to_numpy(p) for n, p in named.items()}
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            loss = model(**kwargs, return_dict=True).loss
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), settings["max_norm"])
            lrs = [g["lr"] for g in optimizer.param_groups]
            optimizer.step()
            scheduler.step()
            state = {n: optimizer.state[named[n]] for n in names if named[n] in optimizer.state}
            history.append({"loss": loss.item(), "lr": lrs, "norm": norm.item(),
                            "params": {n: to_numpy(named[n]) for n in names},
                            "exp_avg": {n: to_numpy(s["exp_avg"]) for n, s in state.items()},
                            "exp_avg_sq": {n: to_numpy(s["exp_avg_sq"]) for n, s in state.items()}})
        return {"names": names, "aliases": aliases, "decayed": decayed, "initial": initial, "steps": history}

    # --- what the Trainer builds for a default TrainingArguments ------------------------------------------------

    def _default_training_arguments(self):
        """TrainingArguments with every default but an output_dir in a temporary directory, no reporting and CPU;
        its device is asked for, so that a release needing `accelerate` raises ImportError here."""
        fields = {f.name for f in dataclasses.fields(self.transformers.TrainingArguments)}
        kw = {"output_dir": tempfile.mkdtemp(prefix="bert-conformance-trainer-")}
        kw.update({"report_to": []} if "report_to" in fields else {})
        kw.update({"use_cpu": True} if "use_cpu" in fields else {"no_cuda": True})
        args = self.transformers.TrainingArguments(**kw)
        args.device  # noqa: B018 (sets up the devices)
        return args

    def trainer_unavailable(self):
        """Why this environment cannot build a Trainer (a package it lacks), or None."""
        try:
            self._default_training_arguments()
        except ImportError as exc:
            return f"transformers {self.version}'s Trainer needs a package this environment lacks: {exc}"
        return None

    def trainer_defaults(self, case, num_training_steps, grad_seed):
        """Build a Trainer for a copy of `case`'s model (its drawn weights) with a default TrainingArguments, its
        optimizer (`create_optimizer`) and scheduler for `num_training_steps`; take one optimizer step with
        gradients drawn from a standard normal seeded with `grad_seed`, then step the scheduler to the end.

        Returns `optimizer` ("transformers" for transformers.AdamW, "torch" for torch.optim.AdamW, else the class's
        qualified name), `groups` (per param group: `names`, `lr`, `betas`, `eps`, `weight_decay`), `names` (the
        parameters, tied ones once), `initial`, `grads` and `params` after the step ({name: float64 array}), and
        `lrs` (each group's learning rate at steps 0..num_training_steps)."""
        model = copy.deepcopy(self.build(case, "eager", "cpu", "float64")[0])
        trainer = self.transformers.Trainer(model=model, args=self._default_training_arguments())
        if hasattr(trainer, "create_scheduler"):
            trainer.create_optimizer()
            if "optimizer" in inspect.signature(trainer.create_scheduler).parameters:
                trainer.create_scheduler(num_training_steps, optimizer=trainer.optimizer)
            else:  # 4.5-4.9: the scheduler of the trainer's own optimizer
                trainer.create_scheduler(num_training_steps)
        else:
            trainer.create_optimizer_and_scheduler(num_training_steps)
        optimizer, scheduler = trainer.optimizer, trainer.lr_scheduler
        named = dict(model.named_parameters())
        by_id = {id(p): n for n, p in named.items()}
        cls = type(optimizer)
        kind = {"transformers": "transformers", "torch": "torch"}.get(cls.__module__.split(".")[0]) \
            if cls.__name__ == "AdamW" else f"{cls.__module__}.{cls.__qualname__}"
        groups = [{"names": [by_id[id(p)] for p in g["params"]], "lr": g["lr"], "betas": tuple(g["betas"]),
                   "eps": g["eps"], "weight_decay": g["weight_decay"]} for g in optimizer.param_groups]
        rng = np.random.default_rng(grad_seed)
        initial = {n: to_numpy(p) for n, p in named.items()}
        grads = {n: rng.standard_normal(p.shape) for n, p in named.items()}
        lrs = [[g["lr"] for g in optimizer.param_groups]]
        with torch.no_grad():
            for n, p in named.items():
                p.grad = torch.from_numpy(grads[n]).to(p.dtype)
        optimizer.step()
        params = {n: to_numpy(p) for n, p in named.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(num_training_steps):
                scheduler.step()
                lrs.append([g["lr"] for g in optimizer.param_groups])
        return {"optimizer": kind, "groups": groups, "names": list(named), "initial": initial, "grads": grads,
                "params": params, "lrs": lrs}

    def trainer_accumulation(self, case, steps, accumulation):
        """Train a copy of `case`'s model for `steps` optimizer steps through a Trainer with a default
        TrainingArguments but `gradient_accumulation_steps=accumulation`, as `Trainer.train`'s inner loop does: per
        step, the micro-batches (the case's rows split in order, `numpy.array_split`) counted by the Trainer's
        `get_batch_samples` where it exists (from 4.46: `num_items_in_batch`), then `trainer.training_step` on each
        (with that count where it takes one), `clip_grad_norm_` to `max_grad_norm`, the optimizer's and the
        scheduler's step and `zero_grad`. Returns `names`, `aliases` (as `train_steps`), `initial` and per step `lr`
        (the first group's, as the step used it), `loss` (the sum of training_step's returned losses), `num_items`
        (the count passed, or None), `grads` (the accumulated gradients before clipping) and `params` after the step
        ({name: float64 array})."""
        model = copy.deepcopy(self.build(case, "eager", "cpu", "float64")[0])
        args = self._default_training_arguments()
        args.gradient_accumulation_steps = accumulation
        trainer = self.transformers.Trainer(model=model, args=args)
        trainer.create_optimizer_and_scheduler(steps)
        trainer.current_gradient_accumulation_steps = accumulation  # set by train() per step from 4.49
        optimizer, scheduler = trainer.optimizer, trainer.lr_scheduler
        named = dict(model.named_parameters())
        batch = {**case.inputs, **case.labels}
        micro = [{k: torch.from_numpy(np.array(np.array_split(v, accumulation)[i], order="C")) for k, v in
                  batch.items()} for i in range(accumulation)]
        history, initial = [], {n: to_numpy(p) for n, p in named.items()}
        takes_count = "num_items_in_batch" in inspect.signature(trainer.training_step).parameters
        model.zero_grad()
        for _ in range(steps):
            count = self._num_items_in_batch(trainer, micro) if takes_count else None
            extra = (count,) if takes_count else ()
            loss = sum(float(trainer.training_step(model, dict(inputs), *extra)) for inputs in micro)
            grads = {n: to_numpy(torch.zeros_like(p) if p.grad is None else p.grad) for n, p in named.items()}
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            scheduler.step()
            model.zero_grad()
            history.append({"lr": lr, "loss": loss, "grads": grads, "num_items": None if count is None else
                            float(count), "params": {n: to_numpy(p) for n, p in named.items()}})
        aliases = {alias: first for alias, first in self._aliases(model).items() if alias != first}
        return {"names": list(named), "aliases": aliases, "initial": initial, "steps": history}

    @staticmethod
    def _num_items_in_batch(trainer, micro):
        """The count `Trainer.train` passes to each training_step of an accumulated step: its `get_batch_samples`
        over the micro-batches (a device argument from 5.0), or None."""
        if not hasattr(trainer, "get_batch_samples"):
            return None
        takes_device = "device" in inspect.signature(trainer.get_batch_samples).parameters
        extra = (trainer.args.device,) if takes_device else ()
        _, count = trainer.get_batch_samples(iter([dict(m) for m in micro]), len(micro), *extra)
        return count

    @staticmethod
    def _aliases(model):
        first = {}
        for name, p in model.named_parameters(remove_duplicate=False):
            first.setdefault(id(p), name)
        return {name: first[id(p)] for name, p in model.named_parameters(remove_duplicate=False)}


def _layer_free(name):
    """A parameter name with its layer index replaced by N ("bert.encoder.layer.2.output.dense.weight" ->
    "bert.encoder.layer.N.output.dense.weight")."""
    return re.sub(r"\.layer\.\d+\.", ".layer.N.", name)
