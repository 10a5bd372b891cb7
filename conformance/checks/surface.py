"""The model's wider surface against the reference: relative positions, any attention mask, attention probabilities and every hidden state, inputs_embeds, head_mask, the untied decoder.

Each check draws `SurfaceBatch`es (`surface_draw`): a head among those that take its features, and several
`SurfaceCase`s with those features on one config and weight seed; it runs each through the adapter's `run_surface`
and compares every output the model returns (the head's outputs, every hidden state, every layer's attention
probabilities) with the reference, which follows the release's rules (`rules`, through `adapter.has`).
"""

import re
from dataclasses import replace

import numpy as np

from reference import BertSpec
from reference import heads as ref_heads

from ..batch import each_case
from ..case import logit_keys
from ..check import SDPA_FLOAT64_CAUSAL_MASK, Check
from ..known_bugs import judged
from ..compare import CONDITIONING, EPS, Comparison, compare, conditioned, rounding, tolerance
from ..judges import input_sensitivity
from .surface_draw import (DECODER_HEADS, FLAT_MASK_HEADS, SURFACE_HEADS, UNTIED_HEADS, SurfaceBatch,
                           surface_batch_strategy)

ADDITIVE_MASK = -10000.0  # the masked value of transformers before 4.21
ADDITIVE_MASK_ROUNDING = "additive-mask-rounding"


def mask_4d_rule(adapter, target, mask):
    """How the release takes a 4D attention mask (`reference.attention.mask_4d`): refused before 5.0; from 5.0 the
    attention implementation's own prepared mask: eager adds it to the scores whatever its dtype, sdpa (torch) takes
    a bool mask as a keep-mask, a float one as an additive bias and refuses an integer one."""
    if not adapter.has("attention-mask-4d-prepared"):
        return "refuse"
    if target.attn != "sdpa":
        return "additive"
    kind = np.asarray(mask).dtype.kind
    return "keep" if kind == "b" else "additive" if kind == "f" else "refuse"


def mask_4d_refusal(adapter):
    """The exception a refused 4D mask raises: ValueError before 5.0 (get_extended_attention_mask: wrong shape),
    RuntimeError from 5.0 (torch's sdpa refuses an integer mask)."""
    return RuntimeError if adapter.has("attention-mask-4d-prepared") else ValueError


def rules(adapter, target, case=None):
    """The release's rules for the reference: the fully-masked-query rule (`reference.attention`), whether
    relative positions and head_mask still exist, whether sdpa returns attention probabilities, the untied
    decoder's bias, and for a `case` with a 4D mask, how it is taken (`mask_4d_rule`)."""
    sdpa = target.attn == "sdpa"
    if sdpa and adapter.has("sdpa-fully-masked-query-zero"):
        fully_masked = "zero"
    else:
        fully_masked = "uniform" if adapter.has("attention-mask-finfo-min") else "all_keys"
    return {"fully_masked": fully_masked,
            "relative": not adapter.has("relative-position-embeddings-removed"),
            "head_mask": not adapter.has("head-mask-removed"),
            "attentions": not (sdpa and adapter.has("sdpa-output-attentions-dropped")),
            "decoder_bias": "own" if adapter.has("untied-decoder-own-bias") else "shared",
            "mask_4d": "refuse" if case is None or np.ndim(case.inputs.get("attention_mask")) != 4
            else mask_4d_rule(adapter, target, case.inputs["attention_mask"])}


def surface_spec(config, rule):
    """The BertSpec the release computes with: a relative `position_embedding_type` is absolute where the release
    no longer has relative positions (it ignores the field)."""
    spec = BertSpec.from_mapping(config)
    return spec if rule["relative"] else replace(spec, position_embedding_type="absolute")


