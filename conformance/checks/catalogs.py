"""Catalog checks: every BertConfig field, forward keyword, activation and collator field of a release is exercised by a check or listed out of scope."""

CHECKS = []
