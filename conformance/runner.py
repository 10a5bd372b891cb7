"""Runs one drawn case of one check through the adapter and the reference and compares them, and the Hypothesis
test of a check on a target (what the suite runs and `bert-conformance bench` times)."""

import collections
import contextlib
import json
import random
import re
import shlex
import time
import zlib

import numpy as np
from hypothesis import Phase, core, given, seed, settings

from reference import BertSpec
from reference import heads as ref_heads

from .compare import CONDITIONING, EPS, REDUCED, Comparison, compare, conditioned, tolerance
from .judges import MISS_DRAWS, SENSITIVITY_DRAWS, input_sensitivity
from .known_bugs import confirm, judged
from .port import IGNORE_INDEX, ignore_index, outputs_lacking


class Clock:
    """Seconds accumulated by the bare reference calls (`reference_outputs`), for `bert-conformance bench`."""

    seconds = 0.0


def reference_outputs(case, weights, adapter):
    """The reference's outputs for `case` with the weights transformers holds; version rules come from the adapter."""
    start = time.perf_counter()
    try:
        return _reference_outputs(case, weights, adapter)
    finally:
        Clock.seconds += time.perf_counter() - start


def _reference_outputs(case, weights, adapter):
    spec = BertSpec.from_mapping(case.config)
    kwargs = dict(case.inputs)
    kwargs.update(case.labels)
    if case.head == "BertForTokenClassification" and case.labels:
        kwargs["loss_uses_attention_mask"] = not adapter.has("token-classification-loss-ignores-only-labels")
    if case.num_items_in_batch is not None:
        kwargs["num_items_in_batch"] = case.num_items_in_batch
    if case.labels and ignore_index(adapter, case.head) != IGNORE_INDEX:  # a port rule: its own ignored label
        kwargs["ignore_index"] = ignore_index(adapter, case.head)
    return ref_heads.HEADS[case.head](weights, spec, **kwargs)


SHARED = 512  # reference outputs kept for the targets that follow (eager and sdpa of a dtype see the same cases)
_shared = collections.OrderedDict()
_sharing = [True]


@contextlib.contextmanager
def no_sharing():
    """Compute every reference output afresh (`bert-conformance bench` times the reference this way)."""
    _sharing[0] = False
    try:
        yield
    finally:
        _sharing[0] = True


def sharing():
    """Whether reference outputs may be reused across targets (False inside `no_sharing`); a check that keeps its
    own cache of reference outputs asks this too."""
    return _sharing[0]


def shared_reference_outputs(case, weights, adapter):
    """`reference_outputs`, computed once for the same case, weights object and adapter: every target of a check
    sees the same cases, and the adapter hands out the same (read-only) weights object to every attention
    implementation of a dtype, so the eager and sdpa tests share the reference's work (`shared`)."""
    return shared("outputs", case, weights, adapter, lambda: reference_outputs(case, weights, adapter))


def shared(what, case, weights, adapter, compute):
    """`compute()`, done once for the same `what`, case, weights object and adapter while kept (the SHARED most
    recent). The key holds the case's head, config, every input and label array (dtype, shape and bytes) and
    `num_items_in_batch`; the entry holds the weights and the adapter themselves, so their ids cannot be reused while
    it lives. An exception (a refusal) is not kept. Inside `no_sharing`, always computed."""
    if not sharing():
        return compute()
    arrays = tuple((group, k, v.dtype.str, v.shape, v.tobytes())
                   for group, d in (("in", case.inputs), ("label", case.labels)) for k, v in sorted(d.items()))
    key = (what, id(adapter), id(weights), case.head, json.dumps(case.config, sort_keys=True),
           case.num_items_in_batch, arrays)
    entry = _shared.get(key)
    if entry is not None and entry[0] is weights and entry[1] is adapter:
        _shared.move_to_end(key)
        return entry[2]
    result = compute()
    _shared[key] = (weights, adapter, result)
    while len(_shared) > SHARED:
        _shared.popitem(last=False)
    return result


def flatten(outputs):
    """Outputs as one level of numpy arrays: a nested `{"loss_grad": {"logits": g}}` becomes `loss_grad.logits`;
    None values are dropped."""
    flat = {}
    for key, value in outputs.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": np.asarray(v) for k, v in value.items()})
        elif value is not None:
            flat[key] = np.asarray(value)
    return flat


