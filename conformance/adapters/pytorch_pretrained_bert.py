"""The adapter to pytorch-pretrained-bert (0.6.2, 2019), the predecessor of transformers, as a second port.

`PytorchPretrainedBertAdapter` follows the port contract's core (`conformance/port.py`) and offers none of the
optional capabilities. It builds seven heads and the encoder (the package has no decoder, so no `BertLMHeadModel`)
and declares how the package differs from transformers' rules, as port attributes the strategies and the reference
read:

- `config_fixed`: every `BertLayerNorm` is built with eps 1e-12 (the package's BertConfig has no `layer_norm_eps`),
  and `BertForSequenceClassification` always computes single-label cross-entropy, num_labels == 1 included (no
  regression, no multi-label): its `problem_type` is fixed at "single_label_classification";
- `inputs_lacking`: the forward methods take no `position_ids` (positions are always 0..L-1);
- `ignore_index`: the pre-training, masked-LM and next-sentence losses ignore label -1
  (`CrossEntropyLoss(ignore_index=-1)`); the sequence-classification, multiple-choice and token-classification losses
  use `CrossEntropyLoss()`'s -100;
- `refusals`: under that masked token-classification rule, labels of the wrong shape meet the mask in a boolean
  index (`labels.view(-1)[active_loss]`): IndexError, where transformers' `torch.where` raised a RuntimeError;
- `has(change_id)`: the package predates every release of the drift catalog and follows the old rule of each (the
  token-classification loss skips positions whose attention mask is not 1, ...).

Real weights (the `port_checkpoint` capability): `load_checkpoint` loads the MiniLM checkpoint's folder with the
package's own `BertModel.from_pretrained` (its config.json, and the weights converted from model.safetensors to the
torch state dict the package reads: it predates safetensors).

A forward with labels returns the loss alone, so the logits are caught by a forward hook on the head's last module,
which hands the rest of the forward a leaf copy of them: one pass gives the loss, the logits and d loss / d logits.
"""

import collections
import json
import logging
import os
import platform

import numpy as np
import pytorch_pretrained_bert
import torch
from pytorch_pretrained_bert import modeling

from reference.errors import Refusal

from ..case import Case, draw_weights, logit_keys
from ..drift import CHANGES_BY_ID
from .torch_models import TORCH_DTYPES, BuiltModel, autocast, available_devices, read_only, recall, to_numpy

LABEL_ARGUMENTS = {  # the package's name of each label argument, by head
    "BertForPreTraining": {"labels": "masked_lm_labels", "next_sentence_label": "next_sentence_label"},
    "BertForMaskedLM": {"labels": "masked_lm_labels"},
    "BertForNextSentencePrediction": {"labels": "next_sentence_label"},
}
LOGITS_MODULE = {  # the module whose output is the head's logits
    "BertForPreTraining": "cls", "BertForMaskedLM": "cls", "BertForNextSentencePrediction": "cls",
    "BertForSequenceClassification": "classifier", "BertForMultipleChoice": "classifier",
    "BertForTokenClassification": "classifier", "BertForQuestionAnswering": "qa_outputs",
}
CONFIG_FIELDS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
                 "max_position_embeddings", "type_vocab_size")


