"""The gradient of the loss with respect to every parameter against the reference backward pass.

For each task head: the implementation's autograd (`adapter.parameter_grads`: `.grad` of every parameter after
`loss.backward()` in eval mode) against `reference.backward.gradients` on the weights the model holds, every
parameter under every state-dict name (the tied MLM decoder and the word embeddings: one gradient, the sum of both
uses). In the embedding tables, a row no lookup reads, and the word embeddings' [PAD] row (`padding_idx`), must get
exactly 0 (`unread_rows`; not in a word-embedding matrix that is also the tied decoder, which reads every row). Tolerances are the target dtype's own; a miss is
judged by the case's rounding sensitivity (the reference's gradients on weights moved by eps, `compare.conditioned`),
as `runner.compare_with_reference` judges outputs. A known difference that loosens `loss_grad` (d loss / d logits)
loosens every parameter's gradient, which is computed from it.
"""

import re

import numpy as np

from reference import BertSpec
from reference.backward import head_gradients

from ..batch import CaseBatch, each_case
from ..check import CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK, Check
from ..compare import CONDITIONING, EPS, Comparison, compare, conditioned, rounding, tolerance
from ..judges import input_sensitivity
from ..port import IGNORE_INDEX, ignore_index
from .decoding import CROSS_FLOAT64_REFUSED, cross_rule
from .gradient_cases import ENCODER_HEADS, SUBCASES, gradient_strategy
from .surface import ADDITIVE_MASK, ADDITIVE_MASK_ROUNDING, rules

MAX_EXAMPLES = 5  # each example is SUBCASES forwards and backwards on both sides, per target


def reference_arguments(case, adapter, target=None):
    """The keyword arguments of the reference head for `case`, with the release's rules (as the runner passes them):
    on `target`, the rule of a query that sees no key (`surface.rules`), and with encoder states 4.41's sdpa rule of
    cross-attention (`decoding.cross_rule`)."""
    kwargs = dict(case.inputs)
    kwargs.update(case.labels)
    if target is not None and "encoder_hidden_states" in kwargs:
        kwargs["cross_causal_when_square"] = cross_rule(adapter, target)
    elif target is not None and case.head != "BertForMultipleChoice":  # its mask is right padding, never empty
        kwargs["fully_masked"] = rules(adapter, target)["fully_masked"]
    if case.head == "BertForTokenClassification":
        kwargs["loss_uses_attention_mask"] = not adapter.has("token-classification-loss-ignores-only-labels")
    if case.num_items_in_batch is not None:
        kwargs["num_items_in_batch"] = case.num_items_in_batch
    if ignore_index(adapter, case.head) != IGNORE_INDEX:
        kwargs["ignore_index"] = ignore_index(adapter, case.head)
    return kwargs


def _reference(case, weights, adapter, target=None):
    """The reference's loss and gradients, {"loss": ..., "grad.<name>": ...} (the encoder states' under
    "grad.encoder_hidden_states"), and their comparison scale (see `gradient_scale`)."""
    out, grads = head_gradients(case.head, weights, BertSpec.from_mapping(case.config),
                                **reference_arguments(case, adapter, target))
    expected = {"loss": np.asarray(out["loss"]), **{f"grad.{name}": g for name, g in grads.items()}}
    return expected, gradient_scale(expected, out["loss_grad"])


def gradient_scale(expected, logit_grads):
    """The scale every parameter's gradient is compared at (`compare`'s `scale`): min(1, the largest |d loss / d
    logits| or |d loss / d parameter| of any parameter). A parameter's gradient is a sum of products of upstream
    gradients and activations, and LayerNorm's and softmax's backward subtract terms of the upstream gradient's size
    (a gradient that is 0 in exact arithmetic, e.g. below a LayerNorm of width 2, or the sum over identical choices,
    comes out as the rounding of those terms), so its rounding is of the size of the model's gradients, not of its
    own."""
    sizes = [np.abs(v[np.isfinite(v)]).max(initial=0.0) for v in logit_grads.values()]
    sizes += [np.abs(v[np.isfinite(v)]).max(initial=0.0) for k, v in expected.items() if k.startswith("grad.")]
    common = min(1.0, float(max(sizes, default=0.0)))
    return {k: common for k in expected if k.startswith("grad.")}


LM_HEADS = ("BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel")