def compare_with_reference(check, case, adapter, target):
    """Compare every output the reference produces for `case` with transformers'. Returns a list of Comparisons.

    A known difference that holds for the installed version either loosens the named outputs to another dtype's
    tolerance or, if transformers raises as that difference predicts, ends the comparison as explained. An output
    compared at a looser tolerance than the target dtype's own is explained by that known difference (the
    comparison carries its id in `explained`), whether or not its error needed the looser tolerance. An output that
    misses its tolerance is judged by the case's own rounding sensitivity (`sensitivity`, `compare.conditioned`):
    within the stated multiple of it, it holds as explained ("ill-conditioned case"), never as a pass. In a reduced
    precision (`compare.REDUCED`) that multiple of the sensitivity is part of the dtype's own tolerance, measured
    over SENSITIVITY_DRAWS draws, and over MISS_DRAWS where a comparison missed it.
    """
    known = [k for k in check.known if k.applies(adapter, case, target)]
    try:  # the implementation gets its own copy: what it writes into its inputs cannot reach the reference
        actual, weights = adapter.run(case.copy(), target.attn, target.device, target.dtype)
    except Exception as exc:  # an explained refusal is data, anything else is a failure
        for k in known:
            if k.raises and re.search(k.raises, f"{type(exc).__name__}: {exc}"):
                return [Comparison("raises", True, 0.0, f"explained: {k.id}")]
        raise
    expected = flatten(shared_reference_outputs(case, weights, adapter))
    lacking = outputs_lacking(adapter)  # what the port never computes is not compared (nor reported as compared)
    expected = {k: v for k, v in expected.items() if k.split(".")[0] not in lacking}
    actual = flatten(actual)
    own = tolerance(target.dtype, target.device)
    loosened = {}  # output -> (known difference id, tolerance): loosen an output to another dtype's, never tighten
    for k in known:
        for key, dtype in k.tolerance_dtype.items():
            loose = tolerance(dtype, target.device)
            if loose.rtol > max(own.rtol, loosened.get(key, (None, own))[1].rtol):
                loosened[key] = (k.id, loose)
    reduced = target.dtype in REDUCED  # its own tolerance includes the case's sensitivity (compare.REDUCED)
    moved = sensitivity(case, weights, adapter, target.dtype) if reduced else None

    def compared(key):
        why, tol = loosened.get(key.split(".")[0], ("", own))
        floor = CONDITIONING * moved[key] if reduced else 0.0
        result = compare(key, actual[key], expected[key], tol, exact_zeros=key.startswith("loss_grad"), floor=floor)
        result.explained = why
        return result

    results = [compared(key) if key in actual else
               Comparison(key, False, np.inf, f"{key}: {adapter.name} returned no such output") for key in expected]
    if not all(r.ok for r in results) and target.dtype in EPS:
        # a miss: the sensitivity measured again over MISS_DRAWS draws, since a few can underestimate an element's
        moved = sensitivity(case, weights, adapter, target.dtype, draws=MISS_DRAWS)
        for i, r in enumerate(results):
            if not r.ok and r.key in actual:
                tol = loosened.get(r.key.split(".")[0], ("", own))[1]
                results[i] = compared(r.key) if reduced else conditioned(
                    r, actual[r.key], expected[r.key], tol, moved[r.key], exact_zeros=r.key.startswith("loss_grad"))
    return results


def sensitivity(case, weights, adapter, dtype, draws=SENSITIVITY_DRAWS):
    """The case's rounding sensitivity, per flattened output and element: the most the reference's outputs move
    when every floating-point weight is moved by eps(`dtype`) of itself, each in a random direction (`draws`
    seeded draws), as rounding the weights to `dtype` could move them. Shared by the attention implementations of
    a dtype, as the reference's outputs are (`shared`)."""
    return shared(("sensitivity", dtype, draws), case, weights, adapter,
                  lambda: _sensitivity(case, weights, adapter, dtype, draws))


def _sensitivity(case, weights, adapter, dtype, draws):
    return input_sensitivity(lambda moved: flatten(reference_outputs(case, moved, adapter)), dict(weights), dtype,
                             draws, base=flatten(shared_reference_outputs(case, weights, adapter)))


def run_check(check, adapter, case, target):
    """The comparisons of one case: against the reference, or the check's own property."""
    if check.kind == "reference":
        results = compare_with_reference(check, case, adapter, target)
    else:
        results = check.prop(adapter, case, target)
    return judged(check, adapter, case, target, results)  # a case failing as a known bug predicts is that bug


