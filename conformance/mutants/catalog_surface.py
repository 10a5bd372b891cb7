"""Mutants of the model's wider surface: relative positions, masks, attention probabilities, hidden states, inputs_embeds, head_mask, untied decoder, head options.

Each is killed by the `surface.*` checks on the releases whose source has its `old` text (relative positions,
head_mask and the 4.x attention outputs exist before 5.0; the masked value is -10000 before 4.21 and the dtype's
minimum after)."""

from .mutant import MASKING_UTILS, MODELING_BERT, MODELING_UTILS, SDPA_ATTENTION, Mutant  # noqa: F401

OUTPUT_CAPTURING = "utils/output_capturing.py"

MUTANTS = [
    # --- relative positions (4.x) ----------------------------------------------------------------------------------
    Mutant("surface.relative_distance_flipped", "surface",
           "relative positions look up the distance r - l instead of l - r (keys before and after a query swapped)",
           MODELING_BERT, "distance = position_ids_l - position_ids_r", "distance = position_ids_r - position_ids_l",
           "surface.relative_positions", ">=4.4,<5.0"),
    # --- the masked value: a fully masked query's rule -------------------------------------------------------------
    Mutant("surface.mask_min_too_early", "surface",
           "the extended mask adds the dtype's minimum where the release adds -10000 (a fully masked query attends "
           "uniformly instead of by its raw scores)",
           MODELING_UTILS, "extended_attention_mask = (1.0 - extended_attention_mask) * -10000.0",
           "extended_attention_mask = (1.0 - extended_attention_mask) * torch.finfo(self.dtype).min",
           "surface.masks", ">=4.4,<4.21"),
    Mutant("surface.mask_minus_10000", "surface",
           "the extended mask adds -10000 instead of the dtype's minimum (a fully masked query attends by its raw "
           "scores instead of uniformly)",
           MODELING_UTILS, "extended_attention_mask = (1.0 - extended_attention_mask) * torch.finfo(dtype).min",
           "extended_attention_mask = (1.0 - extended_attention_mask) * -10000.0", "surface.masks", ">=4.21,<5.0"),
    Mutant("surface.eager_mask_minus_10000", "surface",
           "masking_utils' eager mask puts -10000 instead of the dtype's minimum at masked keys",
           MASKING_UTILS, "min_dtype = torch.finfo(dtype).min\n        # we need 0s where",
           "min_dtype = -10000.0\n        # we need 0s where", "surface.masks", ">=5.0"),
    Mutant("surface.sdpa_mask_additive", "surface",
           "sdpa gets the boolean mask as an additive float mask of the dtype's minimum (a fully masked query then "
           "attends uniformly instead of not at all)",
           SDPA_ATTENTION, "attn_mask=attention_mask,",
           "attn_mask=attention_mask if attention_mask is None or attention_mask.dtype != torch.bool else "
           "torch.where(attention_mask, torch.zeros((), dtype=query.dtype, device=query.device), "
           "torch.finfo(query.dtype).min),", "surface.masks", ">=5.0", path="sdpa"),
    # --- 4D attention masks ----------------------------------------------------------------------------------------
    Mutant("surface.mask_4d_accepted", "surface",
           "get_extended_attention_mask takes a 4D mask as it is instead of refusing it (ValueError)",
           MODELING_UTILS, "                extended_attention_mask = attention_mask[:, None, None, :]\n        else:\n"
           "            raise ValueError(\n",
           "                extended_attention_mask = attention_mask[:, None, None, :]\n"
           "        elif attention_mask.dim() == 4:\n            extended_attention_mask = attention_mask\n"
           "        else:\n            raise ValueError(\n", "surface.masks_4d", ">=4.4,<5.0"),
    Mutant("surface.mask_4d_transposed", "surface",
           "masking_utils passes a prepared 4D mask on transposed (keys by queries)",
           MASKING_UTILS, "len(attention_mask.shape) == 4:\n        return True, attention_mask, None",
           "len(attention_mask.shape) == 4:\n        return True, attention_mask.transpose(-1, -2), None",
           "surface.masks_4d", ">=5.0"),
    # --- attention probabilities -----------------------------------------------------------------------------------
    Mutant("surface.attentions_are_scores", "surface",
           "output_attentions returns the raw scores (before the mask and softmax) instead of the probabilities",
           MODELING_BERT, "outputs = (context_layer, attention_probs) if output_attentions else (context_layer,)",
           "outputs = (context_layer, attention_scores) if output_attentions else (context_layer,)",
           "surface.attentions", ">=4.4,<4.54"),
    Mutant("surface.attentions_are_scores@4.54", "surface",
           "output_attentions returns the raw scores (before the mask and softmax) instead of the probabilities",
           MODELING_BERT, "return context_layer, attention_probs", "return context_layer, attention_scores",
           "surface.attentions", ">=4.54,<5.0"),
    Mutant("surface.attentions_transposed", "surface",
           "eager attention returns its probabilities transposed (keys by queries)",
           MODELING_BERT, "    attn_output = attn_output.transpose(1, 2).contiguous()\n\n    return attn_output, attn_weights",
           "    attn_output = attn_output.transpose(1, 2).contiguous()\n\n"
           "    return attn_output, attn_weights.transpose(-1, -2)", "surface.attentions", ">=5.0"),
    # --- hidden states ---------------------------------------------------------------------------------------------
    Mutant("surface.hidden_states_last_missing", "surface",
           "output_hidden_states leaves out the last layer's output (the state after the loop is not appended)",
           MODELING_BERT, "if output_hidden_states:\n            all_hidden_states = all_hidden_states + (hidden_states,)\n",
           "if False:\n            all_hidden_states = all_hidden_states + (hidden_states,)\n",
           "surface.hidden_states", ">=4.4,<5.0"),
    Mutant("surface.hidden_states_no_embeddings", "surface",
           "output_hidden_states leaves out the embeddings output (the input of layer 0)",
           OUTPUT_CAPTURING, "if capture_initial_hidden_state and len(collected_outputs[key]) == 0:",
           "if False and capture_initial_hidden_state and len(collected_outputs[key]) == 0:",
           "surface.hidden_states", ">=5.24"),
    # --- inputs_embeds ---------------------------------------------------------------------------------------------
    Mutant("surface.inputs_embeds_scaled", "surface",
           "given inputs_embeds are scaled by 2 (an embed_scale applied to the caller's embeddings only)",
           MODELING_BERT, "if inputs_embeds is None:\n            inputs_embeds = self.word_embeddings(input_ids)\n",
           "if inputs_embeds is None:\n            inputs_embeds = self.word_embeddings(input_ids)\n"
           "        else:\n            inputs_embeds = inputs_embeds * 2.0\n",
           "surface.inputs_embeds", ">=4.4"),
    # --- head_mask (4.x) -------------------------------------------------------------------------------------------
    Mutant("surface.head_mask_ignored", "surface", "head_mask reaches the attention layer but is not applied",
           MODELING_BERT, "attention_probs = attention_probs * head_mask",
           "attention_probs = attention_probs * torch.ones_like(head_mask)", "surface.head_mask", ">=4.4,<5.0"),
    # --- the untied decoder (5.x) ----------------------------------------------------------------------------------
    Mutant("surface.untied_decoder_shared_bias", "surface",
           "an untied MLM decoder adds cls.predictions.bias instead of its own decoder bias (the 4.x rule)",
           MODELING_BERT, "hidden_states = self.transform(hidden_states)\n        hidden_states = self.decoder(hidden_states)",
           "hidden_states = self.transform(hidden_states)\n"
           "        hidden_states = self.decoder(hidden_states) - self.decoder.bias + self.bias",
           "surface.untied_decoder", ">=5.0"),
]
