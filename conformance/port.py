"""The port contract: what an adapter offers the suite, so that any BERT implementation can be checked.

An adapter is a class the suite instantiates with no arguments (`--adapter module:Class`; the module must be
importable, e.g. from the current directory or an installed package). It has the required core, `Port`, and any of
the optional capabilities below. A check whose capability the adapter lacks, or whose model class is not among its
`heads`, is `not_applicable` in the adapter's own words (`not_offered`); nothing the adapter lacks is called.
`conformance/adapters/transformers.py` is the complete example; the README's "Check your own BERT" walks through a
minimal one (`tests/tiny_port.py`).

The core (`Port`):
- `name`, `version`: how the report names the implementation (its records go to `reports/records/<name>-<version>
  .json`).
- `devices()`, `attention_implementations()`, `activations()`: the devices it runs on ("cpu", ...), its attention
  implementations (the first is the default, e.g. ["eager"]) and the `hidden_act` names it knows.
- `has(change_id)`: whether it follows the new rule of a drift catalog change (`conformance/drift.py`); a port that
  follows none of transformers' later rules answers by the rule it implements.
- `build(case, attn, device, dtype) -> (model, weights)`: the model of `case.head` (a transformers class name such as
  "BertForSequenceClassification") configured by `case.config` (BertConfig fields), with weights drawn by
  `conformance.case.draw_weights(shapes, case.weights_seed)` for its parameter shapes, loaded. `weights` maps each
  parameter name, as transformers' state dict names it (tied parameters under each of their names), to the float64
  numpy array the model holds; the reference computes from these.
- `run(case, attn, device, dtype, grad=True) -> (outputs, weights)`: the forward pass on `case.inputs` (numpy arrays,
  possibly non-contiguous: copy them) and `case.labels`, in eval mode; `outputs` maps the head's output names
  (`conformance.case.logit_keys(case.head)`, `last_hidden_state`, with labels `loss` and, with `grad`, `loss_grad`:
  d loss / d each logits output) to numpy arrays. It must not write into the case.

Narrowing and port rules (optional attributes; the defaults are transformers' own, see the functions below):
- `config_fixed`: {BertConfig field: value} the port cannot vary (e.g. `{"layer_norm_eps": 1e-12}`); the strategies
  draw configs with these values only. Default: nothing fixed.
- `inputs_lacking`: the optional inputs its forward does not take (e.g. `("position_ids",)`); never drawn.
- `outputs_lacking`: the outputs its `run` never returns (e.g. `("loss", "loss_grad")`: an inference graph has no
  loss and no autograd); comparisons leave them out and the checks about them are not applicable.
- `dtypes`: the dtypes it computes in (e.g. `("float32",)`); targets in another dtype are not applicable.
- `ignore_index`: the label its losses leave out, an int or {head: int} for the heads that differ from -100; the
  strategies draw it for ignored labels and the reference ignores it.
- `refusals`: {refusal kind: `reference.errors.Refusal`} for bad input it refuses otherwise than the reference
  expects (another exception class or message); error checks expect the port's own (`check.expected_refusal`).
"""

from dataclasses import dataclass
from typing import Protocol, Tuple, runtime_checkable

HEADS = ("BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
         "BertForQuestionAnswering")


@runtime_checkable
class Port(Protocol):
    """The required core of every adapter (see the module docstring for each member's meaning)."""

    name: str
    version: object

    def devices(self): ...
    def attention_implementations(self): ...
    def activations(self): ...
    def has(self, change_id): ...
    def build(self, case, attn="eager", device="cpu", dtype="float64"): ...
    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True): ...


@dataclass(frozen=True)
class Capability:
    """An optional part of the contract: the members (methods, or attributes such as `collator_has_numpy`) an
    adapter offers for it, and the checks that need it."""

    name: str
    description: str
    methods: Tuple[str, ...]
    check_prefixes: Tuple[str, ...]

    def offered_by(self, adapter):
        return not self.missing(adapter)

    def missing(self, adapter):
        return [m for m in self.methods if not hasattr(adapter, m)]