# --- the Hypothesis test of one check on one target ------------------------------------------------------------

DEFAULT_ADAPTER = "conformance.adapters.transformers:TransformersAdapter"


def failure_message(check, target, adapter, case, failures):
    """What a failing test prints: the check, target and implementation, each failed comparison's message, the
    drawn config and the command that reproduces the case."""
    lines = [f"check {check.id} on {target.id} against {adapter!r}: {check.description}"]
    lines += [f.message for f in failures]
    if hasattr(case, "config"):
        lines.append(f"config: {case.config}")
    lines.append(f"reproduce: {reproduce_command(check, target, adapter, case)}")
    return "\n".join(lines)


def adapter_spec(adapter):
    """The `module:Class` that names `adapter`'s class (what `--adapter` takes)."""
    return f"{type(adapter).__module__}:{type(adapter).__qualname__}"


def reproduce_command(check, target, adapter, case):
    """The shell command that re-runs `case` of `check` on `target` against the same adapter and prints every
    comparison."""
    spec = adapter_spec(adapter)
    option = "" if spec == DEFAULT_ADAPTER else f" --adapter {spec}"
    return f"python -m conformance{option} repro {check.id} {target.id} {shlex.quote(case.to_json())}"


def check_seed(check):
    """The seed of `check` under a derandomized profile: its own (a hash of its id), shared by its targets. Every
    target of a check sees the same cases (and reuses the same built models); different checks see different ones.
    (Hypothesis' own derandomization would seed every check alike, since they share one test function.)"""
    return zlib.crc32(check.id.encode())


def group_seed(check, hypothesis_settings):
    """The seed the targets of `check` share: `check_seed` under a derandomized profile, the one forced with
    `--hypothesis-seed`, else a fresh random one (so that a target's own run can replay what a screening saw)."""
    if hypothesis_settings.derandomize:
        return check_seed(check)
    forced = getattr(core, "global_force_seed", None)
    return forced if forced is not None else random.getrandbits(64)


def new_stats():
    """What a check's test records: examples run, the largest error/tolerance of a passing comparison, the explained
    differences seen (the ids of comparisons that held as explained: a known difference's refusal, or an output
    compared at a looser tolerance than the dtype's own), and the last failure (kind, case, message, ratio):
    Hypothesis replays the shrunk failing example last, so the failure stashed last is the minimal one."""
    return {"examples": 0, "worst": 0.0, "explained": set(), "failure": None}


REDUCED_SHARE = 4
"""A reduced-precision target (`compare.REDUCED`) draws a quarter of the profile's examples: each of them also
measures the case's sensitivity (two more reference passes), and a reduced precision only sees coarse bugs, whose
every case fails."""


