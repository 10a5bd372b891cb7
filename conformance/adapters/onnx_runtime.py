"""The adapter to ONNX Runtime: each head exported from the installed transformers with `torch.onnx.export` (the
TorchScript exporter, `dynamo=False`) and run by `onnxruntime` on the CPU in float32, the deployment path.

`OnnxRuntimeAdapter` follows the port contract's core (`conformance/port.py`) and offers none of the optional
capabilities. transformers builds each model (`TransformersAdapter`, whose drift rules the exported graph follows:
`has` is transformers'); the graph is exported once per (head, config, attention, the set of inputs given), with
every input's axes dynamic and the parameters kept as overridable initializers, so each case feeds its own drawn
weights (rounded to float32, as the reference reads them) to the cached session. Narrowing:

- `dtypes`: float32 only (the exported graph is float32); float64 targets are not applicable;
- `outputs_lacking`: loss and loss_grad. An inference graph takes no labels, and Runtime has no autograd here
  (the QA loss cannot even be exported: its ignore index is a tensor's size, which the exporter cannot make an
  attribute); the heads' logits and `last_hidden_state` are compared, the checks about the loss are not applicable;
- attention: eager and sdpa, as transformers has them, each exported as its own graph.
"""

import collections
import io
import json
import platform
import warnings

import numpy as np
import onnxruntime
import torch

from ..case import Case, logit_keys
from .transformers import TransformersAdapter

onnxruntime.set_default_logger_severity(3)  # initializers kept as graph inputs are our choice: no warning per weight


def _example(name, rank):
    """The input traced for the export: of shape (2, 3) or (2, 3, 4) (no axis of size 1, which tracing could bake
    in), an attention mask with both values (no all-ones shortcut taken in the trace), positions 0..L-1."""
    shape = (2, 3, 4)[:rank]
    if name == "attention_mask":
        return (torch.arange(shape[-1]).expand(shape) < 1 + torch.arange(shape[0]).view(-1, *[1] * (rank - 1))).long()
    if name == "position_ids":
        return torch.arange(shape[-1]).expand(shape).contiguous()
    return torch.zeros(shape, dtype=torch.long)


class _Outputs(torch.nn.Module):
    """The head as a module of positional inputs (`names`) returning a tuple: its outputs named `keys`, then the last
    hidden state of a task head."""

    def __init__(self, model, head, names):
        super().__init__()
        self.m, self.head, self.names = model, head, names

    def forward(self, *args):
        out = self.m(**dict(zip(self.names, args)), output_hidden_states=self.head != "BertModel", return_dict=True)
        keys = logit_keys(self.head)
        extra = (out.hidden_states[-1],) if self.head != "BertModel" else ()
        return tuple(out[k] for k in keys) + extra


class OnnxRuntimeAdapter:
    """Exports transformers' BERT classes to ONNX and runs them with ONNX Runtime (CPU, float32)."""

    name = "onnxruntime"
    dtypes = ("float32",)
    outputs_lacking = ("loss", "loss_grad")
    heads = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel", "BertForNextSentencePrediction",
             "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
             "BertForQuestionAnswering")
    SESSIONS_KEPT = 128
    OPSET = 17

    def __init__(self):
        self.version = onnxruntime.__version__
        self.exporter = TransformersAdapter()
        self.options = onnxruntime.SessionOptions()
        self.options.intra_op_num_threads = 1  # tiny graphs; xdist workers share the cores
        self.options.inter_op_num_threads = 1

    def __repr__(self):
        return f"{self.name} {self.version}"

    def devices(self):
        return ["cpu"]

    def attention_implementations(self):
        return self.exporter.attention_implementations()

    def activations(self):
        return self.exporter.activations()

    def has(self, change_id):
        """transformers' answer: the graph is exported from the installed transformers, whose rules it follows."""
        return self.exporter.has(change_id)

    def environment(self):
        """What a run record says of this implementation besides its version: the exporting transformers and torch."""
        return {"transformers": str(self.exporter.version), "torch": torch.__version__,
                "devices": {"cpu": platform.processor() or platform.machine()}}

    def build(self, case: Case, attn="eager", device="cpu", dtype="float32"):
        """transformers' model of the case with its drawn weights, in float32, and the weights it holds (float32
        values as float64 numpy, named as transformers' state dict names them)."""
        if device != "cpu" or dtype not in self.dtypes:
            raise ValueError(f"{self!r} runs on the cpu in float32 only, asked for {device} {dtype}")
        return self.exporter.build(case, attn, "cpu", dtype)

    def _session(self, case, attn, model, names, shapes):
        """The cached session of the head's graph for these inputs (exported on first use) and its initializers:
        {graph name: state-dict name} of every parameter."""
        key = (case.head, json.dumps(case.config, sort_keys=True), attn, tuple(names))
        sessions = self.__dict__.setdefault("_sessions", collections.OrderedDict())
        if key in sessions:
            sessions.move_to_end(key)
            return sessions[key]
        wrapper = _Outputs(model, case.head, names).eval()
        example = tuple(_example(n, len(s)) for n, s in zip(names, shapes))
        axes = {n: {i: f"{n}_{i}" for i in range(len(s))} for n, s in zip(names, shapes)}
        graph = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, example, graph, dynamo=False, input_names=list(names), dynamic_axes=axes,
                              do_constant_folding=False, keep_initializers_as_inputs=True, opset_version=self.OPSET)
        session = onnxruntime.InferenceSession(graph.getvalue(), self.options, providers=["CPUExecutionProvider"])
        overridable = {i.name for i in session.get_overridable_initializers()}
        parameters = {f"m.{name}" for name, _ in model.named_parameters()}
        unfed = parameters - overridable
        if unfed:  # a parameter baked into the graph would keep the first case's value for every later case
            raise RuntimeError(f"the exported graph does not take {sorted(unfed)[:3]} as initializers")
        while len(sessions) >= self.SESSIONS_KEPT:
            sessions.popitem(last=False)
        sessions[key] = (session, {name: name[2:] for name in sorted(parameters)})
        return sessions[key]

    def run(self, case: Case, attn="eager", device="cpu", dtype="float32", grad=True):
        """The exported graph's outputs for `case.inputs` (labels are not inputs of an inference graph): the head's
        outputs and `last_hidden_state`, as float64 numpy."""
        model, weights = self.build(case, attn, device, dtype)
        names = sorted(case.inputs)
        feed = {k: np.ascontiguousarray(case.inputs[k], dtype=np.int64) for k in names}
        session, initializers = self._session(case, attn, model, names, [feed[k].shape for k in names])
        feed.update({graph: np.asarray(weights[name], dtype=np.float32) for graph, name in initializers.items()})
        values = session.run(None, feed)
        keys = logit_keys(case.head) + (() if case.head == "BertModel" else ("last_hidden_state",))
        return {k: np.asarray(v, dtype=np.float64) for k, v in zip(keys, values)}, weights
