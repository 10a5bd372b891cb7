"""A BERT port from zero, checked by bert-conformance: the README's "Check your own BERT" tutorial.

`TinyBert` is a complete adapter (the port contract, `conformance/port.py`) for a BERT written here in a page of
plain torch: the encoder (`BertModel`) and one task head (`BertForSequenceClassification`), eager attention, on the
CPU. It offers none of the optional capabilities (schedules, AdamW, collator, checkpoint), so those checks are
`not_applicable` in its own words, and neither does it build the other heads.

    python -m conformance --adapter examples.tiny_bert:TinyBert run --report-dir /tmp/tiny

runs every check that applies and writes the report; `tests/test_port.py` runs it, and seeds a bug to show the
failure and its reproduce command.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from conformance.case import draw_weights

DTYPES = {"float64": torch.float64, "float32": torch.float32}
ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_new": lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3)))),
    "relu": torch.relu,
    "tanh": torch.tanh,
}


def parameter_shapes(head, config):
    """Every parameter's shape, named as transformers' state dict names it (a task head's encoder under `bert.`)."""
    h, i = config["hidden_size"], config["intermediate_size"]
    prefix = "" if head == "BertModel" else "bert."
    shapes = {"embeddings.word_embeddings.weight": (config["vocab_size"], h),
              "embeddings.position_embeddings.weight": (config["max_position_embeddings"], h),
              "embeddings.token_type_embeddings.weight": (config["type_vocab_size"], h),
              "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
              "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,)}
    for n in range(config["num_hidden_layers"]):
        layer = f"encoder.layer.{n}."
        for name, (rows, cols) in {"attention.self.query": (h, h), "attention.self.key": (h, h),
                                   "attention.self.value": (h, h), "attention.output.dense": (h, h),
                                   "intermediate.dense": (i, h), "output.dense": (h, i)}.items():
            shapes[layer + name + ".weight"], shapes[layer + name + ".bias"] = (rows, cols), (rows,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[layer + norm + ".weight"], shapes[layer + norm + ".bias"] = (h,), (h,)
    shapes = {prefix + k: v for k, v in shapes.items()}
    if head == "BertForSequenceClassification":
        shapes.update({"classifier.weight": (config["num_labels"], h), "classifier.bias": (config["num_labels"],)})
    return shapes


def layer_norm(x, p, name, eps):
    return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p[name + ".bias"], eps)


def linear(x, p, name):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def encode(p, prefix, config, input_ids, attention_mask=None, token_type_ids=None, position_ids=None):
    """The encoder: embeddings, then each layer's self-attention and feed-forward, each with a residual LayerNorm;
    returns (last hidden state, pooled output)."""
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    batch, length = input_ids.shape
    positions = torch.arange(length).expand(batch, length) if position_ids is None else position_ids
    types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    x = (p[prefix + "embeddings.word_embeddings.weight"][input_ids]
         + p[prefix + "embeddings.position_embeddings.weight"][positions]
         + p[prefix + "embeddings.token_type_embeddings.weight"][types])
    x = layer_norm(x, p, prefix + "embeddings.LayerNorm", eps)
    mask = torch.ones(batch, length) if attention_mask is None else attention_mask
    additive = (1.0 - mask.to(x.dtype))[:, None, None, :] * torch.finfo(x.dtype).min
    for n in range(config["num_hidden_layers"]):
        layer = f"{prefix}encoder.layer.{n}."

        def split(t):  # (batch, length, hidden) -> (batch, heads, length, head size)
            return t.view(batch, length, heads, -1).transpose(1, 2)

        q, k, v = (split(linear(x, p, layer + "attention.self." + w)) for w in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + additive
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, length, -1)
        x = layer_norm(linear(context, p, layer + "attention.output.dense") + x, p,
                       layer + "attention.output.LayerNorm", eps)
        inner = ACTIVATIONS[config["hidden_act"]](linear(x, p, layer + "intermediate.dense"))
        x = layer_norm(linear(inner, p, layer + "output.dense") + x, p, layer + "output.LayerNorm", eps)
    return x, torch.tanh(linear(x[:, 0], p, prefix + "pooler.dense"))


def classification_loss(config, logits, labels):
    """transformers' rule: regression (MSE) for one label, single-label cross-entropy (ignoring -100) for integer
    labels, multi-label BCE otherwise, unless `problem_type` says which."""
    problem = config.get("problem_type") or ("regression" if config["num_labels"] == 1 else
                                             "single_label_classification" if not labels.is_floating_point() else
                                             "multi_label_classification")
    if problem == "regression":
        return F.mse_loss(logits.squeeze(), labels.squeeze()) if config["num_labels"] == 1 else F.mse_loss(logits, labels)
    if problem == "single_label_classification":
        return F.cross_entropy(logits.view(-1, config["num_labels"]), labels.view(-1).long())
    return F.binary_cross_entropy_with_logits(logits, labels)


class TinyBert:
    """The adapter of the BERT above: the port contract's core and nothing optional."""

    name = "tiny-bert"
    version = "0.1"
    heads = ("BertModel", "BertForSequenceClassification")
    dtypes = tuple(DTYPES)  # what it computes in: the bfloat16, float16 and autocast targets are not applicable

    def devices(self):
        return ["cpu"]

    def attention_implementations(self):
        return ["eager"]

    def activations(self):
        return sorted(ACTIVATIONS)

    def has(self, change_id):
        """This port follows the newest rule of every change in the drift catalog."""
        return True

    def build(self, case, attn="eager", device="cpu", dtype="float64"):
        """The parameters of `case.head`, drawn from the case's seed, as torch tensors in `dtype`; and the weights
        it holds, as float64 numpy (read back, so they carry the dtype's rounding)."""
        drawn = draw_weights(parameter_shapes(case.head, case.config), case.weights_seed)
        params = {k: torch.tensor(v, dtype=DTYPES[dtype]) for k, v in drawn.items()}
        return params, {k: t.double().numpy() for k, t in params.items()}

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        """The forward pass: the head's outputs, the last hidden state, and with labels the loss and d loss/d logits."""
        params, weights = self.build(case, attn, device, dtype)
        inputs = {k: torch.tensor(np.array(v)) for k, v in case.inputs.items()}  # copies: the case stays as it is
        prefix = "" if case.head == "BertModel" else "bert."
        hidden, pooled = encode(params, prefix, case.config, **inputs)
        if case.head == "BertModel":
            return {"last_hidden_state": hidden.double().numpy(), "pooler_output": pooled.double().numpy()}, weights
        logits = linear(pooled, params, "classifier").detach().requires_grad_(True)
        outputs = {"logits": logits, "last_hidden_state": hidden}
        if case.labels:
            labels = torch.tensor(np.array(case.labels["labels"]))
            labels = labels.to(logits.dtype) if labels.is_floating_point() else labels
            outputs["loss"] = loss = classification_loss(case.config, logits, labels)
            if grad:
                outputs["loss_grad"] = {"logits": torch.autograd.grad(loss, logits)[0]}
        return {k: ({kk: vv.detach().double().numpy() for kk, vv in v.items()} if isinstance(v, dict)
                    else v.detach().double().numpy()) for k, v in outputs.items()}, weights