def unread_rows(case, name):
    """The rows of the embedding table `name` that get exactly zero gradient: the rows no lookup reads (for the word
    embeddings also the [PAD] row, `padding_idx`; for the position embeddings of a relative position type, every
    row), unless the table is the tied MLM decoder, which reads every row. None for a parameter that is no embedding
    table."""
    if not name.endswith("_embeddings.weight"):
        return None
    config = case.config
    table = name.rsplit(".", 2)[-2]
    ids = np.asarray(case.inputs["input_ids"])
    length = ids.shape[-1]
    if table == "word_embeddings":
        if case.head in LM_HEADS and config.get("tie_word_embeddings", True):
            return None
        size, read = config["vocab_size"], ids[ids != config.get("pad_token_id", 0)]
    elif table == "token_type_embeddings":
        size, read = config.get("type_vocab_size", 2), case.inputs.get("token_type_ids", np.zeros(1, dtype=np.int64))
    elif config.get("position_embedding_type", "absolute") != "absolute":  # relative: the table is never read
        size, read = config["max_position_embeddings"], np.zeros(0, dtype=np.int64)
    else:
        size, read = config["max_position_embeddings"], case.inputs.get("position_ids", np.arange(length))
    rows = np.ones(size, dtype=bool)
    rows[np.unique(read)] = False
    return rows


def _sensitivity(case, weights, adapter, target, base):
    """How far the reference's loss and gradients move when every weight, and the float inputs (encoder states,
    head mask), move by eps(`dtype`) of themselves in a random direction (`judges.input_sensitivity`), as rounding
    them to `dtype` could move them."""
    floats = {key: case.inputs[key] for key in ("encoder_hidden_states", "head_mask") if key in case.inputs}

    def reference_at(moved):
        moved_case = case.copy()
        moved_case.inputs.update(moved["inputs"])
        with np.errstate(invalid="ignore"):
            return _reference(moved_case, moved["weights"], adapter, target)[0]

    return input_sensitivity(reference_at, {"weights": dict(weights), "inputs": floats}, target.dtype, base=base)


def sees_no_key(case):
    """Whether some query of `case` sees no key (its attention mask, 2D or 3D, and a decoder's causality)."""
    mask = case.inputs.get("attention_mask")
    if mask is None:
        return False
    allowed = (mask if mask.ndim == 3 else mask[:, None, :]).astype(bool)
    if case.config.get("is_decoder"):
        allowed = allowed & np.tril(np.ones((mask.shape[-1],) * 2, dtype=bool))
    return not allowed.any(axis=-1).all()


def additive_mask_judged(result, actual, expected, target, scale):
    """Before 4.21 the mask adds -10000 to the scores of a query that sees no key (the "all_keys" rule), which rounds
    them at 10000 eps in float32: a miss within CONDITIONING times two such roundings (times the gradients' scale)
    holds as explained by `surface.ADDITIVE_MASK_ROUNDING`, as the forward's surface checks judge it."""
    floor = CONDITIONING * rounding(target.dtype, 2, -ADDITIVE_MASK) * (1.0 if scale is None else scale)
    judged = compare(result.key, actual, expected, tolerance(target.dtype, target.device), scale=scale, floor=floor)
    if judged.ok:
        judged.explained = ADDITIVE_MASK_ROUNDING
        return judged
    return result


def parameter_gradients(known_differences):
    """The property of a `gradients.<head>` check with those known differences: loss and every parameter's gradient
    against the reference."""

    def prop(adapter, case, target):
        known = [k for k in known_differences if k.applies(adapter, case, target)]
        try:
            loss, actual, weights = adapter.parameter_grads(case.copy(), target.attn, target.device, target.dtype)
        except Exception as exc:  # a refusal a known difference predicts is data, anything else fails
            for k in known:
                if k.raises and re.search(k.raises, f"{type(exc).__name__}: {exc}"):
                    return [Comparison("raises", True, 0.0, f"explained: {k.id}")]
            raise
        expected, scale = _reference(case, weights, adapter, target)
        actual = {"loss": np.asarray(loss), **{f"grad.{name}": g for name, g in actual.items()}}
        own = tolerance(target.dtype, target.device)
        loose = {}  # "loss" / "grad" -> (known difference id, its tolerance), only where looser than the dtype's own
        for k in known:
            for key, dtype in k.tolerance_dtype.items():
                part = {"loss": "loss", "loss_grad": "grad"}.get(key)
                if part and tolerance(dtype, target.device).rtol > loose.get(part, ("", own))[1].rtol:
                    loose[part] = (k.id, tolerance(dtype, target.device))

        def judged(key):
            return loose.get(key.split(".")[0], ("", own))

        results = []
        for key, value in expected.items():
            why, tol = judged(key)
            if key not in actual:
                results.append(Comparison(key, False, np.inf, f"{key}: no gradient for this parameter"))
                continue
            result = compare(key, actual[key], value, tol, scale=scale.get(key))
            result.explained = why
            results.append(result)
            rows = unread_rows(case, key[len("grad."):])
            if rows is not None and rows.any():
                leaked = np.abs(actual[key][rows]).max(axis=-1)
                results.append(Comparison(f"{key}[unread rows]", not leaked.any(), 0.0, "" if not leaked.any() else (
                    f"{key}: rows {np.flatnonzero(rows)[leaked > 0].tolist()} are read by no lookup (or are the "
                    f"[PAD] row) and must get exactly 0; largest |gradient| there {leaked.max():.3e}")))
        if not all(r.ok for r in results) and target.dtype in EPS:
            moved = _sensitivity(case, weights, adapter, target, expected)
            for i, r in enumerate(results):
                if not r.ok and r.key in actual:
                    results[i] = conditioned(r, actual[r.key], expected[r.key], judged(r.key)[1], moved[r.key],
                                             scale=scale.get(r.key))
            if rules(adapter, target)["fully_masked"] == "all_keys" and sees_no_key(case):
                results = [additive_mask_judged(r, actual[r.key], expected[r.key], target, scale.get(r.key))
                           if not r.ok and r.key in actual else r for r in results]
        return results

    return prop


