"""Cross-attention and incremental decoding with the KV cache against the reference and the full causal pass.

`decoding.cross.*`: a decoder with cross-attention (encoder_hidden_states, encoder_attention_mask), one forward,
against `reference.decoder`. `decoding.incremental.*`: the sequence fed token by token and in the drawn chunks
with the cache equals the implementation's own full causal pass (metamorphic) and the reference (both). Each of
the three runs is judged alone: a refusal a known difference predicts ends that run as explained, the others go on.
"""

import numpy as np

from reference import BertSpec
from reference.decoder import decode_incremental, decoder_model
from reference.heads import as_float64, lm_prediction_head

from ..check import SDPA_FLOAT64_CAUSAL_MASK, Check, KnownDifference
from ..compare import EPS, Comparison, compare, conditioned, tolerance
from ..judges import input_sensitivity, refusals
from .decoding_cases import decoder_cases

CROSS_FLOAT64_REFUSED = KnownDifference(
    "cross-attention-mask-float32-float16-only",
    "Before 4.21 invert_attention_mask (the encoder mask of cross-attention) knows float32 and float16 only: a "
    "float64 decoder with encoder_hidden_states raises ValueError 'torch.float64 not recognized'.",
    holds=lambda adapter: not adapter.has("cross-attention-mask-any-dtype"),
    raises=r"^ValueError: torch\.\w+ not recognized",
    cases=lambda case: "encoder_hidden_states" in case.inputs,
    targets=lambda target: target.dtype not in ("float32", "float16"),
)
SDPA_FLOAT64_CACHED_CHUNK = KnownDifference(
    "sdpa-float64-cached-chunk-mask",
    "transformers 4.41-4.57 build the sdpa mask of a chunk of more than one token after a cache (float64) the way "
    "they build a padding mask: RuntimeError (overflow converting float64's minimum); fixed by the v5 attention "
    "rewrite.",
    holds=SDPA_FLOAT64_CAUSAL_MASK.holds,
    raises=SDPA_FLOAT64_CAUSAL_MASK.raises,
    cases=lambda case: len(case.inputs["chunks"]) > 1 and max(case.inputs["chunks"][1:]) > 1,
    targets=SDPA_FLOAT64_CAUSAL_MASK.targets,
)
CROSS_EXAMPLES = 20  # caps for the ci profile's time: each example builds a model and runs every target on it,
INCREMENTAL_EXAMPLES = 15  # and incremental decoding runs up to 2 + length forwards per target
KNOWN = (CROSS_FLOAT64_REFUSED, SDPA_FLOAT64_CAUSAL_MASK, SDPA_FLOAT64_CACHED_CHUNK)


def cross_rule(adapter, target):
    """Whether the implementation follows 4.41's sdpa rule of cross-attention (`reference.decoder.cross_allowed`'s
    `causal_when_square`) on `target`: the change `sdpa-cross-attention-not-causal` it lacks, under sdpa."""
    return target.attn == "sdpa" and not adapter.has("sdpa-cross-attention-not-causal")


def reference_outputs(case, weights, chunks=None, causal_when_square=False):
    """The reference's outputs of the decoder `case` (one pass, or incremental in `chunks`): last_hidden_state,
    logits for BertLMHeadModel and BertForMaskedLM, pooler_output for BertModel's one pass; `causal_when_square` as in
    `reference.decoder.cross_allowed`."""
    weights = as_float64(weights)
    spec = BertSpec.from_mapping(case.config)
    inputs = case.inputs
    args = dict(token_type_ids=inputs.get("token_type_ids"), position_ids=inputs.get("position_ids"),
                encoder_hidden_states=inputs.get("encoder_hidden_states"),
                encoder_attention_mask=inputs.get("encoder_attention_mask"), cross_causal_when_square=causal_when_square)
    prefix = "" if case.head == "BertModel" else "bert."
    out = {}
    if chunks is None:
        hidden, pooled, _ = decoder_model(weights, spec, inputs["input_ids"], inputs.get("attention_mask"),
                                          prefix=prefix, add_pooling_layer=case.head == "BertModel", **args)
        if pooled is not None:
            out["pooler_output"] = pooled
    else:
        hidden = decode_incremental(weights, spec, inputs["input_ids"], chunks, inputs.get("attention_mask"),
                                    prefix=prefix, **args)
    out["last_hidden_state"] = hidden
    if case.head in ("BertLMHeadModel", "BertForMaskedLM"):
        out["logits"] = lm_prediction_head(hidden, weights, spec)
    return out


