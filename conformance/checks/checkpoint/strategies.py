"""The checkpoint checks' cases: real text through the tokenizer, labels and the seed of a head's own weights."""

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from ...case import SubjectCase
from .files import load
from .text import long_rows, passages, rows

@dataclass(frozen=True)
class HeadSpec:
    """A task head on the real encoder: the BertConfig fields it adds, the label rule it is checked with, the
    prefixes of its own (drawn) parameters and the longest sequence drawn for it."""

    name: str
    config: dict
    labels: str
    own: tuple
    max_length: int = 128
    tied: bool = False  # an MLM decoder, tied to the word embeddings
    description: str = ""


HEADS = {h.name: h for h in (
    HeadSpec("BertForPreTraining", {}, "pretraining", ("cls.",), 64, True,
             "MLM logits (decoder tied to the real word embeddings, drawn transform and output bias) and NSP logits "
             "on the real pooler; loss = MLM + NSP and its gradients"),
    HeadSpec("BertForMaskedLM", {}, "tokens", ("cls.predictions.",), 64, True,
             "MLM logits over the 30522-token vocabulary through the tied real word embeddings; cross-entropy over "
             "positions not labelled -100 and its gradient"),
    HeadSpec("BertLMHeadModel", {"is_decoder": True}, "tokens", ("cls.predictions.",), 64, True,
             "the real encoder as a decoder (causal plus padding mask) with the tied MLM head; shifted causal loss"),
    HeadSpec("BertForNextSentencePrediction", {}, "class", ("cls.seq_relationship.",), 64, False,
             "NSP logits on the real pooler output of sentence pairs; cross-entropy, -100 ignored"),
    HeadSpec("BertForSequenceClassification", {"num_labels": 3}, "class", ("classifier.",), 64, False,
             "a drawn 3-way classifier on the real pooler output; single-label cross-entropy"),
    HeadSpec("BertForMultipleChoice", {"num_labels": 1}, "choice", ("classifier.",), 48, False,
             "[B, C, L] context/choice pairs flattened through the real encoder and pooler, one score per choice"),
    HeadSpec("BertForTokenClassification", {"num_labels": 5}, "tokens", ("classifier.",), 64, False,
             "a drawn 5-label classifier on every position of the real encoder; cross-entropy, -100 ignored"),
    HeadSpec("BertForQuestionAnswering", {"num_labels": 2}, "qa", ("qa_outputs.",), 64, False,
             "start/end logits from the real encoder; positions clamped to [0, L], those at L ignored"),
)}
HEAD_IDS = {"BertForPreTraining": "pretraining", "BertForMaskedLM": "masked_lm", "BertLMHeadModel": "causal_lm",
            "BertForNextSentencePrediction": "next_sentence",
            "BertForSequenceClassification": "sequence_classification", "BertForMultipleChoice": "multiple_choice",
            "BertForTokenClassification": "token_classification", "BertForQuestionAnswering": "question_answering"}

seeds = st.integers(0, 2**32 - 1)


def labels_of(draw, spec, inputs, num_choices=None):
    """Labels for `spec.labels`, generated from a drawn seed and a drawn share of -100 (none, some, most, all)."""
    rng = np.random.default_rng(draw(seeds))
    ignore = draw(st.sampled_from([0.5, 0.0, 0.85, 1.0]))
    ids = inputs["input_ids"]
    batch, length = ids.shape[0], ids.shape[-1]

    def ignored(values):
        return np.where(rng.random(values.shape) < ignore, -100, values).astype(np.int64)

    vocab = load().config["vocab_size"]
    if spec.labels == "tokens":
        if spec.name == "BertForTokenClassification":
            return {"labels": ignored(rng.integers(0, spec.config["num_labels"], (batch, length)))}
        # language modelling: the real next/masked tokens, some replaced by any id of the vocabulary
        values = np.where(rng.random(ids.shape) < 0.2, rng.integers(0, vocab, ids.shape), ids)
        return {"labels": ignored(values)}
    if spec.labels == "pretraining":
        values = np.where(rng.random(ids.shape) < 0.2, rng.integers(0, vocab, ids.shape), ids)
        return {"labels": ignored(values), "next_sentence_label": ignored(rng.integers(0, 2, (batch,)))}
    if spec.labels == "class":
        classes = spec.config.get("num_labels", 2)
        return {"labels": ignored(rng.integers(0, classes, (batch,)))}
    if spec.labels == "choice":
        return {"labels": ignored(rng.integers(0, num_choices, (batch,)))}
    if spec.labels == "qa":
        return {k: rng.integers(-2, length + 3, (batch,)).astype(np.int64)
                for k in ("start_positions", "end_positions")}
    raise ValueError(spec.labels)