def _check_settings(check, hypothesis_settings, target=None):
    """The settings `check` runs with on `target` (on its fullest target without one): the check's cap on examples,
    a quarter of them on a reduced precision, no shrinking for a check that is too costly to shrink."""
    if check.max_examples and check.max_examples < hypothesis_settings.max_examples:
        hypothesis_settings = settings(hypothesis_settings, max_examples=check.max_examples)
    if target is not None and target.dtype in REDUCED:
        hypothesis_settings = settings(hypothesis_settings,
                                       max_examples=max(1, hypothesis_settings.max_examples // REDUCED_SHARE))
    if not check.shrink:
        hypothesis_settings = settings(hypothesis_settings, phases=[p for p in Phase if p != Phase.shrink])
    return hypothesis_settings


def _count(stats, results):
    """Add one example whose comparisons all held to `stats`."""
    stats["examples"] += 1
    stats["worst"] = max([stats["worst"]] + [r.ratio for r in results if r.ok])
    stats["explained"].update(r.message[len("explained: "):] for r in results if r.message.startswith("explained"))
    stats["explained"].update(r.explained for r in results if r.ok and r.explained)


def _failed(check, target, adapter, case, stats, results=None, exc=None):
    """Stash the failure of `case` in `stats` and raise it: AssertionError for comparisons that did not hold, the
    exception itself for an error."""
    if exc is not None:  # not a comparison: an error; stashed in case it is the last (minimal) one
        stats["failure"] = ("error", case, f"{type(exc).__name__}: {exc}", None)
        raise exc
    failures = [r for r in results if not r.ok]
    message = failure_message(check, target, adapter, case, failures)
    stats["failure"] = ("fail", case, message, max(r.ratio for r in failures))
    raise AssertionError(message)


def property_test(check, target, adapter, hypothesis_settings, stats, cases=None, seed_value=None):
    """The Hypothesis test of `check` on `target`: draws cases, requires every comparison to hold, and keeps
    `stats` (see `new_stats`); with `cases` (a list), appends every case run to it. Seeded with `seed_value`, else
    with the check's own seed under a derandomized profile."""
    hypothesis_settings = _check_settings(check, hypothesis_settings, target)

    def holds(case):
        if cases is not None:
            cases.append(case)
        try:
            results = run_check(check, adapter, case, target)
        except Exception as exc:
            _failed(check, target, adapter, case, stats, exc=exc)
        _count(stats, results)
        if not all(r.ok for r in results):
            _failed(check, target, adapter, case, stats, results)

    test = hypothesis_settings(given(case=check.strategy(adapter))(holds))
    if seed_value is None and hypothesis_settings.derandomize:
        seed_value = check_seed(check)
    return test if seed_value is None else seed(seed_value)(test)


def screen(check, targets, adapter, hypothesis_settings, seed_value, cases=None):
    """One Hypothesis run of `check` for several `targets`: every case drawn runs on every target still passing.

    A target's own test seeded alike draws exactly these cases as long as it passes (Hypothesis' choices depend
    only on its seed and on the outcomes so far, and here every outcome is a pass: nothing is raised), so a target
    that passes the screening has passed its own test, on the same cases, with the same stats. A target that fails
    stops being run and keeps its first failing case (`failing`); its own test (`target_test`) then reaches that
    case and shrinks it. A target that draws fewer examples (a reduced precision) runs on the first of them. Hypothesis' overhead and drawing are paid once per case instead of once per target. Returns {target id: stats plus "failing" (None or the case)}."""
    limits = {t.id: _check_settings(check, hypothesis_settings, t).max_examples for t in targets}
    hypothesis_settings = settings(_check_settings(check, hypothesis_settings), max_examples=max(limits.values()))
    screened = {t.id: dict(new_stats(), failing=None) for t in targets}
    drawn = collections.Counter()

    def holds(case):
        if cases is not None:
            cases.append(case)
        for t in targets:
            stats = screened[t.id]
            if stats["failing"] is not None or drawn[t.id] == limits[t.id]:
                continue
            drawn[t.id] += 1
            try:
                results = run_check(check, adapter, case, t)
            except Exception:  # the target's own run reproduces it
                stats["failing"] = case
                continue
            if all(r.ok for r in results):
                _count(stats, results)
            else:
                stats["failing"] = case

    seed(seed_value)(hypothesis_settings(given(case=check.strategy(adapter))(holds)))()
    return screened


def target_test(check, target, adapter, hypothesis_settings, stats, screened=None, seed_value=None):
    """Run `check` on `target`, keeping `stats`; raise on a failure. With `screened` (this target's result of a
    `screen` seeded with `seed_value`): nothing to run if it passed; if it failed, the target's own run from the
    same seed reaches the same case and shrinks it; should that run pass (a failure that does not reproduce), the
    screened case itself is run again and reported. Then the counterexample of each known bug of the check
    (`known_bugs.confirm`)."""
    _target_test(check, target, adapter, hypothesis_settings, stats, screened, seed_value)
    confirm(check, target, adapter, stats, run_check,
            lambda case, results: _failed(check, target, adapter, case, stats, results))


def _target_test(check, target, adapter, hypothesis_settings, stats, screened=None, seed_value=None):
    if screened is None:
        return property_test(check, target, adapter, hypothesis_settings, stats, seed_value=seed_value)()
    if screened["failing"] is None:
        stats.update({k: v for k, v in screened.items() if k != "failing"})
        return None
    property_test(check, target, adapter, hypothesis_settings, stats, seed_value=seed_value)()
    case = screened["failing"]
    try:
        results = run_check(check, adapter, case, target)
    except Exception as exc:
        _failed(check, target, adapter, case, stats, exc=exc)
    if not all(r.ok for r in results):
        _failed(check, target, adapter, case, stats, results)
    message = (f"check {check.id} on {target.id}: this case failed once and passes when run again (a flaky "
               f"implementation or check)\nreproduce: {reproduce_command(check, target, adapter, case)}")
    stats["failure"] = ("fail", case, message, None)
    raise AssertionError(message)
