"""The rule by which a BERT tokenizer truncates, frames and pads a batch, stated here, apart from any implementation,
so that the tokenizer's own `truncation=True, max_length=..., padding=...` can be checked against it.

Given each row's word-piece ids (one segment, or a pair: the tokenizer's output without special tokens, truncation
or padding):

- truncation to `max_length` positions counting the special tokens: a single segment keeps its first
  `max_length - 2` ids; a pair (`longest_first`) loses one id at a time from the end of the longer segment, of the
  second on a tie, until both fit in `max_length - 3`;
- framing: `[CLS] A [SEP]`, or `[CLS] A [SEP] B [SEP]`; token type 0 up to the first [SEP], 1 after it;
- padding on the right: every row to the longest row (`"longest"`) or to `max_length` (`"max_length"`) with the
  [PAD] id, token type 0 and attention mask 0 (1 on every real position).
"""

import numpy as np


def truncate(first, second, max_length):
    """The segments kept of `first` (and `second`, a pair; None for a single segment) within `max_length`
    positions, special tokens included."""
    first = list(first)
    if second is None:
        return first[:max(max_length - 2, 0)], None
    second = list(second)
    budget = max(max_length - 3, 0)
    while len(first) + len(second) > budget:
        if len(first) > len(second):
            first.pop()
        else:
            second.pop()
    return first, second


def frame(first, second, cls_id, sep_id):
    """(ids, token types) of `[CLS] first [SEP]` or `[CLS] first [SEP] second [SEP]`."""
    ids = [cls_id] + list(first) + [sep_id]
    types = [0] * len(ids)
    if second is not None:
        ids += list(second) + [sep_id]
        types += [1] * (len(second) + 1)
    return ids, types


def encode_batch(segments, max_length, padding, special_ids):
    """`input_ids`, `token_type_ids` and `attention_mask` (int64 [rows, width]) of the rows `segments` (each a list
    of one or two id lists) truncated to `max_length`, framed and padded (`"longest"` or `"max_length"`) as the
    module docstring says, with the special ids `special_ids` ({"cls", "sep", "pad"})."""
    rows = []
    for row in segments:
        first, second = truncate(row[0], row[1] if len(row) > 1 else None, max_length)
        rows.append(frame(first, second, special_ids["cls"], special_ids["sep"]))
    width = max_length if padding == "max_length" else max(len(ids) for ids, _ in rows)
    out = {"input_ids": np.full((len(rows), width), special_ids["pad"], dtype=np.int64),
           "token_type_ids": np.zeros((len(rows), width), dtype=np.int64),
           "attention_mask": np.zeros((len(rows), width), dtype=np.int64)}
    for i, (ids, types) in enumerate(rows):
        out["input_ids"][i, :len(ids)] = ids
        out["token_type_ids"][i, :len(types)] = types
        out["attention_mask"][i, :len(ids)] = 1
    return out