def sensitivity(case, weights, dtype, chunks=None, rule=False):
    """How far the reference's outputs move when every weight moves by eps(`dtype`) of itself in a random direction
    (`judges.input_sensitivity`): the case's own rounding sensitivity (as `conformance.runner.sensitivity`)."""
    return input_sensitivity(lambda moved: reference_outputs(case, moved, chunks, rule),
                             {name: np.asarray(w) for name, w in weights.items()}, dtype)


def _judge(key, actual, expected, target, moved):
    """`compare` at the target's tolerance; a miss is judged by the case's sensitivity (`moved()`, computed only
    then) as an ill-conditioned case (`conformance.compare.conditioned`)."""
    tol = tolerance(target.dtype, target.device)
    result = compare(key, actual, expected, tol)
    if not result.ok and target.dtype in EPS:
        result = conditioned(result, actual, expected, tol, moved()[key.split(".")[-1]])
    return result


class _Run:
    """One run of the implementation: its outputs, or the known difference that explains its refusal."""

    def __init__(self, call, adapter, case, target):
        self.outputs, self.weights, self.explained = None, None, None
        try:
            self.outputs, self.weights = call()
        except Exception as exc:
            for known in KNOWN:
                if known.applies(adapter, case, target) and known.explains(exc):
                    self.explained = known.id
                    return
            raise


def cross_vs_reference(adapter, case, target):
    """One forward of a decoder with cross-attention equals the reference (every output)."""
    run = _Run(lambda: adapter.run_cross(case.copy(), target.attn, target.device, target.dtype), adapter, case, target)
    if run.explained:
        return [Comparison("raises", True, 0.0, f"explained: {run.explained}")]
    rule = cross_rule(adapter, target)
    expected = reference_outputs(case, run.weights, causal_when_square=rule)
    memo = {}

    def moved():
        return memo.setdefault("m", sensitivity(case, run.weights, target.dtype, rule=rule))

    return [_judge(key, run.outputs[key], value, target, moved) for key, value in expected.items()]


def incremental_vs_full(adapter, case, target):
    """Decoding token by token and in the drawn chunks with the cache gives the implementation's own full causal
    pass (metamorphic), and all three equal the reference. A miss is judged by the case's rounding sensitivity
    (`conformance.compare.conditioned`), the metamorphic one by the full pass's."""
    chunks = [int(c) for c in case.inputs["chunks"]]
    length = case.inputs["input_ids"].shape[1]
    plans = {"full": None, "tokens": [1] * length, "chunks": chunks}
    results, runs, rule = [], {}, cross_rule(adapter, target)
    for name, plan in plans.items():
        if name == "chunks" and plan in ([length], [1] * length):
            continue  # the same run as another
        call = ((lambda: adapter.run_cross(case.copy(), target.attn, target.device, target.dtype)) if plan is None
                else (lambda plan=plan: adapter.run_incremental(case.copy(), plan, target.attn, target.device,
                                                                target.dtype)))
        run = _Run(call, adapter, case, target)
        if run.explained:
            results.append(Comparison(f"{name}.raises", True, 0.0, f"explained: {run.explained}"))
            continue
        runs[name] = run
        expected = reference_outputs(case, run.weights, plan, rule)
        memo = {}

        def moved(run=run, plan=plan, memo=memo):
            return memo.setdefault("m", sensitivity(case, run.weights, target.dtype, plan, rule))

        run.moved = moved
        for key, value in expected.items():
            if key in run.outputs:
                results.append(_judge(f"{name}.{key}", run.outputs[key], value, target, moved))
    if "full" in runs:
        for name in ("tokens", "chunks"):
            if name in runs:
                for key, value in runs[name].outputs.items():
                    full, tol = runs["full"].outputs[key], tolerance(target.dtype, target.device)
                    result = compare(f"{name}.{key} vs full pass", value, full, tol)
                    if not result.ok and target.dtype in EPS:  # judged by the full pass's sensitivity, as above
                        result = conditioned(result, value, full, tol, runs["full"].moved()[key])
                    if not result.ok and rule and _rule_splits(case, runs[name].weights, plans[name]):
                        result = Comparison(result.key, True, result.ratio, "",
                                            explained="sdpa-cross-attention-not-causal")
                    results.append(result)
    return results


