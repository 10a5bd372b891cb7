"""The transformers adapter's cross-attention (encoder_hidden_states, encoder_attention_mask) and incremental
decoding with the KV cache (a mixin of `TransformersAdapter`, which provides `self.transformers`, `self.version`,
`self.has`, `self.build` and `self._model`).

How a release takes the cache is bridged here: every release returns the cache of a forward with `use_cache=True`
(a tuple of per-layer tuples up to 4.50 among the envs; a `DynamicCache` or `EncoderDecoderCache` from 4.54 on)
and takes it back in the next forward, under the keyword its forward names (`past_key_values`, or `cache` from
5.24 on); the adapter hands back whatever it got, as `generate` does.
"""

import functools
import inspect
import time

import numpy as np
import torch

from .torch_models import TORCH_DTYPES, to_numpy

DECODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "encoder_hidden_states",
                  "encoder_attention_mask")  # the forward inputs of a decoding case (other entries are the harness's)
LM_HEADS = ("BertLMHeadModel", "BertForMaskedLM")  # the heads with logits besides the last hidden state
PER_POSITION = ("input_ids", "token_type_ids", "position_ids")  # sliced to each chunk's positions


class DecodingMethods:
    """Cross-attention (encoder_hidden_states, encoder_attention_mask) and incremental decoding with the KV cache."""

    @functools.lru_cache(maxsize=None)
    def cache_keyword(self, head):
        """The keyword under which `head`'s forward takes the cache: `cache` where the release names it so (5.24),
        else `past_key_values`."""
        return "cache" if "cache" in self._forward_parameters(head) else "past_key_values"

    def _forward_parameters(self, head):
        return inspect.signature(getattr(self.transformers, head).forward).parameters

    def _decoder_kwargs(self, inputs, device, dtype):
        kwargs = {}
        for key in DECODER_INPUTS:
            if key in inputs:
                value = torch.from_numpy(np.ascontiguousarray(inputs[key])).to(device)
                kwargs[key] = value.to(TORCH_DTYPES[dtype]) if key == "encoder_hidden_states" else value
        return kwargs

    def _decoder_outputs(self, head, out):
        result = {"last_hidden_state": out.hidden_states[-1]}
        if head in LM_HEADS:
            result["logits"] = out.logits
        return result

    def _decoder_forward(self, model, kwargs):
        start = time.perf_counter()
        try:
            with torch.no_grad():
                return model(**kwargs, output_hidden_states=True, return_dict=True)
        finally:
            self.bare_seconds += time.perf_counter() - start

    def run_cross(self, case, attn="eager", device="cpu", dtype="float64"):
        """One forward of the decoder `case.head` (BertModel, BertLMHeadModel or BertForMaskedLM; is_decoder,
        add_cross_attention) on `case.inputs` with its encoder states, without a cache. Returns ({last_hidden_state,
        pooler_output for BertModel, logits for the LM heads} as float64 numpy, weights)."""
        model, weights = self.build(case, attn, device, dtype)
        kwargs = self._decoder_kwargs(case.inputs, device, dtype)
        if "use_cache" in self._forward_parameters(case.head):  # 4.x BertForMaskedLM has no cache to turn off
            kwargs["use_cache"] = False
        out = self._decoder_forward(model, kwargs)
        result = self._decoder_outputs(case.head, out)
        if case.head == "BertModel":
            result["pooler_output"] = out.pooler_output
        return to_numpy(result), weights

    def run_incremental(self, case, chunks, attn="eager", device="cpu", dtype="float64"):
        """Decode `case.inputs` chunk by chunk with the cache (`chunks`: sizes summing to the length): each forward
        gets its chunk's tokens (and token types, positions where drawn), the attention mask over past and new
        positions, the encoder states and the cache the previous forward returned. Returns ({last_hidden_state,
        logits for BertLMHeadModel} of all positions, concatenated in order, as float64 numpy, weights)."""
        model, weights = self.build(case, attn, device, dtype)
        keyword = self.cache_keyword(case.head)
        full = self._decoder_kwargs(case.inputs, device, dtype)
        cache, parts, start = None, [], 0
        for size in chunks:
            end = start + int(size)
            kwargs = {k: (v[:, start:end] if k in PER_POSITION else v[:, :end] if k == "attention_mask" else v)
                      for k, v in full.items()}
            if cache is not None:
                kwargs[keyword] = cache
            out = self._decoder_forward(model, dict(kwargs, use_cache=True))
            cache = getattr(out, "cache", None) if keyword == "cache" else out.past_key_values
            parts.append(self._decoder_outputs(case.head, out))
            start = end
        return {k: np.concatenate([to_numpy(p[k]) for p in parts], axis=1) for k in parts[0]}, weights