def _check(name, heads, description, features=None, known=(), applies=None, every_attention=True, shrink=True,
           subcases=SUBCASES):
    kw = {} if applies is None else {"applies": applies}
    return Check(f"gradients.{name}", "gradients", heads[0] if len(heads) == 1 else "any", description,
                 gradient_strategy(heads, features, subcases), kind="property", prop=each_case(parameter_gradients(known)),
                 known=known, max_examples=MAX_EXAMPLES, case_type=CaseBatch, every_attention=every_attention, shrink=shrink,
                 **kw)


def _absent(change, what):
    """An `applies` that names the drift `change` where the release has it (the feature `what` is gone)."""
    return lambda adapter: f"{what} (drift {change})" if adapter.has(change) else None


CHECKS = [
    _check("pretraining", ("BertForPreTraining",),
           "d(MLM + NSP loss)/d every parameter: encoder, pooler, MLM transform, the tied decoder (the sum of its "
           "word-embedding and decoder uses), the output bias, NSP"),
    _check("masked_lm", ("BertForMaskedLM",),
           "d(MLM loss)/d every parameter; the [PAD] row of the word embeddings gets only the decoder's share"),
    _check("causal_lm", ("BertLMHeadModel",),
           "d(causal LM loss)/d every parameter of a decoder (causal plus padding mask)",
           known=(CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK)),
    _check("next_sentence", ("BertForNextSentencePrediction",), "d(NSP loss)/d every parameter, through the pooler"),
    _check("sequence_classification", ("BertForSequenceClassification",),
           "d(classification loss)/d every parameter, through the pooler and the classifier"),
    _check("multiple_choice", ("BertForMultipleChoice",),
           "d(multiple-choice loss)/d every parameter: [B, C, L] flattened, gradients summed over the choices"),
    _check("token_classification", ("BertForTokenClassification",),
           "d(token classification loss)/d every parameter (per-position classifier, no pooler)"),
    _check("question_answering", ("BertForQuestionAnswering",),
           "d(QA loss)/d every parameter: start and end logits, positions clamped and ignored beyond the sequence"),
    _check("masks", ENCODER_HEADS,
           "any attention mask (right and left padding, holes, queries that see no key under the release's rule: "
           "softmax's Jacobian at the probabilities used), every parameter's gradient, the head drawn",
           {"mask": "any"}),
    _check("masks_3d", tuple(h for h in ENCODER_HEADS if h != "BertForTokenClassification"),
           "a [batch, query, key] attention mask (eager), queries that see no key included, the head drawn (not token "
           "classification, whose 4.x loss reads the mask as [batch, length])",
           {"mask": "3d"}, applies=_absent("attention-mask-3d-refused", "a 3D attention mask is refused"),
           every_attention=False, subcases=3),  # a [4, 12, 12] byte cube per sub-case: 6 make too large an example
    _check("relative_positions", ENCODER_HEADS,
           "relative_key / relative_key_query: the distance embeddings' gradient, none for the position embeddings, "
           "with holes in the mask, the head drawn", {"relative": True, "mask": "holes"},
           applies=_absent("relative-position-embeddings-removed", "relative positions are gone")),
    _check("head_mask", ENCODER_HEADS,
           "head_mask ([heads] or [layers, heads], values 0, 0.5, 1, 2) scaling the attention probabilities in the "
           "backward too, the head drawn", {"head_mask": True},
           applies=_absent("head-mask-removed", "head_mask is no longer applied")),
    _check("cross_attention", ("BertLMHeadModel",),
           "a decoder with cross-attention: the crossattention blocks' gradients and d loss / d encoder_hidden_states, "
           "with and without encoder_attention_mask", {"cross": True},
           known=(CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK, CROSS_FLOAT64_REFUSED),
           shrink=False),  # shrinking three decoders' encoder states takes minutes; a failure names its sub-case
]
