"""The eight task heads against the reference: logits, their main loss and d(loss)/d(logits)."""

from ..check import CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK, Check
from .encoder import model_cases

CHECKS = [
    Check("head.pretraining", "head", "BertForPreTraining",
          "MLM logits (decoder tied to word embeddings, output bias), NSP logits, loss = MLM + NSP, gradients",
          model_cases("BertForPreTraining", labels="pretraining"), reduced_precision=True),
    Check("head.masked_lm", "head", "BertForMaskedLM",
          "MLM logits and cross-entropy over positions not labelled -100, gradient zero at ignored positions",
          model_cases("BertForMaskedLM", labels="tokens"), reduced_precision=True),
    Check("head.causal_lm", "head", "BertLMHeadModel",
          "decoder logits and the causal shift: position t scored against label t+1, last position ignored",
          model_cases("BertLMHeadModel", labels="tokens", is_decoder=True),
          known=(CAUSAL_LOSS_FLOAT32, SDPA_FLOAT64_CAUSAL_MASK), reduced_precision=True),
    Check("head.next_sentence", "head", "BertForNextSentencePrediction",
          "NSP logits on the pooled output and their cross-entropy, -100 ignored",
          model_cases("BertForNextSentencePrediction", labels="class"), reduced_precision=True),
    Check("head.sequence_classification", "head", "BertForSequenceClassification",
          "classifier on the pooled output; int64 labels with num_labels >= 2 select single-label cross-entropy",
          model_cases("BertForSequenceClassification", labels="class"), reduced_precision=True),
    Check("head.multiple_choice", "head", "BertForMultipleChoice",
          "[B, C, L] inputs flattened, one score per choice, reshaped back to [B, C], cross-entropy over choices",
          model_cases("BertForMultipleChoice", labels="class", num_labels=1), reduced_precision=True),
    Check("head.token_classification", "head", "BertForTokenClassification",
          "per-position classifier; cross-entropy over positions not labelled -100",
          model_cases("BertForTokenClassification", labels="tokens"), reduced_precision=True),
    Check("head.question_answering", "head", "BertForQuestionAnswering",
          "start/end logits; positions clamped to [0, L], those at L ignored, the two losses averaged",
          model_cases("BertForQuestionAnswering", labels="qa", num_labels=2), reduced_precision=True),
]
