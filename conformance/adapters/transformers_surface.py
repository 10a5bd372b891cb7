"""The transformers adapter's forward arguments and outputs beyond the default forward: output_attentions, output_hidden_states, inputs_embeds, head_mask, arbitrary masks (a mixin of `TransformersAdapter`, which provides `self.transformers`,
`self.version`, `self.has`, `self.build` and `self._model`)."""

import time

import numpy as np
import torch

from ..case import logit_keys
from .torch_models import TORCH_DTYPES, to_numpy

FLOAT_INPUTS = ("inputs_embeds", "head_mask")  # forward arguments in the model's dtype; the others are integers


class SurfaceMethods:
    """Forward arguments and outputs beyond the default forward: output_attentions, output_hidden_states, inputs_embeds, head_mask, arbitrary masks."""

    def run_surface(self, case, attn="eager", device="cpu", dtype="float64"):
        """Run `case` in eval mode with its inputs as given (any attention mask; `inputs_embeds` instead of
        `input_ids`; `head_mask`) and its `options` as forward keywords (`output_attentions`,
        `output_hidden_states`, as a user passes them); return (outputs, weights). `outputs` holds the head's
        outputs and `last_hidden_state` as numpy float64, and, where the model returned them, `hidden_states` and
        `attentions` as lists of arrays (None where the model returned none; an empty tuple is an empty list).
        Float inputs (a float attention mask too) are converted to the model's dtype, as a user must."""
        model, weights = self.build(case, attn, device, dtype)
        kwargs = {}
        for key, value in case.inputs.items():
            tensor = torch.from_numpy(np.ascontiguousarray(value)).to(device)
            floating = key in FLOAT_INPUTS or (key == "attention_mask" and value.dtype.kind == "f")
            kwargs[key] = tensor.to(TORCH_DTYPES[dtype]) if floating else tensor
        options = dict(getattr(case, "options", {}))
        start = time.perf_counter()
        try:
            with torch.no_grad():
                out = model(**kwargs, **options, return_dict=True)
        finally:
            self.bare_seconds += time.perf_counter() - start
        result = {key: to_numpy(getattr(out, key)) for key in logit_keys(case.head)}
        if case.head != "BertModel" and getattr(out, "hidden_states", None):
            result["last_hidden_state"] = to_numpy(out.hidden_states[-1])
        for key in ("hidden_states", "attentions"):
            value = getattr(out, key, None)
            result[key] = None if value is None else [to_numpy(v) for v in value]
        return result, weights