def expected_outputs(case, weights, rule):
    """The reference's outputs of `case` under `rule`, flattened: the head's outputs, `last_hidden_state` (a task
    head's only with hidden states asked for), `hidden_states.i` and `attentions.i` when asked for."""
    inputs = dict(case.inputs)
    record = {}
    # transformers takes a [batch, query, key] or 4D mask as the whole mask: a decoder adds no causal mask to it
    surface = {"fully_masked": rule["fully_masked"], "record": record, "mask_4d": rule.get("mask_4d", "refuse"),
               "causal_3d": False,
               "inputs_embeds": inputs.pop("inputs_embeds", None)}
    head_mask = inputs.pop("head_mask", None)
    if rule["head_mask"]:
        surface["head_mask"] = head_mask
    inputs.setdefault("input_ids", None)
    kw = {"decoder_bias": rule["decoder_bias"]} if case.head in ("BertForMaskedLM", "BertForPreTraining",
                                                                 "BertLMHeadModel") else {}
    out = ref_heads.HEADS[case.head](weights, surface_spec(case.config, rule), **inputs, surface=surface, **kw)
    flat = {key: out[key] for key in logit_keys(case.head)}
    options = getattr(case, "options", {})  # a known bug's counterexample may be read as a plain Case
    if case.head == "BertModel" or options.get("output_hidden_states"):
        flat["last_hidden_state"] = out["last_hidden_state"]
    if options.get("output_hidden_states"):
        flat.update({f"hidden_states.{i}": h for i, h in enumerate(record["hidden_states"])})
    if options.get("output_attentions") and rule["attentions"]:
        flat.update({f"attentions.{i}": a for i, a in enumerate(record["attentions"])})
    return flat


def _flat_actual(actual):
    flat = {k: v for k, v in actual.items() if k not in ("hidden_states", "attentions")}
    for key in ("hidden_states", "attentions"):
        flat.update({f"{key}.{i}": v for i, v in enumerate(actual.get(key) or ())})
    return flat


def _sensitivity(case, weights, rule, dtype, base):
    """How far the reference's outputs move when every weight and float input (`inputs_embeds`, a float mask) is
    moved by eps(`dtype`) of itself in a random direction (`judges.input_sensitivity`), as rounding them may."""
    floats = {k: v for k, v in case.inputs.items()
              if k == "inputs_embeds" or (k == "attention_mask" and v.dtype.kind == "f")}
    return input_sensitivity(
        lambda moved: expected_outputs(replace(case, inputs={**case.inputs, **moved["inputs"]}), moved["weights"], rule),
        {"weights": dict(weights), "inputs": floats}, dtype, base=base)


def _fully_masked(case, spec):
    mask = case.inputs.get("attention_mask")
    if mask is None or mask.ndim == 4:
        return False
    allowed = (mask if mask.ndim == 3 else mask[:, None, :]).astype(bool)
    if spec.is_decoder:
        allowed = allowed & np.tril(np.ones((mask.shape[1],) * 2, dtype=bool))
    return not allowed.any(axis=-1).all()


def surface_forward(adapter, case, target, reference_case=None):
    """Every output the model returns for a surface case (head outputs, hidden states, attention probabilities)
    equals the reference's (of `reference_case` when given: what the release reads `case` as) under the release's
    rules; where the release returns no attention probabilities under sdpa, none are returned."""
    rule = rules(adapter, target, case)
    try:
        actual, weights = adapter.run_surface(case.copy(), target.attn, target.device, target.dtype)
    except Exception as exc:
        if SDPA_FLOAT64_CAUSAL_MASK.applies(adapter, case, target) and SDPA_FLOAT64_CAUSAL_MASK.explains(exc):
            return [Comparison("raises", True, 0.0, f"explained: {SDPA_FLOAT64_CAUSAL_MASK.id}",
                               explained=SDPA_FLOAT64_CAUSAL_MASK.id)]
        raise
    case = case if reference_case is None else reference_case
    expected = expected_outputs(case, weights, rule)
    results = []
    if getattr(case, "options", {}).get("output_attentions") and not rule["attentions"]:
        returned = len(actual.get("attentions") or ())
        results.append(Comparison("attentions", returned == 0, 0.0 if returned == 0 else np.inf,
                                  "" if returned == 0 else f"sdpa returned {returned} attention tensors; this "
                                  "release's sdpa returns none"))
    actual = _flat_actual(actual)
    tol = tolerance(target.dtype, target.device)
    for key, value in expected.items():
        if key not in actual:
            results.append(Comparison(key, False, np.inf, f"{key}: transformers returned no such output"))
        else:
            results.append(compare(key, actual[key], value, tol))
    for key in actual:
        if key not in expected and key.split(".")[0] in ("hidden_states", "attentions"):
            results.append(Comparison(key, False, np.inf, f"{key}: returned, but not asked for / not expected"))
    if all(r.ok for r in results) or target.dtype not in EPS:
        return results
    moved = _sensitivity(case, weights, rule, target.dtype, expected)
    # before 4.21 the mask adds -10000 to a fully masked query's scores, rounding them at 10000 * eps
    additive = rule["fully_masked"] == "all_keys" and _fully_masked(case, BertSpec.from_mapping(case.config))
    for i, r in enumerate(results):
        if r.ok or r.key not in expected or r.key not in actual:
            continue
        results[i] = conditioned(r, actual[r.key], expected[r.key], tol, moved[r.key])
        if not results[i].ok and additive:
            floor = CONDITIONING * rounding(target.dtype, 2, -ADDITIVE_MASK)
            judged = compare(r.key, actual[r.key], expected[r.key], tol, floor=floor)
            if judged.ok:
                judged.explained = ADDITIVE_MASK_ROUNDING
                results[i] = judged
    return results