CAPABILITIES = (
    Capability("schedules", "learning-rate schedules", ("schedule_names", "lr_curve"), ("schedule.",)),
    Capability("adamw", "an AdamW optimizer", ("adamw_variants", "adamw"), ("optim.torch.", "optim.transformers.",
                                                                          "errors.adamw.")),
    Capability("decay", "the Trainer's weight-decay parameter groups", ("decay_parameter_names",),
               ("optim.no_decay_grouping",)),
    Capability("collator", "an MLM masking collator", ("mlm_collate", "collator_replacement_configurable",
                                                       "collator_has_numpy"), ("masking.", "errors.masking.")),
    Capability("checkpoint", "loading a real checkpoint and its tokenizer",
               ("checkpoint_tokenizer", "encode", "save_checkpoint", "checkpoint_model", "loading_report",
                "set_parameters", "run_model", "parameter_names", "parameter"),
               ("checkpoint.",)),
    Capability("gradients", "the gradient of the loss with respect to every parameter", ("parameter_grads",),
               ("gradients.",)),
    Capability("decoder", "a decoder with cross-attention and a KV cache", ("run_cross", "run_incremental"),
               ("decoding.",)),
    Capability("options", "head options and forward contracts (label aliases, calls in sequence on one model, the "
               "caller's tensors after a forward)", ("run_renamed", "run_in_sequence", "inputs_after_forward"),
               ("options.",)),
    Capability("catalog", "the catalog of what a release offers (config fields, forward keywords, activations, "
               "collator fields)", ("surface_catalog",), ("catalog.",)),
    Capability("train", "train mode (dropout, gradient checkpointing)", ("train_run",),
               ("train.eval_equivalence.", "train.dropout", "train.checkpointing.", "train.chunking")),
    Capability("steps", "optimizer steps end to end", ("train_steps",), ("train.steps.",)),
    Capability("surface", "forward arguments and outputs beyond the default forward (any mask, inputs_embeds, "
               "head_mask, output_attentions, output_hidden_states)", ("run_surface",), ("surface.",)),
    Capability("port_checkpoint", "loading the real checkpoint with its own loader",
               ("load_checkpoint", "run_checkpoint"), ("checkpoint_port.",)),
    Capability("trainer", "what a Trainer builds for a default TrainingArguments (optimizer, groups, schedule, "
               "gradient accumulation)", ("trainer_unavailable", "trainer_defaults", "trainer_accumulation"),
               ("train.trainer.",)),
)
CAPABILITIES_BY_NAME = {c.name: c for c in CAPABILITIES}
OUTPUT_CHECKS = {  # the checks whose point is an output a port may not compute (`outputs_lacking`)
    "loss": ("loss.", "errors.out_of_range.", "errors.wrong_shape.", "errors.float_dtype.",
             "metamorphic.padding_invariance.", "metamorphic.choice_permutation", "metamorphic.ignored_zero_grad."),
    "loss_grad": ("metamorphic.ignored_zero_grad.",),
}
DECODER_CHECKS = ("encoder.causal", "head.causal_lm", "loss.causal_lm.", "metamorphic.ignored_zero_grad.causal_lm",
                  "checkpoint.head.causal_lm")  # checks of a decoder (is_decoder, BertLMHeadModel)


def capability_of(check):
    """The capability `check` needs (a `Capability`), or None for a core check."""
    return next((c for c in CAPABILITIES if check.id.startswith(c.check_prefixes)), None)


def heads(adapter):
    """The model classes the adapter builds: its `heads` attribute, or all of `HEADS`."""
    return tuple(getattr(adapter, "heads", HEADS))


def not_offered(adapter, check):
    """Why `check` does not apply to what `adapter` offers (without the "not applicable:" prefix), or None."""
    who = f"{getattr(adapter, 'name', type(adapter).__name__)} {getattr(adapter, 'version', '')}".strip()
    capability = capability_of(check)
    if capability is not None and not capability.offered_by(adapter):
        return f"{who} does not offer {capability.description} (no {', '.join(capability.missing(adapter))})"
    lacking = [o for o in outputs_lacking(adapter) if check.id.startswith(OUTPUT_CHECKS.get(o, ()))]
    if lacking:
        return f"{who} computes no {', '.join(lacking)} (its outputs_lacking)"
    if check.id.startswith(DECODER_CHECKS) and "BertLMHeadModel" not in heads(adapter):
        return f"{who} has no decoder (BertLMHeadModel is not among its heads)"
    if check.head in HEADS and check.head not in heads(adapter):
        return f"{who} has no {check.head}"
    return None


def missing_core(adapter):
    """The members of the required core that `adapter` lacks, all at once (empty when it has them all)."""
    missing = [m for m in ("name", "version") if not hasattr(adapter, m)]
    return missing + [m for m in ("devices", "attention_implementations", "activations", "has", "build", "run")
                      if not callable(getattr(adapter, m, None))]


IGNORE_INDEX = -100  # transformers' ignored label


def config_fixed(adapter):
    """The BertConfig fields `adapter` fixes, {field: value} (empty by default)."""
    return dict(getattr(adapter, "config_fixed", {}))


def inputs_lacking(adapter):
    """The optional inputs `adapter`'s forward does not take (none by default)."""
    return tuple(getattr(adapter, "inputs_lacking", ()))


def outputs_lacking(adapter):
    """The outputs `adapter`'s `run` never returns (e.g. `("loss", "loss_grad")` for an inference graph), none by
    default: reference comparisons leave them out, and the checks about them (`OUTPUT_CHECKS`) are not applicable."""
    return tuple(getattr(adapter, "outputs_lacking", ()))


def dtypes(adapter):
    """The dtypes `adapter` computes in (its `dtypes`; default: any). A target in another dtype is not applicable."""
    return tuple(getattr(adapter, "dtypes", ())) or None


def ignore_index(adapter, head):
    """The label `adapter`'s `head` leaves out of its loss: its `ignore_index` (an int, or a mapping from the heads
    that differ), -100 by default."""
    value = getattr(adapter, "ignore_index", IGNORE_INDEX)
    return value.get(head, IGNORE_INDEX) if isinstance(value, dict) else value


def refusals(adapter):
    """The refusals `adapter` makes instead of the reference's, {kind: Refusal} (none by default)."""
    return dict(getattr(adapter, "refusals", {}))


def narrowing(adapter, head):
    """What the strategies draw for `adapter`'s `head`: keyword arguments of `conformance.strategies.cases`."""
    return {"fixed": config_fixed(adapter), "lacking": inputs_lacking(adapter),
            "ignore_index": ignore_index(adapter, head)}
