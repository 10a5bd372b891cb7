"""The adapter to `torch.compile`: transformers' BERT compiled by inductor on the CPU, the compiled path.

`TorchCompileAdapter` follows the port contract's core (`conformance/port.py`) and offers none of the optional
capabilities. transformers builds each model and loads the drawn weights (`TransformersAdapter`, whose drift rules
the compiled model follows: `has` is transformers'); the encoder is compiled once (`torch.compile(bert,
dynamic=True)`) and reused for every case, so only the shapes vary: a compile costs tens of seconds. Dims of size 1
still specialize (dynamo's 0/1 rule); `backed_size_oblivious`, which would avoid those recompiles, is not used: it
gave wrong hidden states for inputs of length 1. The parameters are
the compiled graph's inputs (no freezing), so the weights each case loads are the ones it computes with. Narrowing:

- `config_fixed`: one config (every BertConfig field the strategies draw, but `num_labels`, which only the eager
  head reads), so each head's encoder compiles once (and once more per shape specialization); shapes vary freely;
- `dtypes`: float32 (the compiled deployment path; a float64 target would compile everything a second time);
- what is compiled: the encoder (BertModel, where the work is), once per head and config; the head's layers and its loss run eagerly on its output, so d loss / d logits comes from autograd as in
  transformers (a compiled whole model computes its loss inside the graph from values that are not the logits it
  returns: `autograd.grad(loss, logits)` raises "appears to not have been used in the graph");
- attention: eager only (sdpa would compile every graph a second time).

A recompile past dynamo's limit would silently run the model eagerly; the limit is raised, and reaching it is an
error (`fail_on_recompile_limit_hit`), so a case never passes uncompiled.
"""

import inspect
import platform
import time

import numpy as np
import torch
import torch._dynamo

from ..case import Case, logit_keys
from .torch_models import forward, to_numpy
from .transformers import TransformersAdapter

torch._dynamo.config.recompile_limit = 256
torch._dynamo.config.accumulated_recompile_limit = 4096
torch._dynamo.config.fail_on_recompile_limit_hit = True

CONFIG = {"vocab_size": 12, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 6, "hidden_act": "gelu", "layer_norm_eps": 1e-12, "type_vocab_size": 2}


class TorchCompileAdapter:
    """Runs transformers' BERT classes compiled by `torch.compile` (inductor, CPU, float32)."""

    name = "torch.compile"
    config_fixed = CONFIG
    dtypes = ("float32",)
    heads = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel", "BertForNextSentencePrediction",
             "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
             "BertForQuestionAnswering")
    compile_seconds = 0.0  # time in calls that compiled (the first call of each graph, and recompiles)

    def __init__(self):
        self.version = torch.__version__.split("+")[0]
        self.base = TransformersAdapter()

    def __repr__(self):
        return f"{self.name} {self.version}"

    def devices(self):
        return ["cpu"]

    def attention_implementations(self):
        return ["eager"]

    def activations(self):
        return self.base.activations()

    def has(self, change_id):
        """transformers' answer: the compiled model is transformers' own, with its rules."""
        return self.base.has(change_id)

    def environment(self):
        """What a run record says of this implementation besides its version: the compiled transformers."""
        return {"transformers": str(self.base.version), "torch": torch.__version__,
                "devices": {"cpu": platform.processor() or platform.machine()}}

    def build(self, case: Case, attn="eager", device="cpu", dtype="float32"):
        """transformers' model of the case with its drawn weights loaded, in float32, and the weights it holds. A
        config other than `config_fixed` (a check's own fixed case) is compiled too, at the cost of a compile."""
        if device != "cpu" or dtype not in self.dtypes or attn != "eager":
            raise ValueError(f"{self!r} runs on the cpu in float32 with eager attention only, asked for "
                             f"{device} {dtype} {attn}")
        return self.base.build(case, attn, device, dtype)

    def _compiled(self, model):
        """`model` with its encoder (`model.bert`, or the BertModel itself) compiled once: the task head's layers and
        loss stay eager. The compiled encoder is called without autograd and always with its four inputs, the absent
        ones as BertModel fills them in (mask of ones, token types 0, positions 0..L-1), and its other optional
        parameters (None where the head leaves them out), so that a head and config compile one graph, and every
        head of a config reuses it (dynamo keys on the class, the parameters are inputs)."""
        compiled = self.__dict__.setdefault("_compiled_models", {})
        if id(model) not in compiled:
            if model.__class__.__name__ == "BertModel":
                compiled[id(model)] = (model, _Encoder(model))
            else:
                model.bert = _Encoder(model.bert)
                compiled[id(model)] = (model, model)
        return compiled[id(model)][1]

    def run(self, case: Case, attn="eager", device="cpu", dtype="float32", grad=True):
        """The forward pass with the compiled encoder: the head's outputs, `last_hidden_state`, and with labels
        `loss` and, with `grad`, `loss_grad` (d loss / d logits, through the eager head)."""
        model, weights = self.build(case, attn, device, dtype)
        compiled = self._compiled(model)
        kwargs = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in case.inputs.items()}
        kwargs.update({k: torch.from_numpy(np.array(v, order="C")) for k, v in case.labels.items()})
        if case.num_items_in_batch is not None:
            kwargs["num_items_in_batch"] = case.num_items_in_batch
        start = time.perf_counter()
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        result = forward(compiled, case.head, logit_keys(case.head), kwargs, grad and bool(case.labels))
        if torch._dynamo.utils.counters["stats"]["unique_graphs"] != graphs:
            self.compile_seconds += time.perf_counter() - start
        return to_numpy(result), weights


class _Encoder(torch.nn.Module):
    """A BertModel compiled by `torch.compile(dynamic=True)`, called without autograd and with every input: each
    optional parameter of its forward that the head leaves out is passed as its default `None`, so every head calls
    the compiled frame with the same keyword names (the heads differ: BertLMHeadModel passes encoder_hidden_states,
    encoder_attention_mask, cache and use_cache, BertForSequenceClassification none of them)."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert
        self.compiled = torch.compile(bert, dynamic=True)
        self.config = bert.config
        self.optional = [p.name for p in inspect.signature(bert.forward).parameters.values()
                         if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is None
                         and p.name not in ("input_ids", "attention_mask", "token_type_ids", "position_ids")]

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, **kwargs):
        shape = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.long)
        if token_type_ids is None:
            token_type_ids = torch.zeros(shape, dtype=torch.long)
        if position_ids is None:
            position_ids = torch.arange(shape[-1]).expand(shape).contiguous()
        for name in self.optional:
            kwargs.setdefault(name, None)
        with torch.no_grad():
            return self.compiled(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                 position_ids=position_ids, **kwargs)