def _tolist(arrays):
    return {k: np.asarray(v).tolist() for k, v in arrays.items()}


@st.composite
def encoder_cases(draw, adapter, subject="BertModel", batch=(1, 2), lengths=(8, 128), pairs=True, long=False):
    """Rows of real text for BertModel: `batch` rows (pairs allowed), truncated at a drawn length in `lengths`
    and padded to the longest row or to that length; with `long`, one row of 384-512 positions."""
    if long:
        texts = [draw(long_rows())]
        max_length = draw(st.one_of(st.just(512), st.integers(384, 512)))
        padding = "max_length"
    else:
        texts = draw(st.lists(rows(pairs=pairs), min_size=batch[0], max_size=batch[1]))
        max_length = draw(st.integers(*lengths))
        padding = draw(st.sampled_from(["longest", "max_length"]))
    inputs = adapter.encode(load().directory, texts, max_length, padding)
    return SubjectCase(subject, {"texts": texts, "max_length": max_length, "padding": padding,
                                    "inputs": _tolist(inputs)})


@st.composite
def head_cases(draw, adapter, head):
    """A batch of 1-2 rows of real text (sentence pairs for next-sentence prediction and pre-training, a quarter
    of the time otherwise; context/choice pairs for multiple choice) for `head`, its labels and the seed of its own
    weights."""
    spec = HEADS[head]
    batch = draw(st.integers(1, 2))
    max_length = draw(st.integers(8, spec.max_length))
    padding = draw(st.sampled_from(["longest", "max_length"]))
    num_choices = None
    if spec.labels == "choice":
        num_choices = draw(st.integers(2, 3))
        texts = [[[context, draw(passages(max_sentences=1))] for _ in range(num_choices)]
                 for context in draw(st.lists(passages(), min_size=batch, max_size=batch))]
        flat = adapter.encode(load().directory, [row for example in texts for row in example], max_length, padding)
        inputs = {k: v.reshape(batch, num_choices, -1) for k, v in flat.items()}
    else:
        if spec.labels in ("pretraining", "class") and spec.name != "BertForSequenceClassification":
            texts = [[draw(passages()), draw(passages())] for _ in range(batch)]
        else:
            texts = draw(st.lists(rows(), min_size=batch, max_size=batch))
        inputs = adapter.encode(load().directory, texts, max_length, padding)
    labels = labels_of(draw, spec, inputs, num_choices)
    return SubjectCase(head, {"texts": texts, "max_length": max_length, "padding": padding,
                                 "inputs": _tolist(inputs), "config": dict(spec.config), "labels": _tolist(labels),
                                 "head_seed": draw(seeds)})


@st.composite
def tokenizer_cases(draw, adapter):
    """1-3 rows (pairs allowed) of real text, any truncation length up to 512, either padding."""
    texts = draw(st.lists(rows(), min_size=1, max_size=3))
    return SubjectCase("tokenizer", {"texts": texts, "max_length": draw(st.integers(4, 512)),
                                        "padding": draw(st.sampled_from(["longest", "max_length"]))})
