"""Where checks run: load the adapter, make the targets (device x dtype x attention), pair checks with targets."""

import importlib
import itertools
from dataclasses import dataclass

from .compare import REDUCED
from .port import dtypes, missing_core, not_offered
from .records import NOT_APPLICABLE
from .registry import CHECKS
from .runner import DEFAULT_ADAPTER
DEFAULT_DTYPES = "float64,float32,bfloat16,float16,autocast_bfloat16"


@dataclass(frozen=True)
class Target:
    """Where and how the implementation runs: device, dtype and attention implementation."""

    device: str
    dtype: str
    attn: str

    @property
    def id(self):
        return f"{self.device}-{self.dtype}-{self.attn}"

    @classmethod
    def parse(cls, text):
        device, dtype, attn = text.split("-")
        return cls(device, dtype, attn)


class PortError(TypeError):
    """An adapter that lacks part of the port contract's required core (`conformance.port`)."""


def load_adapter(spec=DEFAULT_ADAPTER):
    """An instance of the adapter class named `module:Class`; PortError, naming every missing member at once, when
    it lacks part of the required core."""
    module, _, name = spec.partition(":")
    adapter = getattr(importlib.import_module(module), name)()
    missing = missing_core(adapter)
    if missing:
        raise PortError(f"adapter {spec} lacks {', '.join(missing)} of the port contract's core (conformance/port.py)")
    return adapter


def make_targets(adapter, device=None, dtype=DEFAULT_DTYPES, attn=None):
    """The targets of comma-separated devices (default: every one the adapter sees), dtypes and attention
    implementations (default: every one the adapter has)."""
    devices = device.split(",") if device else adapter.devices()
    attns = (attn or ",".join(adapter.attention_implementations())).split(",")
    return [Target(d, t, a) for d, t, a in itertools.product(devices, dtype.split(","), attns)]


def check_targets(adapter, all_targets, checks=CHECKS):
    """Every (check, target, [reasons to skip]) the suite runs, in collection order: a check that is the same on
    every target (`once`) runs on the first; one that is not a reference comparison, or not run under every
    attention, runs under the first attention only; only a check marked `reduced_precision` runs on the reduced
    precisions (bfloat16, float16, autocast: the forward of the encoder and every head, with its loss)."""
    pairs = []
    for check, target in itertools.product(checks, all_targets):
        if check.once and target != all_targets[0]:
            continue
        if target.dtype in REDUCED and not check.reduced_precision:
            continue
        if (not check.every_attention or check.kind in ("metamorphic", "error")) and target.attn != all_targets[0].attn:
            continue
        skips = []
        not_applicable = not_offered(adapter, check) or check.applies(adapter)
        if not_applicable:
            skips.append(f"{NOT_APPLICABLE} {not_applicable}")
        if check.cpu_only and target.device != "cpu":
            skips.append("out-of-range targets are device-side asserts off the CPU, which poison the CUDA context; "
                         "error conformance runs on the CPU")
        if dtypes(adapter) and target.dtype not in dtypes(adapter):
            skips.append(f"{NOT_APPLICABLE} {adapter.name} computes in {', '.join(dtypes(adapter))} only")
        if target.device == "mps" and target.dtype == "float64":
            skips.append("MPS has no float64")
        pairs.append((check, target, skips))
    return pairs
