"""The transformers adapter's gradient of the loss with respect to every parameter, through autograd (a mixin of
`TransformersAdapter`, which provides `self.transformers`, `self.version`, `self.has`, `self.build` and
`self._model`)."""

import time
import weakref

import numpy as np
import torch

from .torch_models import TORCH_DTYPES

FLOAT_INPUTS = ("head_mask", "encoder_hidden_states")  # forward arguments in the model's dtype
INPUT_GRADS = ("encoder_hidden_states",)  # float inputs whose gradient is returned too


_PARAMETERS = weakref.WeakKeyDictionary()  # model -> its named_parameters(remove_duplicate=False), listed once


def _named_parameters(model):
    """Every (state-dict name, parameter) of `model`, tied ones under each name (listed once per model: walking the
    modules costs as much as a tiny model's backward)."""
    if model not in _PARAMETERS:
        _PARAMETERS[model] = list(model.named_parameters(remove_duplicate=False))
    return _PARAMETERS[model]


def _clear_grads(named):
    for _, p in named:
        p.grad = None


class GradientMethods:
    """The gradient of the loss with respect to every parameter, through autograd."""

    def parameter_grads(self, case, attn="eager", device="cpu", dtype="float64"):
        """(loss, {parameter name: d loss / d parameter as float64 numpy}, weights) for `case` in eval mode: the
        model of `build` (the case's weights loaded), every `.grad` cleared, `loss.backward()`, and each parameter's
        `.grad` read under every state-dict name of it (tied parameters, e.g. the word embeddings and the MLM
        decoder, under each of their names, one shared gradient); a parameter the loss does not reach (`.grad`
        None) has gradient zeros. The `.grad`s are cleared again after, so the cached model carries none. Float
        inputs (`head_mask`, `encoder_hidden_states`) are given in the model's dtype, as a user must; the
        encoder states as a leaf that requires grad, whose gradient is returned under "encoder_hidden_states"."""
        model, weights = self.build(case, attn, device, dtype)
        kwargs = {}
        for k, v in case.inputs.items():
            tensor = torch.from_numpy(np.ascontiguousarray(v)).to(device)
            if k in FLOAT_INPUTS:
                tensor = tensor.to(TORCH_DTYPES[dtype]).requires_grad_(k in INPUT_GRADS)
            kwargs[k] = tensor
        kwargs.update({k: torch.from_numpy(np.array(v, order="C")).to(device) for k, v in case.labels.items()})
        if case.num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = case.num_items_in_batch
        if model.training:
            model.eval()
        named = _named_parameters(model)
        _clear_grads(named)
        start = time.perf_counter()
        try:
            with torch.enable_grad():
                loss = model(**kwargs, return_dict=True).loss
                loss.backward()
            grads = {name: (np.zeros(tuple(p.shape)) if p.grad is None
                            else p.grad.detach().to("cpu", torch.float64).numpy().copy()) for name, p in named}
            loss_value = float(loss.detach().to("cpu", torch.float64))
        finally:
            self.bare_seconds += time.perf_counter() - start
            _clear_grads(named)
        result = {name: grads[name] for name in weights}
        for k in INPUT_GRADS:
            if k in kwargs:
                g = kwargs[k].grad
                result[k] = np.zeros(tuple(kwargs[k].shape)) if g is None else g.detach().to("cpu", torch.float64).numpy()
        return loss_value, result, weights
