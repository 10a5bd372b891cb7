"""The transformers adapter's head options and forward contracts (a mixin of `TransformersAdapter`, which provides
`self.build`): a forward with its label arguments renamed (the NSP alias), several calls with labels on one freshly
built model (what `config.problem_type` keeps between them), the caller's tensors as a forward leaves them, and the
catalog of what a release offers (config fields, forward keywords, activations, collator fields)."""

import dataclasses
import inspect

import numpy as np
import torch

from ..case import logit_keys
from ..port import HEADS
from .torch_models import forward, to_numpy


def _tensors(arrays, device):
    """Private torch tensors of numpy `arrays` (contiguous copies, as a user's own tensors)."""
    return {k: torch.from_numpy(np.array(v, order="C")).to(device) for k, v in arrays.items()}


class OptionMethods:
    """Head options and forward contracts (see the module docstring)."""

    def run_renamed(self, case, rename, attn="eager", device="cpu", dtype="float64"):
        """`run`, with each label argument `k` of `case.labels` passed as `rename.get(k, k)` (e.g. `labels` as
        `next_sentence_label`): numpy float64 outputs as `run` gives them (no `loss` where the model computed none)."""
        model, weights = self.build(case, attn, device, dtype)
        kwargs = _tensors(case.inputs, device)
        kwargs.update({rename.get(k, k): v for k, v in _tensors(case.labels, device).items()})
        return to_numpy(forward(model, case.head, logit_keys(case.head), kwargs, True)), weights

    def run_in_sequence(self, case, label_sets, attn="eager", device="cpu", dtype="float64"):
        """Call one freshly built model (its config as built) once per label dict of `label_sets`, in order, without
        resetting anything between the calls, as a user calls one model; returns ([outputs of each call], weights).
        A call that raises re-raises its exception with `computed` set to the outputs of the calls before it."""
        model, weights = self.build(case, attn, device, dtype)
        results = []
        for labels in label_sets:
            kwargs = _tensors(case.inputs, device)
            kwargs.update(_tensors(labels, device))
            try:
                results.append(to_numpy(forward(model, case.head, logit_keys(case.head), kwargs, True)))
            except Exception as exc:
                exc.computed = results
                raise
        return results, weights

    def inputs_after_forward(self, case, attn="eager", device="cpu", dtype="float64"):
        """Run `case` with the caller's own torch tensors (every input and label) and return those tensors' values
        after the forward, as numpy arrays by name: what the forward wrote into its caller's tensors."""
        model, _ = self.build(case, attn, device, dtype)
        tensors = _tensors(case.inputs, device)
        tensors.update(_tensors(case.labels, device))
        forward(model, case.head, logit_keys(case.head), dict(tensors), bool(case.labels))
        return {k: v.detach().to("cpu").numpy().copy() for k, v in tensors.items()}

    def surface_catalog(self):
        """What this release offers a user of BERT, by kind: "config" (the keys of `BertConfig().to_dict()` and the
        parameters of `BertConfig.__init__`), "forward.<class>" (the parameters of each BERT class's forward;
        `**kwargs` as "**kwargs"), "activations" (`ACT2FN`'s names) and "collator.<class>" (the fields of the MLM
        collators, DataCollatorForLanguageModeling and DataCollatorForWholeWordMask, where the release has it)."""
        t = self.transformers
        catalog = {"config": sorted((set(t.BertConfig().to_dict()) | _parameters(t.BertConfig.__init__))),
                   "activations": sorted(self.activations())}
        for head in HEADS:
            catalog[f"forward.{head}"] = sorted(_parameters(getattr(t, head).forward))
        for name in ("DataCollatorForLanguageModeling", "DataCollatorForWholeWordMask"):
            cls = getattr(t, name, None)
            if cls is not None:
                fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
                catalog[f"collator.{name}"] = sorted(fields | _parameters(cls.__init__))
        return catalog


def _parameters(function):
    """The parameter names of `function` but self and `*args`; `**kwargs` (any name) as "**kwargs"."""
    names = set()
    for p in inspect.signature(function).parameters.values():
        if p.name == "self" or p.kind is p.VAR_POSITIONAL:
            continue
        names.add("**kwargs" if p.kind is p.VAR_KEYWORD else p.name)
    return names