def mask_3d(adapter, case, target):
    """A [batch, query, key] attention mask gives each query its own visible keys, the whole mask (4.x eager, and
    sdpa from 4.45), or is refused where the release no longer takes one: 5.x (RuntimeError while expanding it) and
    4.41-4.44 sdpa (ValueError while reading it as [batch, key]; a float64 decoder's causal sdpa mask overflows
    first, the known difference sdpa-float64-causal-padding-mask). Where refused, a mask of all 1 is dropped first
    (in 4.41-4.44 sdpa a decoder's only) and the outputs are those without a mask, causal for a decoder."""
    early_sdpa = target.attn == "sdpa" and not adapter.has("sdpa-attention-mask-3d-expanded")
    if not (adapter.has("attention-mask-3d-refused") or early_sdpa):
        return surface_forward(adapter, case, target)
    mask = case.inputs["attention_mask"]
    if mask.all() and (case.config.get("is_decoder") or not early_sdpa):
        unmasked = replace(case, inputs=dict(case.inputs, attention_mask=np.ones(mask.shape[:2], dtype=mask.dtype)))
        return surface_forward(adapter, case, target, reference_case=unmasked)
    expected = ValueError if early_sdpa else RuntimeError
    known = SDPA_FLOAT64_CAUSAL_MASK
    try:
        adapter.run_surface(case.copy(), target.attn, target.device, target.dtype)
    except Exception as exc:
        if known.applies(adapter, case, target) and re.search(known.raises, f"{type(exc).__name__}: {exc}"):
            return [Comparison("raises", True, 0.0, f"explained: {known.id}")]
        if not isinstance(exc, expected):
            raise
        return [Comparison("refusal", True, 0.0, f"refused: {type(exc).__name__}")]
    return [Comparison("refusal", False, np.inf, f"a 3D attention mask was accepted; this release refuses it "
                       f"({expected.__name__})")]


def masks_4d(adapter, case, target):
    """A 4D attention mask [batch, 1 or heads, query, key] (int, bool, float 0/1 or additive float) is taken by the
    release's rule (`mask_4d_rule`): refused with its exception, or the outputs equal the reference's keep-mask or
    additive-bias reading of it (the mask is the whole mask: a decoder adds no causal mask)."""
    if mask_4d_rule(adapter, target, case.inputs["attention_mask"]) != "refuse":
        return surface_forward(adapter, case, target)
    expected = mask_4d_refusal(adapter)
    try:
        adapter.run_surface(case.copy(), target.attn, target.device, target.dtype)
    except expected as exc:
        return [Comparison("refusal", True, 0.0, f"refused: {type(exc).__name__}")]
    return [Comparison("refusal", False, np.inf, f"a {case.inputs['attention_mask'].dtype} 4D attention mask was "
                       f"accepted; this release refuses it ({expected.__name__})")]