class PytorchPretrainedBertAdapter:
    """Builds and runs pytorch-pretrained-bert's BERT classes; returns numpy float64 outputs."""

    name = "pytorch-pretrained-bert"
    heads = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForNextSentencePrediction",
             "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
             "BertForQuestionAnswering")
    config_fixed = {"layer_norm_eps": 1e-12, "problem_type": "single_label_classification"}
    inputs_lacking = ("position_ids",)
    ignore_index = {"BertForPreTraining": -1, "BertForMaskedLM": -1, "BertForNextSentencePrediction": -1}
    refusals = {"masked-label-shape": Refusal("masked-label-shape", ("IndexError",), r"The shape of the mask \[\d+\] "
                                              r"at index 0 does not match the shape of the indexed tensor")}
    MODELS_KEPT = 256

    def __init__(self):
        self.version = pytorch_pretrained_bert.__version__
        torch.set_num_threads(1)  # tiny models: one intra-op thread is fastest, and xdist workers share the cores

    def __repr__(self):
        return f"{self.name} {self.version}"

    def devices(self):
        return available_devices()

    def attention_implementations(self):
        return ["eager"]

    def activations(self):
        """The `hidden_act` names of the package's ACT2FN (gelu is the erf form, swish is x * sigmoid(x))."""
        return sorted(modeling.ACT2FN)

    def has(self, change_id):
        """False for every change of the drift catalog: the package follows the rule before each one (a KeyError
        for an id the catalog does not have)."""
        CHANGES_BY_ID[change_id]
        return False

    def environment(self):
        """What a run record says of this implementation besides its version: torch's version and the devices."""
        devices = {"cpu": platform.processor() or platform.machine()}
        if torch.cuda.is_available():
            devices["cuda"] = torch.cuda.get_device_name(0)
        return {"torch": torch.__version__, "devices": devices}

    # --- building and running ------------------------------------------------------------------------------

    def _refuse_unsupported(self, case):
        """A case this port cannot express (the strategies never draw one for it) is refused, not approximated."""
        differ = {k: case.config[k] for k, v in self.config_fixed.items() if case.config.get(k, v) != v}
        if differ or case.config.get("is_decoder"):
            raise ValueError(f"{self!r} fixes {self.config_fixed} and has no decoder; the case has "
                             f"{differ or 'is_decoder'}")
        lacking = [k for k in case.inputs if k in self.inputs_lacking]
        if lacking:
            raise ValueError(f"{self!r} takes no {', '.join(lacking)}")

    def _construct(self, head, config, num_choices):
        bert_config = modeling.BertConfig(config["vocab_size"], **{k: config[k] for k in CONFIG_FIELDS})
        cls = getattr(modeling, head)
        if head in ("BertForSequenceClassification", "BertForTokenClassification"):
            return cls(bert_config, config["num_labels"])
        if head == "BertForMultipleChoice":
            return cls(bert_config, num_choices)
        return cls(bert_config)

    def _entry(self, case, device):
        """The cached `BuiltModel` of the case's head and config (and number of choices) on `device`."""
        self._refuse_unsupported(case)
        choices = case.inputs["input_ids"].shape[1] if case.head == "BertForMultipleChoice" else None
        key = (case.head, json.dumps(case.config, sort_keys=True), choices, device)
        models = self.__dict__.setdefault("_models", collections.OrderedDict())
        if key not in models:
            while len(models) >= self.MODELS_KEPT:
                models.popitem(last=False)
            model = self._construct(case.head, case.config, choices)
            models[key] = BuiltModel((model if device == "cpu" else model.to(device)).eval())
        models.move_to_end(key)
        return key, models[key]

    def build(self, case: Case, attn="eager", device="cpu", dtype="float64"):
        """The model of `case.head` with the case's drawn weights loaded; returns (model, weights as float64 numpy).

        The package names its parameters as transformers does (its `BertLayerNorm` has `weight` and `bias`); the
        tied MLM decoder is returned under both `bert.embeddings.word_embeddings.weight` and
        `cls.predictions.decoder.weight`. The masked-LM, token-classification and QA heads keep the encoder's pooler
        (transformers drops it there): its weights are drawn and returned, and unused."""
        if attn != "eager":
            raise ValueError(f"{self!r} has eager attention only, asked for {attn!r}")
        key, built = self._entry(case, device)
        built.to(dtype)
        drawn = recall(self, "_drawn", key[:3] + (case.weights_seed,),
                       lambda: draw_weights(built.shapes, case.weights_seed))
        built.load(drawn)

        def held():
            arrays = drawn if dtype == "float64" else built.read(drawn)
            return {alias: read_only(arrays[name]) for alias, name in built.aliases.items()}

        return built.model, recall(self, "_held", key + (case.weights_seed, dtype), held)

    def run(self, case: Case, attn="eager", device="cpu", dtype="float64", grad=True):
        """The forward pass in eval mode: the head's outputs, `last_hidden_state`, and with labels `loss` and, with
        `grad`, `loss_grad` (d loss / d each logits output). Inputs and labels are copied (the QA loss clamps its
        positions in place), and contiguous (BertForMultipleChoice .view()s them)."""
        model, weights = self.build(case, attn, device, dtype)
        kwargs = {k: torch.tensor(np.ascontiguousarray(v)).to(device) for k, v in case.inputs.items()}
        names = LABEL_ARGUMENTS.get(case.head, {})
        for k, v in case.labels.items():
            t = torch.tensor(np.array(v))
            kwargs[names.get(k, k)] = (t.to(TORCH_DTYPES[dtype]) if t.is_floating_point() else t).to(device)
        with autocast(dtype, device):
            if case.head == "BertModel":
                with torch.no_grad():
                    hidden, pooled = model(**kwargs, output_all_encoded_layers=False)
                return to_numpy({"last_hidden_state": hidden, "pooler_output": pooled}), weights
            return to_numpy(self._head_forward(model, case, kwargs, grad)), weights

    def _head_forward(self, model, case, kwargs, grad):
        """Run a task head with hooks that catch the last hidden state and the logits (as leaves, so that the loss
        can be differentiated with respect to them alone)."""
        caught = {}
        labelled = bool(case.labels)

        def logits_hook(module, inputs, output):
            if not (labelled and grad):
                caught["logits"] = output
                return None
            leaves = tuple(o.detach().requires_grad_(True) for o in output) if isinstance(output, tuple) else \
                output.detach().requires_grad_(True)
            caught["logits"] = leaves
            return leaves

        def hidden_hook(module, inputs, output):
            caught["hidden"] = output[-1]

        hooks = [getattr(model, LOGITS_MODULE[case.head]).register_forward_hook(logits_hook),
                 model.bert.encoder.register_forward_hook(hidden_hook)]
        try:
            with torch.set_grad_enabled(labelled and grad):
                loss = model(**kwargs)
        finally:
            for hook in hooks:
                hook.remove()
        outputs = self._logits(case, caught["logits"])
        outputs["last_hidden_state"] = caught["hidden"]
        if labelled:
            outputs["loss"] = loss
            if grad:
                leaves = caught["logits"] if isinstance(caught["logits"], tuple) else (caught["logits"],)
                grads = torch.autograd.grad(loss, leaves, allow_unused=True)
                grads = tuple(torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads))
                outputs["loss_grad"] = self._logits(case, grads if len(grads) > 1 else grads[0])
        return outputs

    @staticmethod
    def _logits(case, raw):
        """The head's outputs under transformers' names from what the logits module returned (or its gradient)."""
        keys = logit_keys(case.head)
        if case.head == "BertForPreTraining":
            return dict(zip(keys, raw))
        if case.head == "BertForQuestionAnswering":
            return {"start_logits": raw[..., 0], "end_logits": raw[..., 1]}
        if case.head == "BertForMultipleChoice":
            return {"logits": raw.view(-1, case.inputs["input_ids"].shape[1])}
        return {"logits": raw}

    # --- real weights --------------------------------------------------------------------------------------------

    def load_checkpoint(self, directory):
        """The encoder of the checkpoint in `directory`, loaded by the package's `BertModel.from_pretrained` (config
        .json read by its BertConfig, the weights converted from model.safetensors to a state dict); every parameter
        must come from the checkpoint (the package only logs missing keys)."""
        from safetensors.torch import load_file

        state_dict = load_file(os.path.join(directory, "model.safetensors"))
        logging.getLogger("pytorch_pretrained_bert.modeling").setLevel(logging.ERROR)
        model = modeling.BertModel.from_pretrained(directory, state_dict=dict(state_dict)).eval()
        names = {k[len("bert."):] if k.startswith("bert.") else k for k in state_dict}
        missing = sorted(set(dict(model.named_parameters())) - names)
        if missing:
            raise RuntimeError(f"{self!r}: the checkpoint does not hold {missing[:3]} ({len(missing)} in all)")
        return model

    def run_checkpoint(self, model, inputs, device="cpu", dtype="float32"):
        """`model`'s last hidden state and pooled output on `inputs` (numpy), in `dtype` on `device`."""
        model = model.to(device=device, dtype=TORCH_DTYPES[dtype])
        kwargs = {k: torch.tensor(np.ascontiguousarray(v)).to(device) for k, v in inputs.items()}
        with torch.no_grad():
            hidden, pooled = model(**kwargs, output_all_encoded_layers=False)
        return to_numpy({"last_hidden_state": hidden, "pooler_output": pooled})
