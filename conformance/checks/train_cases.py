"""The cases of the train-mode checks: drawn model cases with dropout probabilities (all 0, or drawn), a
feed-forward chunk size, and the larger seeded batches on which dropout's rates are tested."""

import numpy as np
from hypothesis import strategies as st

from ..case import Case
from ..check import activations
from ..port import narrowing
from ..strategies import SEED_FIELDS, cases, header, seed_of

ZERO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "classifier_dropout": 0.0}
RATES = (0.0, 0.1, 0.25, 0.5)
CLASSIFIER_RATES = (None, 0.0, 0.1, 0.25, 0.5)  # None: the classifier takes hidden_dropout_prob


def _with_config(case, **fields):
    return Case(case.head, dict(case.config, **fields), case.weights_seed, case.inputs, case.labels,
                case.num_items_in_batch)


def zero_dropout_cases(head, **kw):
    """adapter -> model cases of `head` (`conformance.strategies.cases`) with every dropout probability 0."""
    return lambda adapter: cases(head, activations(adapter), **kw, **narrowing(adapter, head)).map(
        lambda case: _with_config(case, **ZERO_DROPOUT))


@st.composite
def _dropout_case(draw, base):
    case = draw(base)
    h = header(draw, [("hidden", len(RATES)), ("attention", len(RATES)), ("classifier", len(CLASSIFIER_RATES))])
    return _with_config(case, hidden_dropout_prob=RATES[h["hidden"]],
                        attention_probs_dropout_prob=RATES[h["attention"]],
                        classifier_dropout=CLASSIFIER_RATES[h["classifier"]])


def dropout_cases(head, **kw):
    """adapter -> model cases of `head` with drawn dropout probabilities (0, 0.1, 0.25 or 0.5 each; the classifier's
    also None)."""
    return lambda adapter: _dropout_case(cases(head, activations(adapter), **kw, **narrowing(adapter, head)))


@st.composite
def _chunk_case(draw, base):
    case = draw(base)
    length = case.inputs["input_ids"].shape[-1]
    divisors = [d for d in range(1, length + 1) if length % d == 0]  # transformers refuses any other chunk size
    return _with_config(case, chunk_size_feed_forward=draw(st.sampled_from(divisors)))


def chunk_cases(head, **kw):
    """adapter -> model cases of `head` with `chunk_size_feed_forward` a divisor of the sequence length."""
    return lambda adapter: _chunk_case(cases(head, activations(adapter), **kw, **narrowing(adapter, head)))


RATE_BATCH, RATE_LENGTH, RATE_HIDDEN = 8, 16, 16


@st.composite
def _rate_case(draw, head, acts, fixed):
    h = header(draw, [("heads", 3), ("layers", 2), ("act", len(acts)), ("hidden", len(RATES) - 1),
                      ("attention", len(RATES) - 1), ("classifier", len(CLASSIFIER_RATES))] + SEED_FIELDS)
    seed = seed_of(h)
    rng = np.random.default_rng(seed)
    heads = (1, 2, 4)[h["heads"]]
    config = dict(vocab_size=24, hidden_size=RATE_HIDDEN, num_hidden_layers=1 + h["layers"], num_attention_heads=heads,
                  intermediate_size=RATE_HIDDEN, hidden_act=acts[h["act"]], layer_norm_eps=1e-12,
                  max_position_embeddings=20, type_vocab_size=2, is_decoder=False, num_labels=3,
                  hidden_dropout_prob=RATES[1 + h["hidden"]], attention_probs_dropout_prob=RATES[1 + h["attention"]],
                  classifier_dropout=CLASSIFIER_RATES[h["classifier"]])
    config.update(fixed)
    shape = (RATE_BATCH // 2, 2, RATE_LENGTH) if head == "BertForMultipleChoice" else (RATE_BATCH, RATE_LENGTH)
    inputs = {"input_ids": rng.integers(0, config["vocab_size"], size=shape)}
    return Case(head, config, seed, inputs, {})


def rate_cases(head):
    """adapter -> cases of `head` on a seeded batch of 8 x 16 tokens, hidden size 16, 1-2 layers, every dropout
    probability drawn above 0 (the classifier's may be None or 0): samples for the rate tests."""
    return lambda adapter: _rate_case(head, activations(adapter), narrowing(adapter, head)["fixed"])


STEPS = 3
LEARNING_RATES = (1e-3, 1e-2, 1e-1)
WEIGHT_DECAYS = (0.0, 0.01, 0.1)
MAX_NORMS = (0.05, 1.0, 1e6)  # 1e6: never clipped


def step_settings(case):
    """The optimizer settings of a steps case, a function of its weight seed (so a case reproduces from its JSON):
    learning rate, weight decay, clipping norm, warmup of 0-2 steps and a schedule of STEPS to STEPS + 2 steps."""
    rng = np.random.default_rng(case.weights_seed)
    return {"lr": float(rng.choice(LEARNING_RATES)), "betas": (0.9, 0.999), "eps": 1e-8,
            "weight_decay": float(rng.choice(WEIGHT_DECAYS)), "max_norm": float(rng.choice(MAX_NORMS)),
            "num_warmup_steps": int(rng.integers(0, 3)), "num_training_steps": STEPS + int(rng.integers(0, 3))}


def reference_batch(adapter, case):
    """The keyword arguments of `case`'s reference head: inputs, labels and the release's loss rules."""
    batch = dict(case.inputs, **case.labels)
    if case.head == "BertForTokenClassification":
        batch["loss_uses_attention_mask"] = not adapter.has("token-classification-loss-ignores-only-labels")
    return batch