def _rule_splits(case, weights, plan):
    """Whether 4.41's sdpa cross-attention rule makes decoding in `plan` differ from the full pass (the reference
    under that rule computes different outputs for the two): the metamorphic relation does not hold there, and
    each run was compared with the reference under the rule instead."""
    full = reference_outputs(case, weights, None, True)["last_hidden_state"]
    return not np.array_equal(full, reference_outputs(case, weights, plan, True)["last_hidden_state"])


def cross_refusals(adapter, case, target):
    """Both sides refuse cross-attention layers on a model that is not a decoder (when it is built) and encoder states
    given to a decoder without cross-attention layers (in the forward), with the refusal the release states. Run in
    float32 on the target's device and attention: before 4.21 a float64 decoder refuses encoder states earlier, for
    its dtype (`cross-attention-mask-any-dtype`)."""
    results = []
    for name, changes in (("not a decoder", {"is_decoder": False, "add_cross_attention": True}),
                          ("no cross-attention layers", {"is_decoder": True, "add_cross_attention": False})):
        variant = case.copy()
        variant.config.update(changes)
        _, _, found = refusals(lambda: reference_outputs(variant, {}),
                               lambda: adapter.run_cross(variant.copy(), target.attn, target.device, "float32"),
                               adapter)
        if found is None:
            found = [Comparison("refusal", False, 0.0, "both sides computed: neither refused")]
        results += [Comparison(f"{name}: {c.key}", c.ok, c.ratio, c.message, c.explained) for c in found]
    return results


CROSS = dict(kind="property", prop=cross_vs_reference, known=KNOWN, max_examples=CROSS_EXAMPLES)
INCREMENTAL = dict(kind="property", prop=incremental_vs_full, known=KNOWN, max_examples=INCREMENTAL_EXAMPLES)
CHECKS = [
    Check("decoding.cross.model", "decoding", "BertModel",
          "BertModel as a decoder with cross-attention (encoder_hidden_states, encoder_attention_mask): last hidden "
          "state and pooled output", decoder_cases("BertModel", cross=True), **CROSS),
    Check("decoding.cross.causal_lm", "decoding", "BertLMHeadModel",
          "BertLMHeadModel with cross-attention: logits and last hidden state",
          decoder_cases("BertLMHeadModel", cross=True), **CROSS),
    Check("decoding.cross.masked_lm", "decoding", "BertForMaskedLM",
          "BertForMaskedLM configured as a decoder with cross-attention (it takes encoder_hidden_states too): logits "
          "and last hidden state", decoder_cases("BertForMaskedLM", cross=True), **CROSS),
    Check("decoding.refusals", "decoding", "BertLMHeadModel", cross_refusals.__doc__,
          decoder_cases("BertLMHeadModel", cross=True), kind="property", prop=cross_refusals, once=True,
          max_examples=5),
    Check("decoding.incremental.causal_lm", "decoding", "BertLMHeadModel",
          incremental_vs_full.__doc__ + " (BertLMHeadModel, with or without cross-attention)",
          decoder_cases("BertLMHeadModel"), **INCREMENTAL),
    Check("decoding.incremental.model", "decoding", "BertModel",
          incremental_vs_full.__doc__ + " (BertModel as a decoder, with or without cross-attention)",
          decoder_cases("BertModel"), **INCREMENTAL),
]