def _surface(name, heads, description, features, known=(), max_examples=5, prop=surface_forward, every_attention=True,
             **kw):
    """A surface check: each example a `SurfaceBatch` on a head drawn from `heads` (shrinking to the first, the
    check's `head`), its property run on every sub-case."""
    if "BertLMHeadModel" in heads:
        known = tuple(known) + (SDPA_FLOAT64_CAUSAL_MASK,) if SDPA_FLOAT64_CAUSAL_MASK not in known else known
    check = Check(f"surface.{name}", "surface", heads[0], description, surface_batch_strategy(heads, features, **kw),
                  kind="property", prop=prop, known=known, max_examples=max_examples, every_attention=every_attention,
                  case_type=SurfaceBatch)

    def one(adapter, case, target):  # a sub-case that fails as a known bug of the check holds as that bug
        return judged(check, adapter, case, target, prop(adapter, case, target))
    one.__doc__ = prop.__doc__
    return replace(check, prop=each_case(one))


ENCODERS = SURFACE_HEADS  # every head; BertLMHeadModel is drawn as a decoder (is_decoder=True)
BIDIRECTIONAL = tuple(h for h in SURFACE_HEADS if h != "BertLMHeadModel")  # relative positions in a decoder: .causal

CHECKS = [
    _surface("relative_positions", BIDIRECTIONAL,
             "position_embedding_type relative_key / relative_key_query with any mask, on every head (4.x; 5.x "
             "ignores the field and computes absolute positions)", {"relative": True, "mask": "holes"}),
    _surface("relative_positions.causal", DECODER_HEADS[::-1],
             "relative positions in a decoder (causal attention) with any padding", {"relative": True, "mask": "holes"},
             is_decoder=True),
    _surface("masks", ENCODERS,
             "any attention mask: right and left padding, holes, fully masked rows (each release's masking rule)",
             {"mask": "any"}),
    _surface("masks.causal", DECODER_HEADS, "a decoder's attention with any mask, fully masked queries included",
             {"mask": "any"}, is_decoder=True),
    _surface("masks_3d", FLAT_MASK_HEADS, "a [batch, query, key] attention mask, the whole mask (a decoder adds no causal "
             "mask; refused from 5.0, and under sdpa before 4.45)", {"mask": "3d"}, prop=mask_3d),
    _surface("masks_4d", FLAT_MASK_HEADS, "a [batch, 1 or heads, query, key] attention mask, int, bool, float 0/1 or "
             "additive float (refused before 5.0; from 5.0 eager adds it to the scores, sdpa takes bool as a keep-mask "
             "and float as a bias and refuses int)", {}, prop=masks_4d, mask_4d=True),
    _surface("attentions", ENCODERS,
             "output_attentions: every layer's attention probabilities, any mask (sdpa: per release)",
             {"attentions": True, "mask": "any"}),
    _surface("hidden_states", ENCODERS[2:] + ENCODERS[:2],
             "output_hidden_states: the embeddings output and every layer's output", {"hidden_states": True,
                                                                                     "mask": "left"}),
    _surface("inputs_embeds", ENCODERS[1:] + ENCODERS[:1], "inputs_embeds instead of input_ids",
             {"inputs_embeds": True, "hidden_states": True}),
    _surface("inputs_embeds.masked_lm", UNTIED_HEADS, "inputs_embeds instead of input_ids, into the MLM heads",
             {"inputs_embeds": True}),
    _surface("head_mask", ENCODERS, "head_mask ([heads] or [layers, heads]) scales attention probabilities "
             "(before 5.0; 5.x accepts and ignores it)", {"head_mask": True, "attentions": True}),
    _surface("untied_decoder", UNTIED_HEADS, "tie_word_embeddings=False: the MLM decoder's own weight, and "
             "its own bias from 5.0", {"untied": True}),
    _surface("untied_decoder.pretraining", UNTIED_HEADS[1:] + UNTIED_HEADS[:1], "tie_word_embeddings=False in the "
             "pretraining head", {"untied": True}),
]
