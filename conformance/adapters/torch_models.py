"""torch-side building blocks of the transformers adapter: a built model whose weights load and whose dtype switches
cheaply, the structure a construction must get right, outputs as numpy, and the devices torch sees."""

import collections
import contextlib

import numpy as np
import torch

# the dtype of the parameters (and of float inputs) of each target dtype; under `autocast_bfloat16` the model holds
# float32 parameters and computes under torch.autocast in bfloat16 (`autocast`), as mixed-precision training runs
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16,
                "float16": torch.float16, "autocast_bfloat16": torch.float32}
AUTOCAST = {"autocast_bfloat16": torch.bfloat16}


def autocast(dtype, device):
    """The context a target dtype computes in: torch.autocast to bfloat16 on `device` for `autocast_bfloat16`,
    nothing for the others."""
    if dtype not in AUTOCAST:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AUTOCAST[dtype])


def forward(model, head, keys, kwargs, grad):
    """Run `model(**kwargs)` in its current mode; return torch outputs: the outputs named `keys`, the last hidden
    state (for a task head) and, where the model computed a loss, `loss` and with `grad` `loss_grad` (d loss /
    d each output of `keys`, via autograd; zeros where the loss does not depend on one)."""
    with torch.set_grad_enabled(grad):
        out = model(**kwargs, output_hidden_states=True, return_dict=True)
    result = {key: getattr(out, key) for key in keys}
    if head != "BertModel":
        result["last_hidden_state"] = out.hidden_states[-1]
    loss = getattr(out, "loss", None)
    if loss is not None:
        result["loss"] = loss
        if grad:
            grads = torch.autograd.grad(loss, [result[k] for k in keys], allow_unused=True)
            result["loss_grad"] = {k: (torch.zeros_like(result[k]) if g is None else g) for k, g in zip(keys, grads)}
    return result


class BuiltModel:
    """A built model and what loading weights into it needs: its parameters in `named_parameters` order (tied ones
    once), their names and shapes, every state-dict name of each parameter (`aliases`: name -> the name it is
    listed under), and its current dtype."""

    def __init__(self, model):
        self.model = model
        named = list(model.named_parameters())
        self.names = [name for name, _ in named]
        self.params = [p for _, p in named]
        self.shapes = {name: tuple(p.shape) for name, p in named}
        first = {id(p): name for name, p in named}
        self.aliases = {name: first[id(p)] for name, p in model.named_parameters(remove_duplicate=False)}
        self.dtype = None
        self.loaded = None  # the drawn arrays last loaded, while the parameters hold them
        self.data = {}  # dtype -> (the parameters' tensors in it, the drawn arrays they hold)
        self.swap = not any(b.is_floating_point() for b in model.buffers())  # else every switch converts them

    def read(self, drawn):
        """The parameters as float64 numpy arrays by name (one conversion of all of them), as loaded from `drawn`
        (loaded again first, should anything have changed them since)."""
        self.loaded = None
        self.load(drawn)
        flat = torch.cat([p.detach().reshape(-1) for p in self.params]).to("cpu", torch.float64).numpy()
        offsets = np.cumsum([p.numel() for p in self.params])[:-1]
        return {name: a.reshape(p.shape) for name, p, a in zip(self.names, self.params, np.split(flat, offsets))}

    def to(self, dtype):
        """Make the model compute in `dtype`. The first time, each parameter's data is converted and set, as
        `Module.to` does (`param.data = converted`); after that, it is set back to the tensor it had in that dtype,
        without converting: a test of several targets switches dtype on every case. BERT has no floating-point
        buffers (position_ids and token_type_ids are int64), so parameters are all there is to switch; should a
        version have one, every switch is `model.to`."""
        if dtype == self.dtype:
            return
        if self.dtype is not None and self.swap:
            self.data[self.dtype] = ([p.data for p in self.params], self.loaded)
        if dtype in self.data:
            tensors, self.loaded = self.data[dtype]
            for p, t in zip(self.params, tensors):
                p.data = t
        elif self.swap:  # what `Module.to` does to each parameter, without its walk over every module
            for p in self.params:
                p.data = p.data.to(TORCH_DTYPES[dtype])
            self.loaded = None
        else:
            self.model.to(TORCH_DTYPES[dtype])
            self.loaded = None
        self.dtype = dtype

    def load(self, drawn):
        """Copy the drawn float64 arrays into the parameters (converting to the model's dtype and device), unless
        they are what the model holds already: the same arrays loaded last, in the same dtype (forward and
        autograd do not write to parameters; should an implementation do so, the next forward of the same weights
        differs from the reference, which reads `drawn`). Metamorphic checks run one case several times, and
        consecutive examples often keep their weight seed."""
        if self.loaded is drawn:
            return
        sources = [torch.from_numpy(drawn[name]) for name in self.names]
        with torch.no_grad():
            if self.params[0].device.type == "cpu" and hasattr(torch, "_foreach_copy_"):
                torch._foreach_copy_(self.params, sources)  # one call instead of one per parameter
            else:
                for p, source in zip(self.params, sources):
                    p.copy_(source)
        self.loaded = drawn


TINY = dict(vocab_size=8, hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=4,
            max_position_embeddings=8)  # the sizes of the config in which `TransformersAdapter._construct` checks a head's structure


def structure(model):
    """What construction must get right besides the values: which state-dict names share a parameter (tying),
    the parameters' shapes and dtypes, and the buffers."""
    named = list(model.named_parameters(remove_duplicate=False))
    first = {}
    for name, p in named:
        first.setdefault(id(p), name)
    ties = {name: first[id(p)] for name, p in named}
    shapes = {name: (tuple(p.shape), p.dtype) for name, p in named}
    buffers = {name: (b.dtype, tuple(b.shape), b.tolist()) for name, b in model.named_buffers()}
    return ties, shapes, buffers


RECALLED = 512  # cases whose drawn and held weights are kept (a few tests' worth; ~20-50 KB each)


def recall(adapter, memo, key, compute):
    """`compute()`, kept in the adapter's `memo` (an LRU of RECALLED entries) under `key`."""
    cache = adapter.__dict__.setdefault(memo, collections.OrderedDict())
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = compute()
    while len(cache) > RECALLED:
        cache.popitem(last=False)
    return value


def read_only(a):
    """A read-only view: weights handed out for many cases must not be changed by whoever reads them."""
    view = a.view()
    view.setflags(write=False)
    return view


def to_numpy(x):
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x.detach().to("cpu", torch.float64).numpy().copy()  # a copy: float64 CPU tensors would share memory


def available_devices():
    """cpu always; cuda and mps when torch sees them."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices
