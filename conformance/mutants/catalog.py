"""The mutant catalog: every seeded bug (`MUTANTS`, `MUTANTS_BY_ID`) and the fixed subsets (`SUBSETS`). The
mutants of the model's wider surface, of decoding, of the backward pass and of train mode live in the `catalog_*`
modules beside this one. Data only: `sandbox` applies a mutant, `runner` runs it."""

from . import catalog_decoding, catalog_gradients, catalog_outcomes, catalog_surface, catalog_train
from .mutant import (ACTIVATIONS, AREA_PATHS, AREAS, DATA_COLLATOR, LOSS_UTILS, MASKING_UTILS, MODELING_BERT,  # noqa: F401
                     MODELING_UTILS, OPTIMIZATION, PATH_TARGETS, PATHS, SDPA_ATTENTION, TOKENIZATION_BERT,
                     TOKENIZATION_BERT_LEGACY, TRAINER, Mutant)

_SELF_ATTENTION_INIT = (
    "\n    def __init__(self, config, is_causal=False, layer_idx=None):\n        super().__init__()\n"
    "        if config.hidden_size % config.num_attention_heads != 0 and not hasattr(config, \"embedding_size\"):\n"
    "            raise ValueError(\n"
    "                f\"The hidden size ({config.hidden_size}) is not a multiple of the number of attention \"\n"
    "                f\"heads ({config.num_attention_heads})\"\n            )\n        self.config = config\n\n"
    "        self.num_attention_heads = config.num_attention_heads\n"
    "        self.attention_head_size = int(config.hidden_size / config.num_attention_heads)\n"
    "        self.all_head_size = self.num_attention_heads * self.attention_head_size\n        ")
_ADAM_SPARSE = "                if grad.is_sparse:\n                    raise RuntimeError(\"Adam does"

MUTANTS = [
    # --- encoder: embeddings ---------------------------------------------------------------------------------
    Mutant("encoder.token_type_dropped", "encoder", "token-type embeddings are looked up but never added",
           MODELING_BERT, "embeddings = inputs_embeds + token_type_embeddings", "embeddings = inputs_embeds",
           "encoder.bidirectional", ">=4.4"),
    Mutant("encoder.position_offset", "encoder",
           "default position ids start at 1 (a RoBERTa-style padding_idx + 1 offset applied to BERT)",
           MODELING_BERT, "position_ids = self.position_ids[:, cache_length : seq_length + cache_length]",
           "position_ids = self.position_ids[:, cache_length + 1 : seq_length + cache_length + 1]",
           "encoder.bidirectional", ">=5.24"),
    Mutant("encoder.embedding_layernorm_eps", "encoder",
           "the embedding LayerNorm ignores config.layer_norm_eps and uses torch's default 1e-5",
           MODELING_BERT,
           "self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)\n\n"
              "        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)",
           "self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)\n\n"
           "        self.LayerNorm = nn.LayerNorm(config.hidden_size)",
           "encoder.bidirectional", ">=5.0"),
    # --- encoder: attention -----------------------------------------------------------------------------------
    Mutant("encoder.attention_scale", "encoder",
           "attention scores scaled by 1/sqrt(hidden size) instead of 1/sqrt(head size)",
           MODELING_BERT,
           "class BertSelfAttention(nn.Module):" + _SELF_ATTENTION_INIT
              + "self.scaling = self.attention_head_size**-0.5",
           "class BertSelfAttention(nn.Module):" + _SELF_ATTENTION_INIT + "self.scaling = self.all_head_size**-0.5",
           "encoder.bidirectional", ">=5.0"),
    Mutant("encoder.scaling_recomputed", "encoder",
           "eager attention ignores its `scaling` argument and recomputes 1/sqrt(d) from the query's last dimension",
           MODELING_BERT, "attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling\n",
           "attn_weights = torch.matmul(query, key.transpose(2, 3)) * query.size(-1) ** -0.5\n",
           "encoder", ">=5.0",
           equivalent="BERT's attention modules always pass scaling=self.scaling = attention_head_size**-0.5, and "
                      "the query reaching eager_attention_forward is viewed as [..., -1, attention_head_size] and "
                      "transposed, so query.size(-1) == attention_head_size: both sides evaluate the same Python "
                      "expression int ** -0.5 on the same int, giving the bit-identical float. Only a caller passing "
                      "a different scaling could tell, and no BERT module does."),
    Mutant("encoder.softmax_axis", "encoder", "attention softmax normalised over the queries instead of the keys",
           MODELING_BERT, "attn_weights = nn.functional.softmax(attn_weights, dim=-1)",
           "attn_weights = nn.functional.softmax(attn_weights, dim=-2)",
           "encoder.bidirectional", ">=5.0"),
    Mutant("encoder.padding_mask_dropped", "encoder",
           "the encoder's padding mask is never applied (attention_mask not passed to the mask builder)",
           MODELING_BERT,
           "inputs_embeds=embedding_output,\n                attention_mask=attention_mask,\n            )",
           "inputs_embeds=embedding_output,\n                attention_mask=None,\n            )",
           "encoder.bidirectional", ">=5.4"),
    Mutant("encoder.padding_mask_inverted", "encoder",
           "padding mask sign flipped: padded keys attended, real keys masked",
           MASKING_UTILS, "return padding_mask[batch_idx, kv_idx]", "return ~padding_mask[batch_idx, kv_idx]",
           "encoder.bidirectional", ">=5.0"),
    Mutant("encoder.causal_mask_strict", "encoder",
           "causal mask off by one: a position may not attend to itself (kv < q instead of kv <= q)",
           MASKING_UTILS, "return kv_idx <= q_idx", "return kv_idx < q_idx", "encoder.causal", ">=5.0"),
    Mutant("encoder.attention_residual", "encoder",
           "attention sublayer's residual adds its own output instead of the layer input",
           MODELING_BERT, "attention_output = self.output(attention_output, hidden_states)",
           "attention_output = self.output(attention_output, attention_output)",
           "encoder.bidirectional", ">=5.0"),
    # --- encoder: activations -----------------------------------------------------------------------------------
    Mutant("encoder.gelu_is_relu", "encoder", "hidden_act 'gelu' mapped to ReLU in ACT2FN",
           ACTIVATIONS, '"gelu": GELUActivation,', '"gelu": nn.ReLU,', "encoder.bidirectional", ">=4.27"),
    Mutant("encoder.gelu_tanh_approx", "encoder",
           "exact GELU silently replaced by its tanh approximation",
           ACTIVATIONS, "            self.act = nn.functional.gelu\n",
           '            self.act = lambda x: nn.functional.gelu(x, approximate="tanh")\n',
           "encoder.bidirectional", ">=4.17"),
    Mutant("encoder.quick_gelu_constant", "encoder", "quick_gelu's sigmoid slope rounded from 1.702 to 1.7",
           ACTIVATIONS, "return input * torch.sigmoid(1.702 * input)", "return input * torch.sigmoid(1.7 * input)",
           "encoder.bidirectional", ">=4.17"),
    # --- encoder: pooler ---------------------------------------------------------------------------------------
    Mutant("encoder.pooler_no_tanh", "encoder", "pooler drops its tanh", MODELING_BERT,
           "pooled_output = self.activation(pooled_output)", "pooled_output = pooled_output",
           "encoder.bidirectional", ">=4.4"),
    Mutant("encoder.pooler_last_token", "encoder", "pooler reads the last token's hidden state instead of [CLS]",
           MODELING_BERT, "first_token_tensor = hidden_states[:, 0]", "first_token_tensor = hidden_states[:, -1]",
           "encoder.bidirectional", ">=4.4"),
    # --- weight tying -------------------------------------------------------------------------------------------
    Mutant("tying.decoder_untied", "tying",
           "BertForMaskedLM's decoder weight not tied to the word embeddings (mapping entry lost)",
           MODELING_BERT,
           'class BertForMaskedLM(BertPreTrainedModel):\n    _tied_weights_keys = {\n'
              '        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",\n',
           "class BertForMaskedLM(BertPreTrainedModel):\n    _tied_weights_keys = {\n",
           "head.masked_lm", ">=5.0"),
    Mutant("tying.decoder_bias_untied", "tying",
           "BertForPreTraining's decoder gets its own bias instead of sharing cls.predictions.bias",
           MODELING_BERT,
           '"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",\n'
              '        "cls.predictions.decoder.bias": "cls.predictions.bias",\n    }\n\n'
              '    def __init__(self, config: BertConfig):\n        super().__init__(config)\n\n'
              '        self.bert = BertModel(config)\n        self.cls = BertPreTrainingHeads(config)',
           '"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",\n    }\n\n'
           '    def __init__(self, config: BertConfig):\n        super().__init__(config)\n\n'
           '        self.bert = BertModel(config)\n        self.cls = BertPreTrainingHeads(config)',
           "head.pretraining", ">=5.24"),
    Mutant("tying.flag_inverted", "tying",
           "config.tie_word_embeddings read inverted: models asking for tying get none",
           MODELING_UTILS,
           "tie_word_embeddings = getattr(self.config, \"tie_word_embeddings\", False)\n"
              "        if not tie_word_embeddings:",
           "tie_word_embeddings = getattr(self.config, \"tie_word_embeddings\", False)\n"
           "        if tie_word_embeddings:",
           "head.masked_lm", ">=5.0"),
    Mutant("tying.output_bias_dropped", "tying", "the MLM decoder applied without its output-only bias", MODELING_BERT,
           "        hidden_states = self.decoder(hidden_states)\n",
           "        hidden_states = nn.functional.linear(hidden_states, self.decoder.weight)\n",
           "head.masked_lm", ">=4.4"),
    # --- heads ------------------------------------------------------------------------------------------------
    Mutant("head.mlm_ignore_dropped", "head", "MLM loss counts -100 positions (labels clamped to class 0)",
           MODELING_BERT,
           "            masked_lm_loss = loss_fct(prediction_scores.view(-1, self.config.vocab_size), labels.view(-1))"
           "\n\n        return MaskedLMOutput",
           "            masked_lm_loss = loss_fct(prediction_scores.view(-1, self.config.vocab_size), "
           "labels.view(-1).clamp(min=0))\n\n        return MaskedLMOutput",
           "head.masked_lm", ">=5.0"),
    Mutant("head.pretraining_mean", "head", "pre-training loss averages MLM and NSP instead of summing them",
           MODELING_BERT, "total_loss = masked_lm_loss + next_sentence_loss",
           "total_loss = (masked_lm_loss + next_sentence_loss) / 2", "head.pretraining", ">=4.4"),
    Mutant("head.nsp_labels_swapped", "head",
           "NSP label convention swapped (logit 0 scores 'random' instead of 'is next')", MODELING_BERT,
           "seq_relationship_scores = self.cls(pooled_output)",
           "seq_relationship_scores = self.cls(pooled_output).flip(-1)",
           "head.next_sentence", ">=4.4"),
    Mutant("head.seqcls_first_token", "head",
           "sequence classifier reads the raw [CLS] hidden state instead of the pooled output", MODELING_BERT,
           "        pooled_output = outputs[1]\n\n        pooled_output = self.dropout(pooled_output)\n"
           "        logits = self.classifier(pooled_output)\n\n        loss = None\n        if labels is not None:\n"
           "            if self.config.problem_type is None:",
           "        pooled_output = outputs[0][:, 0]\n\n        pooled_output = self.dropout(pooled_output)\n"
           "        logits = self.classifier(pooled_output)\n\n        loss = None\n        if labels is not None:\n"
           "            if self.config.problem_type is None:",
           "head.sequence_classification", ">=4.6"),
    Mutant("head.multiple_choice_reshape", "head", "choice scores reshaped choice-major ([C, B] transposed)",
           MODELING_BERT,
           "reshaped_logits = logits.view(-1, num_choices)", "reshaped_logits = logits.view(num_choices, -1).t()",
           "head.multiple_choice", ">=4.4"),
    Mutant("head.tokcls_dropout_in_eval", "head",
           "token classifier's dropout applied with functional dropout's training=True default, in eval too",
           MODELING_BERT, "sequence_output = self.dropout(sequence_output)",
           "sequence_output = nn.functional.dropout(sequence_output, p=0.1)",
           "head.token_classification", ">=4.4"),
    Mutant("head.tokcls_loss_masked_by_attention", "head",
           "token-classification loss also drops padded positions (the pre-4.17 attention-mask rule come back)",
           MODELING_BERT, "            loss = loss_fct(logits.view(-1, self.num_labels), labels.view(-1))\n\n"
           "        return TokenClassifierOutput",
           "            active = labels.view(-1) if attention_mask is None else torch.where(\n"
           "                attention_mask.view(-1) == 1, labels.view(-1), torch.tensor(-100).type_as(labels))\n"
           "            loss = loss_fct(logits.view(-1, self.num_labels), active)\n\n"
           "        return TokenClassifierOutput",
           "head.token_classification", ">=5.0"),
    Mutant("head.qa_clamp", "head", "QA positions clamped to L-1, so out-of-span answers are scored, not ignored",
           MODELING_BERT, "start_positions = start_positions.clamp(0, ignored_index)",
           "start_positions = start_positions.clamp(0, ignored_index - 1)", "head.question_answering", ">=4.17"),
    Mutant("head.qa_loss_sum", "head", "QA loss sums the start and end losses instead of averaging them", MODELING_BERT,
           "            total_loss = (start_loss + end_loss) / 2\n\n        return QuestionAnsweringModelOutput",
           "            total_loss = start_loss + end_loss\n\n        return QuestionAnsweringModelOutput",
           "head.question_answering", ">=5.0"),
    # --- loss rules ---------------------------------------------------------------------------------------------
    Mutant("loss.causal_shift", "loss", "causal LM labels shifted the wrong way (position t scored against t-1)",
           LOSS_UTILS, "shift_labels = labels[..., 1:].contiguous()", "shift_labels = labels[..., :-1].contiguous()",
           "causal_lm", ">=4.47"),
    Mutant("loss.num_items_ignored", "loss",
           "num_items_in_batch ignored: the loss is the mean over this batch (gradient accumulation bug)", LOSS_UTILS,
           'reduction = "sum" if num_items_in_batch is not None else "mean"', 'reduction = "mean"',
           "num_items_in_batch", ">=4.47"),
    Mutant("loss.regression_no_squeeze", "loss",
           "num_labels == 1 regression compares [B, 1] logits with [B] labels (broadcast to [B, B])", MODELING_BERT,
           "loss = loss_fct(logits.squeeze(), labels.squeeze())", "loss = loss_fct(logits, labels)",
           "regression", ">=4.17"),
    Mutant("loss.multi_label_softmax", "loss",
           "multi-label classification uses softmax cross-entropy instead of per-class sigmoid BCE", MODELING_BERT,
           "                loss_fct = BCEWithLogitsLoss()\n                loss = loss_fct(logits, labels)\n\n"
           "        return SequenceClassifierOutput",
           "                loss_fct = CrossEntropyLoss()\n                loss = loss_fct(logits, labels)\n\n"
           "        return SequenceClassifierOutput",
           "multi_label", ">=5.0"),
    Mutant("loss.int32_not_class", "loss",
           "problem-type inference treats only int64 as class indices: int32 labels fall to multi-label BCE",
           MODELING_BERT, "(labels.dtype == torch.long or labels.dtype == torch.int)", "(labels.dtype == torch.long)",
           "int32_labels", ">=4.6"),
    # --- schedules -------------------------------------------------------------------------------------------------
    Mutant("schedule.linear_off_by_one", "schedule", "linear decay one step late (num_training_steps - step + 1)",
           OPTIMIZATION,
           "float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps))",
           "float(num_training_steps - current_step + 1) / float(max(1, num_training_steps - num_warmup_steps))",
           "schedule.linear", ">=4.4"),
    Mutant("schedule.cosine_dead_code", "schedule",
           "cosine schedule runs a full cosine wave per cycle instead of a half (edited in the first, shadowed, "
           "definition of _get_cosine_schedule_with_warmup_lr_lambda)", OPTIMIZATION,
           "    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))\n",
           "    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * progress)))\n",
           "schedule.cosine", ">=4.41",
           equivalent="optimization.py defines _get_cosine_schedule_with_warmup_lr_lambda twice; the second `def` "
                      "(with min_lr_rate) rebinds the module global before any code can reach the first: the module "
                      "body between the two only defines functions, and every caller (get_cosine_schedule_with_warmup"
                      ", get_cosine_with_min_lr_schedule_with_warmup, and any importer, which runs after the module "
                      "body) looks the name up at call time. The first function object is unreachable, so no input "
                      "can execute the edited line."),
    Mutant("schedule.cosine_full_wave@4.4", "schedule",
           "cosine schedule runs a full cosine wave per cycle instead of a half (before 4.41 the first definition "
           "is the only one, and live)", OPTIMIZATION,
           "    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))\n",
           "    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * progress)))\n",
           "schedule.cosine", "<4.41"),
    Mutant("schedule.cosine_full_wave", "schedule",
           "cosine schedule runs a full cosine wave per cycle instead of a half (the live definition)", OPTIMIZATION,
           "    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))\n"
           "    factor = factor * (1 - min_lr_rate)",
           "    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * progress))\n"
           "    factor = factor * (1 - min_lr_rate)",
           "schedule.cosine", ">=4.41"),
    Mutant("schedule.restarts_no_modulo", "schedule", "hard restarts never restart (progress not taken modulo 1)",
           OPTIMIZATION, "math.pi * ((float(num_cycles) * progress) % 1.0)", "math.pi * (float(num_cycles) * progress)",
           "schedule.cosine_with_restarts", ">=4.4"),
    Mutant("schedule.polynomial_power_ignored", "schedule", "polynomial decay ignores `power` (always linear)",
           OPTIMIZATION,
           "decay = lr_range * pct_remaining**power + lr_end", "decay = lr_range * pct_remaining + lr_end",
           "schedule.polynomial", ">=4.17"),
    Mutant("schedule.polynomial_lr_end_check", "schedule",
           "polynomial schedule accepts lr_end == lr_init (strict check weakened)", OPTIMIZATION,
           "if not (lr_init > lr_end):", "if lr_init < lr_end:", "schedule.polynomial", ">=4.17", path="error"),
    Mutant("schedule.constant_warmup_ahead", "schedule", "constant-with-warmup ramps one step ahead", OPTIMIZATION,
           "return float(current_step) / float(max(1.0, num_warmup_steps))",
           "return float(current_step + 1) / float(max(1.0, num_warmup_steps))",
           "schedule.constant_with_warmup", ">=4.4"),
    Mutant("schedule.inverse_sqrt_shift", "schedule", "inverse-sqrt decay not shifted by the warmup length",
           OPTIMIZATION,
           "shift = timescale - num_warmup_steps", "shift = timescale", "schedule.inverse_sqrt", ">=4.27"),
    Mutant("schedule.min_lr_unscaled", "schedule", "cosine-with-min-lr adds the floor without rescaling the wave",
           OPTIMIZATION, "    factor = factor * (1 - min_lr_rate) + min_lr_rate\n    return max(0, factor)\n\n\n"
           "def get_cosine_with_min_lr_schedule_with_warmup(",
           "    factor = factor + min_lr_rate\n    return max(0, factor)\n\n\n"
           "def get_cosine_with_min_lr_schedule_with_warmup(",
           "schedule.cosine_with_min_lr", ">=4.41"),
    Mutant("schedule.warmup_rate_not_ahead", "schedule",
           "cosine_warmup_with_min_lr's warmup starts at 0 instead of one step ahead", OPTIMIZATION,
           "return (current_step + 1.0) / max(1.0, num_warmup_steps)",
           "return current_step / max(1.0, num_warmup_steps)", "schedule.cosine_warmup_with_min_lr", ">=4.54"),
    Mutant("schedule.wsd_sqrt_decay", "schedule", "WSD 1-sqrt decay written as sqrt(1 - progress)", OPTIMIZATION,
           "factor = 1.0 - math.sqrt(progress)", "factor = math.sqrt(1.0 - progress)",
           "schedule.warmup_stable_decay", ">=4.49"),
    Mutant("schedule.wsd_floor_zero", "schedule", "WSD after the decay returns 0 instead of min_lr_ratio", OPTIMIZATION,
           "        return max(0.0, factor)\n    return min_lr_ratio\n",
           "        return max(0.0, factor)\n    return 0.0\n",
           "schedule.warmup_stable_decay", ">=4.49"),
    Mutant("schedule.greedy_increase_squared", "schedule", "GreedyLR raises the rate by factor^-2 instead of factor^-1",
           OPTIMIZATION, "new_lr = min(old_lr / self.factor, self.max_lrs[i])",
           "new_lr = min(old_lr / self.factor**2, self.max_lrs[i])", "schedule.greedy", ">=5.4"),
    # --- AdamW (transformers.AdamW, removed in 4.50) ------------------------------------------------------------
    Mutant("adamw.bias_correction_dropped", "adamw",
           "bias correction never applied: the correct_bias flag ignored", OPTIMIZATION,
           'if group["correct_bias"]:  # No bias correction for Bert', "if False:  # No bias correction for Bert",
           "optim.transformers.AdamW", "<4.50"),
    Mutant("adamw.eps_inside_sqrt", "adamw", "epsilon added inside the square root of the second moment", OPTIMIZATION,
           'denom = exp_avg_sq.sqrt().add_(group["eps"])', 'denom = exp_avg_sq.add(group["eps"]).sqrt()',
           "optim.transformers.AdamW", "<4.50"),
    Mutant("adamw.l2_not_decoupled", "adamw",
           "weight decay also folded into the gradient (Adam + L2), not only decoupled", OPTIMIZATION,
           "grad = p.grad\n" + _ADAM_SPARSE, 'grad = p.grad.add(p, alpha=group["weight_decay"])\n' + _ADAM_SPARSE,
           "optim.transformers.AdamW", ">=4.36,<4.50"),
    Mutant("adamw.l2_not_decoupled@4.4", "adamw",
           "weight decay also folded into the gradient (Adam + L2), not only decoupled", OPTIMIZATION,
           "grad = p.grad.data\n" + _ADAM_SPARSE,
           'grad = p.grad.data.add(p.data, alpha=group["weight_decay"])\n' + _ADAM_SPARSE,
           "optim.transformers.AdamW", "<4.36"),
    Mutant("adamw.decay_without_lr", "adamw", "decoupled weight decay not scaled by the learning rate", OPTIMIZATION,
           'alpha=(-group["lr"] * group["weight_decay"]))', 'alpha=(-group["weight_decay"]))',
           "optim.transformers.AdamW", ">=4.17,<4.50"),
    Mutant("adamw.decay_without_lr@4.4", "adamw", "decoupled weight decay not scaled by the learning rate",
           OPTIMIZATION, 'alpha=-group["lr"] * group["weight_decay"])', 'alpha=-group["weight_decay"])',
           "optim.transformers.AdamW", "<4.17"),
    # --- weight-decay grouping ----------------------------------------------------------------------------------
    Mutant("decay.bias_pattern", "decay", "no-decay bias pattern too narrow: biases get weight decay", TRAINER,
           'forbidden_name_patterns = [r"bias", ', 'forbidden_name_patterns = [r"\\.bias_", ',
           "no_decay", ">=4.54"),
    Mutant("decay.layernorm_type", "decay", "LayerNorm modules not exempt from weight decay", TRAINER,
           "get_parameter_names(model, [nn.LayerNorm], forbidden_name_patterns)",
           'get_parameter_names(model, [], [r"bias"])', "no_decay", ">=4.54"),
    Mutant("decay.embeddings_exempt", "decay", "embedding matrices wrongly exempt from weight decay", TRAINER,
           'forbidden_name_patterns = [r"bias", ', 'forbidden_name_patterns = [r"bias", r"embeddings", ',
           "no_decay", ">=4.54"),
    # --- MLM masking collator -----------------------------------------------------------------------------------
    Mutant("masking.rate_low", "masking", "selection probability 13% low (0.87 * mlm_probability)", DATA_COLLATOR,
           "probability_matrix = torch.full(labels.shape, self.mlm_probability)",
           "probability_matrix = torch.full(labels.shape, self.mlm_probability * 0.87)",
           "masking.rates.pt", ">=5.24"),
    Mutant("masking.random_unscaled", "masking",
           "random-replacement probability not rescaled to the share left after [MASK]", DATA_COLLATOR,
           "random_replace_prob_scaled = self.random_replace_prob / remaining_prob\n\n"
           "        # random_replace_prob% of the time, we replace masked input tokens with random word\n"
           "        indices_random = (\n            torch",
           "random_replace_prob_scaled = self.random_replace_prob\n\n"
           "        # random_replace_prob% of the time, we replace masked input tokens with random word\n"
           "        indices_random = (\n            torch",
           "masking.rates.pt", ">=4.49"),
    Mutant("masking.special_selected", "masking", "special tokens not protected from selection", DATA_COLLATOR,
           "probability_matrix.masked_fill_(no_mask_mask, value=0.0)", "pass", "masking.rule.pt", ">=5.0"),
    Mutant("masking.np_rate_high", "masking", "numpy path selects 2.5 points too often", DATA_COLLATOR,
           "probability_matrix = np.full(labels.shape, self.mlm_probability)",
           "probability_matrix = np.full(labels.shape, self.mlm_probability + 0.025)",
           "masking.rates.np", ">=4.17"),
    Mutant("masking.causal_pad_kept", "masking", "mlm=False labels keep padding instead of -100", DATA_COLLATOR,
           'labels = batch["input_ids"].clone()\n            if self.tokenizer.pad_token_id is not None:\n'
           "                labels[labels == self.tokenizer.pad_token_id] = -100\n",
           'labels = batch["input_ids"].clone()\n            if self.tokenizer.pad_token_id is not None:\n'
           "                pass\n",
           "masking.rule.pt", ">=4.4"),
    Mutant("masking.unselected_labels_kept", "masking",
           "labels of unselected positions kept instead of -100 (loss over every token)", DATA_COLLATOR,
           "masked_indices = torch.BoolTensor(self._whole_word_mask(word_ids, masked_indices))\n\n"
           "        labels[~masked_indices] = -100",
           "masked_indices = torch.BoolTensor(self._whole_word_mask(word_ids, masked_indices))\n\n"
           "        labels[~masked_indices] = labels[~masked_indices]",
           "masking.rule.pt", ">=5.0"),
    Mutant("masking.mask_token_is_pad", "masking", "selected tokens replaced by [PAD] instead of [MASK]", DATA_COLLATOR,
           "inputs[indices_replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)",
           "inputs[indices_replaced] = self.tokenizer.pad_token_id", "masking.rates.pt", ">=5.24"),
]
# --- the other paths: each mutant below is killed through one path of the suite other than float64 eager ----------
_SEQCLS_SINGLE_LABEL = ("                loss_fct = CrossEntropyLoss()\n"
                        "                loss = loss_fct(logits.view(-1, self.num_labels), labels.view(-1))")
_TOKCLS_LOSS = "            loss = loss_fct(logits.view(-1, self.num_labels), labels.view(-1))\n\n        return Token"
_SDPA_IS_CAUSAL_4 = "True if self.is_decoder and not is_cross_attention and attention_mask is None and tgt_len > 1"
_SELF_OUTPUT = ("class BertSelfOutput(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
                "        self.dense = nn.Linear(config.hidden_size, config.hidden_size)\n")
_POOLER_INIT = ("class BertPooler(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
                "        self.dense = nn.Linear(config.hidden_size, config.hidden_size)\n")
_LOWER = "                if self.do_lower_case:\n                    token = token.lower()\n"
_PAIR = "        return cls + token_ids_0 + sep + token_ids_1 + sep\n"
_SINGLE = "            return [self.cls_token_id] + token_ids_0 + [self.sep_token_id]\n"

PATH_MUTANTS = [
    # --- sdpa: the sdpa attention function (5.x) and BertSdpaSelfAttention (4.41-4.57) --------------------------
    Mutant("encoder.sdpa_causal_by_default", "encoder",
           "sdpa ignores the module's is_causal: every attention without a mask (no padding) runs causal",
           SDPA_ATTENTION, "is_causal = q_length > 1 and attention_mask is None and is_causal\n",
           "is_causal = q_length > 1 and attention_mask is None\n", "encoder.bidirectional", ">=5.19", path="sdpa"),
    Mutant("encoder.sdpa_causal_by_default@5.0", "encoder",
           "sdpa ignores the module's is_causal: every attention without a mask (no padding) runs causal",
           SDPA_ATTENTION, "is_causal = query.shape[2] > 1 and attention_mask is None and is_causal\n",
           "is_causal = query.shape[2] > 1 and attention_mask is None\n", "encoder.bidirectional", ">=5.0,<5.19",
           path="sdpa"),
    Mutant("encoder.sdpa_mask_convention", "encoder",
           "sdpa's boolean mask passed with nn.MultiheadAttention's convention (True = masked out): padded keys "
           "attended, real ones masked", SDPA_ATTENTION, "        attn_mask=attention_mask,\n        dropout_p=dropout,",
           "        attn_mask=None if attention_mask is None else ~attention_mask,\n        dropout_p=dropout,",
           "encoder.bidirectional", ">=5.0", path="sdpa"),
    Mutant("encoder.sdpa_dropout_in_eval", "encoder",
           "sdpa takes the module's attention dropout probability instead of the caller's (0.0 in eval): attention "
           "dropout in eval mode", SDPA_ATTENTION, "        dropout_p=dropout,\n",
           "        dropout_p=module.dropout.p if hasattr(module, \"dropout\") else dropout,\n",
           "encoder.bidirectional", ">=5.0", path="sdpa"),
    Mutant("encoder.sdpa_dropout_in_eval@4.41", "encoder",
           "BertSdpaSelfAttention applies attention dropout in eval mode too (the self.training test dropped)",
           MODELING_BERT, "dropout_p=self.dropout_prob if self.training else 0.0,", "dropout_p=self.dropout_prob,",
           "encoder.bidirectional", ">=4.41,<5.0", path="sdpa"),
    Mutant("encoder.sdpa_causal_encoder@4.47", "encoder",
           "BertSdpaSelfAttention runs causal whenever no mask is given, decoder or not", MODELING_BERT,
           _SDPA_IS_CAUSAL_4, _SDPA_IS_CAUSAL_4.replace("self.is_decoder and ", ""), "encoder.bidirectional",
           ">=4.47,<5.0", path="sdpa"),
    # --- float32: seen at the float32 tolerance ----------------------------------------------------------------
    Mutant("loss.causal_lm_bfloat16", "loss",
           "ForCausalLMLoss casts the logits down to bfloat16 instead of up to float32 (a mixed-precision cast "
           "written the wrong way round)", LOSS_UTILS,
           "precision issues\n    logits = logits.float()\n\n    if shift_labels is None:",
           "precision issues\n    logits = logits.bfloat16()\n\n    if shift_labels is None:",
           "head.causal_lm", ">=4.50", path="float32"),
    Mutant("encoder.self_output_layernorm_eps", "encoder",
           "the attention output's LayerNorm ignores config.layer_norm_eps (torch's default 1e-5)", MODELING_BERT,
           _SELF_OUTPUT + "        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)",
           _SELF_OUTPUT + "        self.LayerNorm = nn.LayerNorm(config.hidden_size)",
           "encoder.bidirectional", ">=4.4", path="float32"),
    Mutant("encoder.softmax_bfloat16", "encoder",
           "eager attention's softmax computed in bfloat16 and cast back (a low-precision softmax)", MODELING_BERT,
           "attn_weights = nn.functional.softmax(attn_weights, dim=-1)",
           "attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.bfloat16).to(query.dtype)",
           "encoder.bidirectional", ">=5.0", path="float32"),
    # --- error: validations and refusals that stop refusing ------------------------------------------------------
    Mutant("head.seqcls_labels_clamped", "head",
           "single-label classification clamps labels to num_labels - 1: an out-of-range class is scored, not refused",
           MODELING_BERT, _SEQCLS_SINGLE_LABEL,
           _SEQCLS_SINGLE_LABEL.replace("labels.view(-1))", "labels.view(-1).clamp(max=self.num_labels - 1))"),
           "errors.out_of_range.sequence_classification", ">=4.4", path="error"),
    Mutant("head.tokcls_labels_cast_long", "head",
           "token classification casts its labels to long: float labels are truncated to classes, not refused",
           MODELING_BERT, _TOKCLS_LOSS, _TOKCLS_LOSS.replace("labels.view(-1))", "labels.view(-1).long())"),
           "errors.float_dtype.token_classification", ">=5.0", path="error"),
    Mutant("masking.probability_unchecked", "masking",
           "the collator's mlm_probability range check dropped (only None refused)", DATA_COLLATOR,
           "if self.mlm_probability is None or self.mlm_probability < 0 or self.mlm_probability > 1:",
           "if self.mlm_probability is None:", "errors.masking.probabilities", ">=4.54", path="error"),
    # --- metamorphic: seen by a relation between runs --------------------------------------------------------
    Mutant("encoder.embedding_dropout_in_eval", "encoder",
           "the embeddings' dropout written functionally with its training=True default: dropout in eval mode",
           MODELING_BERT, "        embeddings = self.dropout(embeddings)\n",
           "        embeddings = nn.functional.dropout(embeddings, p=self.dropout.p)\n",
           "metamorphic.eval_determinism", ">=4.4", path="metamorphic"),
    Mutant("encoder.padding_mask_first_row", "encoder",
           "every example of a batch takes the first example's padding mask (the batch index dropped)",
           MASKING_UTILS, "return padding_mask[batch_idx, kv_idx]", "return padding_mask[0, kv_idx]",
           "metamorphic.batch_split", ">=5.0", path="metamorphic"),
    Mutant("head.tokcls_loss_over_all_positions", "head",
           "token-classification loss averaged over every position, -100 ones included: padding dilutes it",
           MODELING_BERT, "            loss_fct = CrossEntropyLoss()\n" + _TOKCLS_LOSS,
           "            loss_fct = CrossEntropyLoss(reduction=\"sum\")\n"
           + _TOKCLS_LOSS.replace("labels.view(-1))", "labels.view(-1)) / labels.numel()"),
           "metamorphic.padding_invariance.token_classification", ">=5.0", path="metamorphic"),
    # --- checkpoint: the real checkpoint's weights and tokenizer (slow vs fast, structure, round trip) ----------
    Mutant("encoder.pooler_renamed", "encoder",
           "the pooler's Linear renamed (dense -> linear) in a refactor: the checkpoint's pooler weights no longer "
           "land, and a non-strict load leaves them at their random init", MODELING_BERT, _POOLER_INIT,
           _POOLER_INIT.replace("self.dense = nn.Linear", "self.linear = nn.Linear")
           + "        self.dense = lambda x: self.linear(x)\n", "checkpoint.weights", ">=4.4", path="checkpoint"),
    Mutant("tokenizer.lower_case_dropped", "tokenizer",
           "the slow tokenizer never lower-cases (do_lower_case only strips accents)", TOKENIZATION_BERT_LEGACY,
           _LOWER, _LOWER.replace("token.lower()", "token"), "checkpoint.tokenizer", ">=5.0"),
    Mutant("tokenizer.lower_case_dropped@4.4", "tokenizer",
           "the slow tokenizer never lower-cases (do_lower_case only strips accents)", TOKENIZATION_BERT,
           _LOWER, _LOWER.replace("token.lower()", "token"), "checkpoint.tokenizer", "<5.0"),
    Mutant("tokenizer.pair_last_sep_dropped", "tokenizer", "a sentence pair loses its final [SEP]",
           TOKENIZATION_BERT_LEGACY, _PAIR, _PAIR.replace(" + sep\n", "\n"), "checkpoint.tokenizer", ">=5.0"),
    Mutant("tokenizer.pair_last_sep_dropped@4.4", "tokenizer", "a sentence pair loses its final [SEP]",
           TOKENIZATION_BERT, _PAIR, _PAIR.replace(" + sep\n", "\n"), "checkpoint.tokenizer", "<5.0"),
    Mutant("tokenizer.single_cls_dropped", "tokenizer", "a single sequence gets no [CLS]",
           TOKENIZATION_BERT_LEGACY, _SINGLE, _SINGLE.replace("[self.cls_token_id] + ", ""), "checkpoint.tokenizer",
           ">=5.0"),
]
MUTANTS += PATH_MUTANTS
for _module in (catalog_surface, catalog_decoding, catalog_gradients, catalog_train, catalog_outcomes):
    MUTANTS += _module.MUTANTS
MUTANTS_BY_ID = {m.id: m for m in MUTANTS}
assert len(MUTANTS_BY_ID) == len(MUTANTS), "mutant ids must be unique"

# The CI subset: mutants from five areas and four paths (eager-float64, subject, sdpa, float32, error) whose checks
# are quick to start and kill at the first examples (CI runs it with --no-baseline: its main pytest run already
# passes these checks).
SUBSETS = {
    "quick": ("encoder.token_type_dropped", "head.qa_loss_sum", "loss.num_items_ignored",
              "schedule.inverse_sqrt_shift", "masking.unselected_labels_kept", "encoder.sdpa_dropout_in_eval",
              "loss.causal_lm_bfloat16", "masking.probability_unchecked"),
}
