"""The mutation self-check: seed one realistic bug at a time into a copy of transformers and require the suite to
catch it.

    bert-conformance mutants [--jobs 1] [--max-examples 100] [--timeout 300] [--only ID ...] [--area AREA]
                             [--subset quick] [--out reports/mutants.json] [--logs DIR] [--no-baseline]
    python -m conformance.mutants ...          (the same, without the CLI)
    python -m conformance.mutants --check-sources FOLDER     (the version ranges against FOLDER/<version>/transformers)

For each mutant of `MUTANTS` whose `versions` include the installed release, the runner copies the installed
`transformers` package into a temporary folder, replaces the mutant's `old` source text (it must occur exactly once)
by `new`, and runs the checks the mutant names (`pytest --pyargs conformance.suite -k CHECKS`, float64, eager
attention, the derandomized `ci` Hypothesis profile, stop at the first failure) with the copy first on
PYTHONPATH. A guard loaded into that pytest process (`-p conformance.mutants`) refuses to run unless the
`transformers` it imports is the mutated copy, so a mutant can never "survive" against the pristine package. First,
the baseline runs every selected check against the unmutated package: a check failing there cannot kill anything.

Outcomes: `killed` (a selected check failed), `survived` (every selected check passed), `equivalent` (declared
equivalent, with the argument, and indeed not killed), `timeout` and `error` (no verdict; counted as not killed),
`not_applicable` (the installed release's source differs; the mutant is written for other releases). The mutation
score is killed / applicable non-equivalent mutants. Results go to a JSON file that `markdown_section` renders.
"""

import argparse
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from packaging.specifiers import SpecifierSet
from packaging.version import Version

SCHEMA = 1
DEFAULT_OUT = os.path.join("reports", "mutants.json")
GUARD_ENV = "BERT_CONFORMANCE_MUTANT_GUARD"  # JSON {"root", "file", "new", "report"} for the in-process guard

AREAS = {
    "encoder": "embeddings, attention and its masks, activations, residuals, pooler",
    "tying": "MLM decoder tied to the word embeddings, output bias",
    "head": "task heads: logits and their own loss wiring",
    "loss": "loss rules: causal shift, regression, multi-label, problem type, num_items_in_batch",
    "schedule": "learning-rate schedules",
    "adamw": "transformers.AdamW (exists up to 4.49)",
    "decay": "the Trainer's weight-decay parameter grouping",
    "masking": "DataCollatorForLanguageModeling",
}


@dataclass(frozen=True)
class Mutant:
    """One seeded bug: replace `old` (exactly one occurrence) by `new` in `file` (relative to the transformers
    package). `checks` is the pytest -k expression selecting the checks expected to kill it; `versions` the releases
    whose source has `old` (a packaging SpecifierSet); `equivalent`, when set, argues that no input can tell the
    mutant from the original."""

    id: str
    area: str
    bug: str
    file: str
    old: str
    new: str
    checks: str
    versions: str = ">=5.0"
    equivalent: Optional[str] = None

    def applies_to(self, version) -> bool:
        return SpecifierSet(self.versions).contains(Version(str(version)), prereleases=True)


B = "models/bert/modeling_bert.py"
O = "optimization.py"
T = "trainer.py"
C = "data/data_collator.py"
L = "loss/loss_utils.py"
M = "masking_utils.py"
A = "activations.py"
U = "modeling_utils.py"

# Version ranges were checked against the sources of the releases tox.ini runs (4.4.2 4.6 4.17 4.27 4.36 4.41
# 4.47.1 4.49 4.50 4.54 5.0 5.4 5.19 5.24): `old` occurs exactly once in every sampled release the range contains
# (`python -m conformance.mutants --check-sources FOLDER` prints the matrix). A bound between two sampled releases
# is the sampled one; `apply` fails loudly if a release inside the range lacks `old`. Where the source differs
# across releases a mutant has one entry per range (`adamw.l2_not_decoupled` and `...@4.4`).
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
           B, "embeddings = inputs_embeds + token_type_embeddings", "embeddings = inputs_embeds",
           "encoder.bidirectional", ">=4.4"),
    Mutant("encoder.position_offset", "encoder",
           "default position ids start at 1 (a RoBERTa-style padding_idx + 1 offset applied to BERT)",
           B, "position_ids = self.position_ids[:, cache_length : seq_length + cache_length]",
           "position_ids = self.position_ids[:, cache_length + 1 : seq_length + cache_length + 1]",
           "encoder.bidirectional", ">=5.24"),
    Mutant("encoder.embedding_layernorm_eps", "encoder",
           "the embedding LayerNorm ignores config.layer_norm_eps and uses torch's default 1e-5",
           B, "self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)\n\n"
              "        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)",
           "self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)\n\n"
           "        self.LayerNorm = nn.LayerNorm(config.hidden_size)",
           "encoder.bidirectional", ">=5.0"),
    # --- encoder: attention -----------------------------------------------------------------------------------
    Mutant("encoder.attention_scale", "encoder",
           "attention scores scaled by 1/sqrt(hidden size) instead of 1/sqrt(head size)",
           B, "class BertSelfAttention(nn.Module):" + _SELF_ATTENTION_INIT
              + "self.scaling = self.attention_head_size**-0.5",
           "class BertSelfAttention(nn.Module):" + _SELF_ATTENTION_INIT + "self.scaling = self.all_head_size**-0.5",
           "encoder.bidirectional", ">=5.0"),
    Mutant("encoder.scaling_recomputed", "encoder",
           "eager attention ignores its `scaling` argument and recomputes 1/sqrt(d) from the query's last dimension",
           B, "attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling\n",
           "attn_weights = torch.matmul(query, key.transpose(2, 3)) * query.size(-1) ** -0.5\n",
           "encoder", ">=5.0",
           equivalent="BERT's attention modules always pass scaling=self.scaling = attention_head_size**-0.5, and "
                      "the query reaching eager_attention_forward is viewed as [..., -1, attention_head_size] and "
                      "transposed, so query.size(-1) == attention_head_size: both sides evaluate the same Python "
                      "expression int ** -0.5 on the same int, giving the bit-identical float. Only a caller passing "
                      "a different scaling could tell, and no BERT module does."),
    Mutant("encoder.softmax_axis", "encoder", "attention softmax normalised over the queries instead of the keys",
           B, "attn_weights = nn.functional.softmax(attn_weights, dim=-1)",
           "attn_weights = nn.functional.softmax(attn_weights, dim=-2)",
           "encoder.bidirectional", ">=5.0"),
    Mutant("encoder.padding_mask_dropped", "encoder",
           "the encoder's padding mask is never applied (attention_mask not passed to the mask builder)",
           B, "inputs_embeds=embedding_output,\n                attention_mask=attention_mask,\n            )",
           "inputs_embeds=embedding_output,\n                attention_mask=None,\n            )",
           "encoder.bidirectional", ">=5.4"),
    Mutant("encoder.padding_mask_inverted", "encoder",
           "padding mask sign flipped: padded keys attended, real keys masked",
           M, "return padding_mask[batch_idx, kv_idx]", "return ~padding_mask[batch_idx, kv_idx]",
           "encoder.bidirectional", ">=4.54"),
    Mutant("encoder.causal_mask_strict", "encoder",
           "causal mask off by one: a position may not attend to itself (kv < q instead of kv <= q)",
           M, "return kv_idx <= q_idx", "return kv_idx < q_idx", "encoder.causal", ">=4.54"),
    Mutant("encoder.attention_residual", "encoder",
           "attention sublayer's residual adds its own output instead of the layer input",
           B, "attention_output = self.output(attention_output, hidden_states)",
           "attention_output = self.output(attention_output, attention_output)",
           "encoder.bidirectional", ">=5.0"),
    # --- encoder: activations -----------------------------------------------------------------------------------
    Mutant("encoder.gelu_is_relu", "encoder", "hidden_act 'gelu' mapped to ReLU in ACT2FN",
           A, '"gelu": GELUActivation,', '"gelu": nn.ReLU,', "encoder.bidirectional", ">=4.27"),
    Mutant("encoder.gelu_tanh_approx", "encoder",
           "exact GELU silently replaced by its tanh approximation",
           A, "            self.act = nn.functional.gelu\n",
           '            self.act = lambda x: nn.functional.gelu(x, approximate="tanh")\n',
           "encoder.bidirectional", ">=4.17"),
    Mutant("encoder.quick_gelu_constant", "encoder", "quick_gelu's sigmoid slope rounded from 1.702 to 1.7",
           A, "return input * torch.sigmoid(1.702 * input)", "return input * torch.sigmoid(1.7 * input)",
           "encoder.bidirectional", ">=4.17"),
    # --- encoder: pooler ---------------------------------------------------------------------------------------
    Mutant("encoder.pooler_no_tanh", "encoder", "pooler drops its tanh", B,
           "pooled_output = self.activation(pooled_output)", "pooled_output = pooled_output",
           "encoder.bidirectional", ">=4.4"),
    Mutant("encoder.pooler_last_token", "encoder", "pooler reads the last token's hidden state instead of [CLS]",
           B, "first_token_tensor = hidden_states[:, 0]", "first_token_tensor = hidden_states[:, -1]",
           "encoder.bidirectional", ">=4.4"),
    # --- weight tying -------------------------------------------------------------------------------------------
    Mutant("tying.decoder_untied", "tying",
           "BertForMaskedLM's decoder weight not tied to the word embeddings (mapping entry lost)",
           B, 'class BertForMaskedLM(BertPreTrainedModel):\n    _tied_weights_keys = {\n'
              '        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",\n',
           "class BertForMaskedLM(BertPreTrainedModel):\n    _tied_weights_keys = {\n",
           "head.masked_lm", ">=5.0"),
    Mutant("tying.decoder_bias_untied", "tying",
           "BertForPreTraining's decoder gets its own bias instead of sharing cls.predictions.bias",
           B, '"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",\n'
              '        "cls.predictions.decoder.bias": "cls.predictions.bias",\n    }\n\n'
              '    def __init__(self, config: BertConfig):\n        super().__init__(config)\n\n'
              '        self.bert = BertModel(config)\n        self.cls = BertPreTrainingHeads(config)',
           '"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",\n    }\n\n'
           '    def __init__(self, config: BertConfig):\n        super().__init__(config)\n\n'
           '        self.bert = BertModel(config)\n        self.cls = BertPreTrainingHeads(config)',
           "head.pretraining", ">=5.24"),
    Mutant("tying.flag_inverted", "tying",
           "config.tie_word_embeddings read inverted: models asking for tying get none",
           U, "tie_word_embeddings = getattr(self.config, \"tie_word_embeddings\", False)\n"
              "        if not tie_word_embeddings:",
           "tie_word_embeddings = getattr(self.config, \"tie_word_embeddings\", False)\n"
           "        if tie_word_embeddings:",
           "head.masked_lm", ">=5.0"),
    Mutant("tying.output_bias_dropped", "tying", "the MLM decoder applied without its output-only bias", B,
           "        hidden_states = self.decoder(hidden_states)\n",
           "        hidden_states = nn.functional.linear(hidden_states, self.decoder.weight)\n",
           "head.masked_lm", ">=4.4"),
    # --- heads ------------------------------------------------------------------------------------------------
    Mutant("head.mlm_ignore_dropped", "head", "MLM loss counts -100 positions (labels clamped to class 0)", B,
           "            masked_lm_loss = loss_fct(prediction_scores.view(-1, self.config.vocab_size), labels.view(-1))"
           "\n\n        return MaskedLMOutput",
           "            masked_lm_loss = loss_fct(prediction_scores.view(-1, self.config.vocab_size), "
           "labels.view(-1).clamp(min=0))\n\n        return MaskedLMOutput",
           "head.masked_lm", ">=5.0"),
    Mutant("head.pretraining_mean", "head", "pre-training loss averages MLM and NSP instead of summing them", B,
           "total_loss = masked_lm_loss + next_sentence_loss",
           "total_loss = (masked_lm_loss + next_sentence_loss) / 2", "head.pretraining", ">=4.4"),
    Mutant("head.nsp_labels_swapped", "head",
           "NSP label convention swapped (logit 0 scores 'random' instead of 'is next')", B,
           "seq_relationship_scores = self.cls(pooled_output)",
           "seq_relationship_scores = self.cls(pooled_output).flip(-1)",
           "head.next_sentence", ">=4.4"),
    Mutant("head.seqcls_first_token", "head",
           "sequence classifier reads the raw [CLS] hidden state instead of the pooled output", B,
           "        pooled_output = outputs[1]\n\n        pooled_output = self.dropout(pooled_output)\n"
           "        logits = self.classifier(pooled_output)\n\n        loss = None\n        if labels is not None:\n"
           "            if self.config.problem_type is None:",
           "        pooled_output = outputs[0][:, 0]\n\n        pooled_output = self.dropout(pooled_output)\n"
           "        logits = self.classifier(pooled_output)\n\n        loss = None\n        if labels is not None:\n"
           "            if self.config.problem_type is None:",
           "head.sequence_classification", ">=4.6"),
    Mutant("head.multiple_choice_reshape", "head", "choice scores reshaped choice-major ([C, B] transposed)", B,
           "reshaped_logits = logits.view(-1, num_choices)", "reshaped_logits = logits.view(num_choices, -1).t()",
           "head.multiple_choice", ">=4.4"),
    Mutant("head.tokcls_dropout_in_eval", "head",
           "token classifier's dropout applied with functional dropout's training=True default, in eval too", B,
           "sequence_output = self.dropout(sequence_output)",
           "sequence_output = nn.functional.dropout(sequence_output, p=0.1)",
           "head.token_classification", ">=4.4"),
    Mutant("head.tokcls_loss_masked_by_attention", "head",
           "token-classification loss also drops padded positions (the pre-4.17 attention-mask rule come back)", B,
           "            loss = loss_fct(logits.view(-1, self.num_labels), labels.view(-1))\n\n"
           "        return TokenClassifierOutput",
           "            active = labels.view(-1) if attention_mask is None else torch.where(\n"
           "                attention_mask.view(-1) == 1, labels.view(-1), torch.tensor(-100).type_as(labels))\n"
           "            loss = loss_fct(logits.view(-1, self.num_labels), active)\n\n"
           "        return TokenClassifierOutput",
           "head.token_classification", ">=5.0"),
    Mutant("head.qa_clamp", "head", "QA positions clamped to L-1, so out-of-span answers are scored, not ignored", B,
           "start_positions = start_positions.clamp(0, ignored_index)",
           "start_positions = start_positions.clamp(0, ignored_index - 1)", "head.question_answering", ">=4.17"),
    Mutant("head.qa_loss_sum", "head", "QA loss sums the start and end losses instead of averaging them", B,
           "            total_loss = (start_loss + end_loss) / 2\n\n        return QuestionAnsweringModelOutput",
           "            total_loss = start_loss + end_loss\n\n        return QuestionAnsweringModelOutput",
           "head.question_answering", ">=5.0"),
    # --- loss rules ---------------------------------------------------------------------------------------------
    Mutant("loss.causal_shift", "loss", "causal LM labels shifted the wrong way (position t scored against t-1)",
           L, "shift_labels = labels[..., 1:].contiguous()", "shift_labels = labels[..., :-1].contiguous()",
           "causal_lm", ">=4.47"),
    Mutant("loss.num_items_ignored", "loss",
           "num_items_in_batch ignored: the loss is the mean over this batch (gradient accumulation bug)", L,
           'reduction = "sum" if num_items_in_batch is not None else "mean"', 'reduction = "mean"',
           "num_items_in_batch", ">=4.47"),
    Mutant("loss.regression_no_squeeze", "loss",
           "num_labels == 1 regression compares [B, 1] logits with [B] labels (broadcast to [B, B])", B,
           "loss = loss_fct(logits.squeeze(), labels.squeeze())", "loss = loss_fct(logits, labels)",
           "regression", ">=4.17"),
    Mutant("loss.multi_label_softmax", "loss",
           "multi-label classification uses softmax cross-entropy instead of per-class sigmoid BCE", B,
           "                loss_fct = BCEWithLogitsLoss()\n                loss = loss_fct(logits, labels)\n\n"
           "        return SequenceClassifierOutput",
           "                loss_fct = CrossEntropyLoss()\n                loss = loss_fct(logits, labels)\n\n"
           "        return SequenceClassifierOutput",
           "multi_label", ">=5.0"),
    Mutant("loss.int32_not_class", "loss",
           "problem-type inference treats only int64 as class indices: int32 labels fall to multi-label BCE", B,
           "(labels.dtype == torch.long or labels.dtype == torch.int)", "(labels.dtype == torch.long)",
           "int32_labels", ">=4.6"),
    # --- schedules -------------------------------------------------------------------------------------------------
    Mutant("schedule.linear_off_by_one", "schedule", "linear decay one step late (num_training_steps - step + 1)",
           O, "float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps))",
           "float(num_training_steps - current_step + 1) / float(max(1, num_training_steps - num_warmup_steps))",
           "schedule.linear", ">=4.4"),
    Mutant("schedule.cosine_dead_code", "schedule",
           "cosine schedule runs a full cosine wave per cycle instead of a half (edited in the first, shadowed, "
           "definition of _get_cosine_schedule_with_warmup_lr_lambda)", O,
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
           "is the only one, and live)", O,
           "    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))\n",
           "    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * progress)))\n",
           "schedule.cosine", "<4.41"),
    Mutant("schedule.cosine_full_wave", "schedule",
           "cosine schedule runs a full cosine wave per cycle instead of a half (the live definition)", O,
           "    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))\n"
           "    factor = factor * (1 - min_lr_rate)",
           "    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * progress))\n"
           "    factor = factor * (1 - min_lr_rate)",
           "schedule.cosine", ">=4.41"),
    Mutant("schedule.restarts_no_modulo", "schedule", "hard restarts never restart (progress not taken modulo 1)",
           O, "math.pi * ((float(num_cycles) * progress) % 1.0)", "math.pi * (float(num_cycles) * progress)",
           "schedule.cosine_with_restarts", ">=4.4"),
    Mutant("schedule.polynomial_power_ignored", "schedule", "polynomial decay ignores `power` (always linear)", O,
           "decay = lr_range * pct_remaining**power + lr_end", "decay = lr_range * pct_remaining + lr_end",
           "schedule.polynomial", ">=4.17"),
    Mutant("schedule.polynomial_lr_end_check", "schedule",
           "polynomial schedule accepts lr_end == lr_init (strict check weakened)", O,
           "if not (lr_init > lr_end):", "if lr_init < lr_end:", "schedule.polynomial", ">=4.17"),
    Mutant("schedule.constant_warmup_ahead", "schedule", "constant-with-warmup ramps one step ahead", O,
           "return float(current_step) / float(max(1.0, num_warmup_steps))",
           "return float(current_step + 1) / float(max(1.0, num_warmup_steps))",
           "schedule.constant_with_warmup", ">=4.4"),
    Mutant("schedule.inverse_sqrt_shift", "schedule", "inverse-sqrt decay not shifted by the warmup length", O,
           "shift = timescale - num_warmup_steps", "shift = timescale", "schedule.inverse_sqrt", ">=4.27"),
    Mutant("schedule.min_lr_unscaled", "schedule", "cosine-with-min-lr adds the floor without rescaling the wave", O,
           "    factor = factor * (1 - min_lr_rate) + min_lr_rate\n    return max(0, factor)\n\n\n"
           "def get_cosine_with_min_lr_schedule_with_warmup(",
           "    factor = factor + min_lr_rate\n    return max(0, factor)\n\n\n"
           "def get_cosine_with_min_lr_schedule_with_warmup(",
           "schedule.cosine_with_min_lr", ">=4.41"),
    Mutant("schedule.warmup_rate_not_ahead", "schedule",
           "cosine_warmup_with_min_lr's warmup starts at 0 instead of one step ahead", O,
           "return (current_step + 1.0) / max(1.0, num_warmup_steps)",
           "return current_step / max(1.0, num_warmup_steps)", "schedule.cosine_warmup_with_min_lr", ">=4.54"),
    Mutant("schedule.wsd_sqrt_decay", "schedule", "WSD 1-sqrt decay written as sqrt(1 - progress)", O,
           "factor = 1.0 - math.sqrt(progress)", "factor = math.sqrt(1.0 - progress)",
           "schedule.warmup_stable_decay", ">=4.49"),
    Mutant("schedule.wsd_floor_zero", "schedule", "WSD after the decay returns 0 instead of min_lr_ratio", O,
           "        return max(0.0, factor)\n    return min_lr_ratio\n",
           "        return max(0.0, factor)\n    return 0.0\n",
           "schedule.warmup_stable_decay", ">=4.49"),
    Mutant("schedule.greedy_increase_squared", "schedule", "GreedyLR raises the rate by factor^-2 instead of factor^-1",
           O, "new_lr = min(old_lr / self.factor, self.max_lrs[i])",
           "new_lr = min(old_lr / self.factor**2, self.max_lrs[i])", "schedule.greedy", ">=5.4"),
    # --- AdamW (transformers.AdamW, removed in 4.50) ------------------------------------------------------------
    Mutant("adamw.bias_correction_dropped", "adamw",
           "bias correction never applied: the correct_bias flag ignored", O,
           'if group["correct_bias"]:  # No bias correction for Bert', "if False:  # No bias correction for Bert",
           "optim.transformers.AdamW", "<4.50"),
    Mutant("adamw.eps_inside_sqrt", "adamw", "epsilon added inside the square root of the second moment", O,
           'denom = exp_avg_sq.sqrt().add_(group["eps"])', 'denom = exp_avg_sq.add(group["eps"]).sqrt()',
           "optim.transformers.AdamW", "<4.50"),
    Mutant("adamw.l2_not_decoupled", "adamw",
           "weight decay also folded into the gradient (Adam + L2), not only decoupled", O,
           "grad = p.grad\n" + _ADAM_SPARSE, 'grad = p.grad.add(p, alpha=group["weight_decay"])\n' + _ADAM_SPARSE,
           "optim.transformers.AdamW", ">=4.36,<4.50"),
    Mutant("adamw.l2_not_decoupled@4.4", "adamw",
           "weight decay also folded into the gradient (Adam + L2), not only decoupled", O,
           "grad = p.grad.data\n" + _ADAM_SPARSE,
           'grad = p.grad.data.add(p.data, alpha=group["weight_decay"])\n' + _ADAM_SPARSE,
           "optim.transformers.AdamW", "<4.36"),
    Mutant("adamw.decay_without_lr", "adamw", "decoupled weight decay not scaled by the learning rate", O,
           'alpha=(-group["lr"] * group["weight_decay"]))', 'alpha=(-group["weight_decay"]))',
           "optim.transformers.AdamW", ">=4.17,<4.50"),
    Mutant("adamw.decay_without_lr@4.4", "adamw", "decoupled weight decay not scaled by the learning rate", O,
           'alpha=-group["lr"] * group["weight_decay"])', 'alpha=-group["weight_decay"])',
           "optim.transformers.AdamW", "<4.17"),
    # --- weight-decay grouping ----------------------------------------------------------------------------------
    Mutant("decay.bias_pattern", "decay", "no-decay bias pattern too narrow: biases get weight decay", T,
           'forbidden_name_patterns = [r"bias", ', 'forbidden_name_patterns = [r"\\.bias_", ',
           "no_decay", ">=4.54"),
    Mutant("decay.layernorm_type", "decay", "LayerNorm modules not exempt from weight decay", T,
           "get_parameter_names(model, [nn.LayerNorm], forbidden_name_patterns)",
           'get_parameter_names(model, [], [r"bias"])', "no_decay", ">=4.54"),
    Mutant("decay.embeddings_exempt", "decay", "embedding matrices wrongly exempt from weight decay", T,
           'forbidden_name_patterns = [r"bias", ', 'forbidden_name_patterns = [r"bias", r"embeddings", ',
           "no_decay", ">=4.54"),
    # --- MLM masking collator -----------------------------------------------------------------------------------
    Mutant("masking.rate_low", "masking", "selection probability 13% low (0.87 * mlm_probability)", C,
           "probability_matrix = torch.full(labels.shape, self.mlm_probability)",
           "probability_matrix = torch.full(labels.shape, self.mlm_probability * 0.87)",
           "masking.rates.pt", ">=5.24"),
    Mutant("masking.random_unscaled", "masking",
           "random-replacement probability not rescaled to the share left after [MASK]", C,
           "random_replace_prob_scaled = self.random_replace_prob / remaining_prob\n\n"
           "        # random_replace_prob% of the time, we replace masked input tokens with random word\n"
           "        indices_random = (\n            torch",
           "random_replace_prob_scaled = self.random_replace_prob\n\n"
           "        # random_replace_prob% of the time, we replace masked input tokens with random word\n"
           "        indices_random = (\n            torch",
           "masking.rates.pt", ">=4.49"),
    Mutant("masking.special_selected", "masking", "special tokens not protected from selection", C,
           "probability_matrix.masked_fill_(no_mask_mask, value=0.0)", "pass", "masking.rule.pt", ">=5.0"),
    Mutant("masking.np_rate_high", "masking", "numpy path selects 2.5 points too often", C,
           "probability_matrix = np.full(labels.shape, self.mlm_probability)",
           "probability_matrix = np.full(labels.shape, self.mlm_probability + 0.025)",
           "masking.rates.np", ">=4.17"),
    Mutant("masking.causal_pad_kept", "masking", "mlm=False labels keep padding instead of -100", C,
           'labels = batch["input_ids"].clone()\n            if self.tokenizer.pad_token_id is not None:\n'
           "                labels[labels == self.tokenizer.pad_token_id] = -100\n",
           'labels = batch["input_ids"].clone()\n            if self.tokenizer.pad_token_id is not None:\n'
           "                pass\n",
           "masking.rule.pt", ">=4.4"),
    Mutant("masking.unselected_labels_kept", "masking",
           "labels of unselected positions kept instead of -100 (loss over every token)", C,
           "masked_indices = torch.BoolTensor(self._whole_word_mask(word_ids, masked_indices))\n\n"
           "        labels[~masked_indices] = -100",
           "masked_indices = torch.BoolTensor(self._whole_word_mask(word_ids, masked_indices))\n\n"
           "        labels[~masked_indices] = labels[~masked_indices]",
           "masking.rule.pt", ">=5.0"),
    Mutant("masking.mask_token_is_pad", "masking", "selected tokens replaced by [PAD] instead of [MASK]", C,
           "inputs[indices_replaced] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.mask_token)",
           "inputs[indices_replaced] = self.tokenizer.pad_token_id", "masking.rates.pt", ">=5.24"),
]
MUTANTS_BY_ID = {m.id: m for m in MUTANTS}
assert len(MUTANTS_BY_ID) == len(MUTANTS), "mutant ids must be unique"

# The CI subset: five mutants from five areas whose checks are quick to start and kill at the first examples; about
# 25 s each on 2 busy cores (CI runs it with --no-baseline: its main pytest run already passes these checks).
SUBSETS = {
    "quick": ("encoder.token_type_dropped", "head.qa_loss_sum", "loss.num_items_ignored",
              "schedule.inverse_sqrt_shift", "masking.unselected_labels_kept"),
}


# --- applying a mutant ---------------------------------------------------------------------------------------------


class MutantError(RuntimeError):
    """The mutant cannot be applied to this source (its `old` text is missing or ambiguous)."""


def installed_package():
    """The directory of the `transformers` package this interpreter imports, and its version (without importing it:
    the runner must not hold the pristine package in memory, and importing transformers is slow)."""
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.origin:
        raise MutantError("transformers is not installed")
    directory = Path(spec.origin).parent
    namespace = {}
    for line in (directory / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            exec(line, namespace)
            break
    return directory, Version(namespace.get("__version__", "0"))


def occurrences(mutant, package_dir):
    """How often `mutant.old` occurs in its file under `package_dir` (0 if the file is missing)."""
    path = Path(package_dir) / mutant.file
    return path.read_text().count(mutant.old) if path.is_file() else 0


def mutate_source(mutant, source):
    """`source` with the mutant applied; refuses unless `old` occurs exactly once."""
    count = source.count(mutant.old)
    if count != 1:
        raise MutantError(f"mutant {mutant.id}: expected exactly one occurrence of its old text in {mutant.file}, "
                          f"found {count}")
    return source.replace(mutant.old, mutant.new)


def _link_or_copy(src, dst):
    """A hard link where the filesystem allows it (the copy is only read, and the one file mutated is unlinked
    before it is written, so the installed package is never touched), else a copy keeping the modification time."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def apply(mutant, package_dir, root):
    """Copy the package `package_dir` to `root`/transformers and apply `mutant` there; return the mutated file.

    The bytecode caches come along (compiling transformers anew costs ~10 s per process), except the mutated
    module's: Python validates a cached .pyc against its source's modification time and size anyway, and removing
    it makes sure the mutated source is compiled."""
    target = Path(root) / "transformers"
    shutil.copytree(package_dir, target, copy_function=_link_or_copy)
    path = target / mutant.file
    if not path.is_file():
        raise MutantError(f"mutant {mutant.id}: {mutant.file} does not exist in {package_dir}")
    mutated = mutate_source(mutant, path.read_text())
    path.unlink()  # never write through a hard link into the installed package
    path.write_text(mutated)
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink()
    return path


def _project_root():
    """The folder holding the `conformance` and `reference` packages this process runs (so that the suite imports
    them from a temporary working directory even when the editable install's mapping is stale)."""
    return str(Path(__file__).resolve().parent.parent)


def mutant_env(root, guard=None):
    """The environment that puts the copy under `root` first on the import path, then this project (and arms the
    guard)."""
    env = dict(os.environ)
    paths = [str(root), _project_root()] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop(GUARD_ENV, None)
    if guard is not None:
        env[GUARD_ENV] = json.dumps(guard)
    return env


def imported_transformers(env, python=sys.executable, cwd=None):
    """The `transformers/__init__.py` a fresh interpreter with `env` imports."""
    out = subprocess.run([python, "-c", "import transformers; print(transformers.__file__)"], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise MutantError(f"importing transformers failed: {out.stderr.strip()[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def _is_under(path, root):
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def verify_import(env, root, python=sys.executable, cwd=None):
    """Fail unless a fresh interpreter with `env` imports transformers from under `root`; return its path."""
    path = imported_transformers(env, python, cwd)
    if not _is_under(path, root):
        raise MutantError(f"the mutated copy under {root} is not the transformers imported ({path})")
    return path


def pytest_sessionstart(session):
    """The guard (`pytest -p conformance.mutants`, armed by GUARD_ENV): in the very process that runs the suite,
    refuse to run unless `transformers` comes from the mutated copy and the mutated file holds the mutation."""
    raw = os.environ.get(GUARD_ENV)
    if not raw:
        return
    import pytest
    import transformers

    guard = json.loads(raw)
    problem = None
    if not _is_under(transformers.__file__, guard["root"]):
        problem = f"transformers imported from {transformers.__file__}, not from the mutated copy {guard['root']}"
    elif guard["new"] not in (Path(transformers.__file__).parent / guard["file"]).read_text():
        problem = f"the imported {guard['file']} does not hold the mutation"
    if guard.get("report"):
        Path(guard["report"]).write_text(json.dumps({"transformers": transformers.__file__, "problem": problem}))
    if problem:
        raise pytest.UsageError(f"mutant guard: {problem}")


# --- running ------------------------------------------------------------------------------------------------------


def suite_command(checks, max_examples, python=sys.executable, junit=None, extra=(), first_failure=True):
    """The pytest command line that runs the checks selected by `checks` against whatever transformers is first on
    the import path (stopping at the first failure unless `first_failure` is False)."""
    cmd = [python, "-m", "pytest", "--pyargs", "conformance.suite", "-q", "-p", "no:cacheprovider", "-p",
           "no:randomly", "-p", "conformance.mutants"] + (["-x"] if first_failure else []) + [
           "--max-examples", str(max_examples), "--hypothesis-profile", "ci", "-k", checks, "--dtype", "float64",
           "--attn", "eager", "-o", "addopts=", "-W", "ignore"]
    if junit:
        cmd += ["--junitxml", str(junit)]
    return cmd + list(extra)


def _junit(path, failures=None):
    """(passed, failed, skipped, first failed: (test name, seconds, message) or None) from a JUnit XML file; every
    failed test's name is appended to `failures` if given."""
    passed = failed = skipped = 0
    first = None
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return 0, 0, 0, None
    for case in tree.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            failed += 1
            if failures is not None:
                failures.append(case.get("name", ""))
            if first is None:
                message = (bad.get("message") or bad.text or "").strip()
                first = (case.get("name", ""), float(case.get("time") or 0), message)
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, first


def _first_lines(message, lines=3, width=600):
    """The head of a failure message: the check, then the first mismatches."""
    text = " / ".join(line.strip() for line in (message or "").splitlines()[:lines] if line.strip())
    return (text[:width] + "...") if len(text) > width else text or None


def _check_id(test_name):
    """`test_check[head.masked_lm[cpu-float64-eager]]` -> `head.masked_lm`."""
    inner = test_name.partition("[")[2]
    return inner.rpartition("[")[0] or test_name


def _run(cmd, env, cwd, timeout):
    """Run `cmd` in its own process group; on timeout kill the whole group. Returns (returncode or None, output)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out


def run_mutant(mutant, package_dir, max_examples=100, timeout=300, python=sys.executable, extra=(),
               keep_log=None):
    """Apply `mutant` to a copy of `package_dir`, verify the copy is the transformers imported, run its checks and
    classify: killed | survived | equivalent | timeout | error. Returns the result dict."""
    result = {"id": mutant.id, "area": mutant.area, "bug": mutant.bug, "file": mutant.file, "checks": mutant.checks,
              "versions": mutant.versions, "equivalent": mutant.equivalent, "status": None, "killed_by": None,
              "message": None, "passed": 0, "failed": 0, "skipped": 0, "seconds": None, "kill_seconds": None,
              "imported": None}
    start = time.time()
    with tempfile.TemporaryDirectory(prefix=f"bert-mutant-{mutant.id}-") as tmp:
        root = Path(tmp) / "site"
        root.mkdir()
        try:
            apply(mutant, package_dir, root)
            guard_report = Path(tmp) / "guard.json"
            env = mutant_env(root, {"root": str(root), "file": mutant.file, "new": mutant.new,
                                    "report": str(guard_report)})
            result["imported"] = verify_import(env, root, python, cwd=tmp)
            junit = Path(tmp) / "junit.xml"
            code, out = _run(suite_command(mutant.checks, max_examples, python, junit, extra), env, tmp, timeout)
        except MutantError as exc:
            result.update(status="error", message=str(exc), seconds=round(time.time() - start, 1))
            return result
        if keep_log:
            Path(keep_log).parent.mkdir(parents=True, exist_ok=True)
            Path(keep_log).write_text(out)
        guard = json.loads(guard_report.read_text()) if guard_report.is_file() else {}
        passed, failed, skipped, first = _junit(junit)
    tail = "\n".join(out.strip().splitlines()[-15:])
    result.update(passed=passed, failed=failed, skipped=skipped, seconds=round(time.time() - start, 1))
    if code is None:
        result.update(status="timeout", message=f"no verdict within {timeout} s")
    elif guard.get("problem") or not guard:
        result.update(status="error", message=guard.get("problem") or f"the guard did not run (exit {code}):\n{tail}")
    elif code == 1 and first and first[0].startswith("test_check["):
        result.update(status="killed", killed_by=_check_id(first[0]), kill_seconds=round(first[1], 1),
                      message=_first_lines(first[2]))
    elif code == 0 and passed:
        result.update(status="equivalent" if mutant.equivalent else "survived",
                      message=f"{passed} check(s) passed {max_examples} examples each"
                              + (f", {skipped} skipped" if skipped else ""))
    elif code == 0:
        result.update(status="error", message=f"no selected check ran ({skipped} skipped): -k {mutant.checks!r}")
    else:
        result.update(status="error", message=f"pytest exit {code}:\n{tail}")
    if mutant.equivalent and result["status"] == "killed":
        result["message"] = f"declared equivalent but killed: the equivalence argument is wrong. {result['message']}"
    return result


def run_baseline(mutants, package_dir, max_examples=100, timeout=1800, python=sys.executable, extra=()):
    """Run every check the `mutants` select against the unmutated package, without stopping at a failure: a check
    that fails here cannot kill anything (its failure is the suite's or the release's, not the mutant's)."""
    expression = " or ".join(f"({c})" for c in sorted({m.checks for m in mutants}))
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="bert-mutant-baseline-") as tmp:
        env = mutant_env(tmp)  # the installed package: nothing shadows it in the empty folder
        junit = Path(tmp) / "junit.xml"
        code, out = _run(suite_command(expression, max_examples, python, junit, extra, first_failure=False), env, tmp,
                         timeout)
        failures = []
        passed, failed, skipped, _ = _junit(junit, failures)
    status = "timeout" if code is None else "pass" if code == 0 else "fail" if code == 1 and failed else "error"
    return {"status": status, "checks": expression, "passed": passed, "failed": sorted(_check_id(f) for f in failures),
            "skipped": skipped, "seconds": round(time.time() - start, 1),
            "message": None if status == "pass" else "\n".join(out.strip().splitlines()[-15:])}


def check_sources(folder, catalog=None):
    """Check the catalog's version ranges against the sources of several releases: `folder`/<version>/transformers.
    Returns (versions, rows of (mutant id, [occurrences per version]), problems): a problem is a release inside a
    mutant's range whose source does not hold `old` exactly once."""
    catalog = MUTANTS if catalog is None else catalog
    folder = Path(folder)
    versions = sorted((p.name for p in folder.iterdir() if (p / "transformers").is_dir()), key=Version)
    rows, problems = [], []
    for m in catalog:
        counts = [occurrences(m, folder / v / "transformers") for v in versions]
        rows.append((m.id, counts))
        problems += [f"{m.id}: transformers {v} is in {m.versions} but holds its old text {n} times"
                     for v, n in zip(versions, counts) if m.applies_to(v) and n != 1]
    return versions, rows, problems


def select(only=None, area=None, subset=None, catalog=None):
    """The mutants named by --only / --area / --subset (all of them by default)."""
    catalog = MUTANTS if catalog is None else catalog
    by_id = {m.id: m for m in catalog}
    chosen = list(catalog)
    if subset:
        if subset not in SUBSETS:
            raise SystemExit(f"unknown subset {subset!r}; known: {sorted(SUBSETS)}")
        chosen = [by_id[i] for i in SUBSETS[subset]]
    if only:
        unknown = [i for i in only if i not in by_id]
        if unknown:
            raise SystemExit(f"unknown mutant id(s) {unknown}")
        chosen = [m for m in chosen if m.id in only]
    if area:
        if area not in AREAS:
            raise SystemExit(f"unknown area {area!r}; known: {sorted(AREAS)}")
        chosen = [m for m in chosen if m.area == area]
    return chosen


def summarize(results):
    """Per-area counts and kill ratio (killed / applicable non-equivalent), and the overall score."""
    areas = {}
    for area in AREAS:
        rows = [r for r in results if r["area"] == area]
        if not rows:
            continue
        count = {s: sum(r["status"] == s for r in rows)
                 for s in ("killed", "survived", "equivalent", "timeout", "error", "not_applicable")}
        declared_equivalent = sum(1 for r in rows if r["equivalent"] and r["status"] != "not_applicable")
        non_equivalent = sum(1 for r in rows if not r["equivalent"] and r["status"] != "not_applicable")
        killed = sum(1 for r in rows if r["status"] == "killed" and not r["equivalent"])
        areas[area] = {"mutants": len(rows), **count, "declared_equivalent": declared_equivalent,
                       "non_equivalent": non_equivalent, "killed_non_equivalent": killed,
                       "kill_ratio": (killed / non_equivalent) if non_equivalent else None}
    killed = sum(a["killed_non_equivalent"] for a in areas.values())
    total = sum(a["non_equivalent"] for a in areas.values())
    return areas, {"killed": killed, "non_equivalent": total, "ratio": (killed / total) if total else None}


def project_state():
    """The project's git commit and whether its suite files differ from it (None outside a git checkout)."""
    root = _project_root()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "conformance", "reference"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified": None}
    return {"commit": commit, "modified": sorted(line[3:] for line in dirty if line.strip())}


def environment(package_dir, version, args, python=sys.executable):
    import numpy

    try:
        import torch
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = None
    return {"transformers": str(version), "transformers_path": str(package_dir), "torch": torch_version,
            "numpy": numpy.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "max_examples": args.max_examples, "timeout_s": args.timeout, "jobs": args.jobs,
            "hypothesis_profile": "ci", "dtype": "float64", "attention": "eager",
            "command": suite_command("CHECKS", args.max_examples, python)[1:], "project": project_state()}


def run(args, extra=()):
    """Run the mutation self-check; print the per-area table and the survivors; write the JSON results. The exit
    status is 0 only if every applicable non-equivalent mutant was killed and every declared-equivalent one was
    not."""
    from tabulate import tabulate

    package_dir, version = installed_package()
    chosen = select(args.only, args.area, args.subset)
    applicable = [m for m in chosen if m.applies_to(version)]
    print(f"mutation self-check against transformers {version} ({package_dir}): {len(applicable)} of {len(chosen)} "
          f"selected mutants apply; {args.jobs} job(s), {args.max_examples} examples, timeout {args.timeout} s",
          flush=True)
    start = time.time()
    env = environment(package_dir, version, args)  # the project's state as the run starts
    logs = Path(args.logs) if getattr(args, "logs", None) else None
    baseline = None
    if getattr(args, "baseline", True) and applicable:
        baseline = run_baseline(applicable, package_dir, args.max_examples, 6 * args.timeout, extra=extra)
        print(f"  baseline (the unmutated package): {baseline['status']}, {baseline['passed']} check(s) passed"
              + (f", failing: {baseline['failed']}" if baseline["failed"] else "") + f" ({baseline['seconds']} s)",
              flush=True)
        if baseline["status"] in ("timeout", "error"):
            print(baseline["message"], flush=True)

    def one(mutant):
        r = run_mutant(mutant, package_dir, args.max_examples, args.timeout, extra=extra,
                       keep_log=logs / f"{mutant.id}.log" if logs else None)
        where = f" by {r['killed_by']} in {r.get('kill_seconds')} s" if r["status"] == "killed" else ""
        print(f"  {mutant.id}: {r['status']}{where} ({r['seconds']} s)"
              + (f"  {r['message']}" if r["status"] in ("survived", "error", "timeout") else ""), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = dict(zip([m.id for m in applicable], pool.map(one, applicable)))
    spoiled = set(baseline["failed"]) if baseline else set()
    for r in done.values():
        if r["status"] == "killed" and r["killed_by"] in spoiled:
            r.update(status="error", message=f"{r['killed_by']} fails on the unmutated package too: not a kill. "
                                             f"{r['message']}")
    results = []
    for m in chosen:
        if m.id in done:
            results.append(done[m.id])
        else:
            results.append({"id": m.id, "area": m.area, "bug": m.bug, "file": m.file, "checks": m.checks,
                            "versions": m.versions, "equivalent": m.equivalent, "status": "not_applicable",
                            "message": f"written for transformers {m.versions}"})
    wall = time.time() - start
    areas, score = summarize(results)
    data = {"type": "mutants", "schema": SCHEMA, "environment": env,
            "start": start, "end": start + wall, "wall_s": round(wall, 1), "baseline": baseline, "mutants": results,
            "areas": areas, "score": score}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
    print()
    print(render_text(data, tabulate))
    if args.out:
        print(f"results written to {args.out}")
    bad = [r for r in results if r["status"] in ("survived", "timeout", "error")
           or (r["equivalent"] and r["status"] == "killed")]
    return 1 if bad else 0


# --- rendering -------------------------------------------------------------------------------------------------------


def _ratio(x):
    return "n/a" if x is None else f"{100 * x:.0f}%"


def area_rows(data):
    rows = []
    for area, a in data["areas"].items():
        rows.append([area, a["mutants"], a["not_applicable"], a["declared_equivalent"], a["killed_non_equivalent"],
                     a["survived"], a["timeout"] + a["error"], _ratio(a["kill_ratio"])])
    s = data["score"]
    total = lambda key: sum(a[key] for a in data["areas"].values())  # noqa: E731
    rows.append(["all", total("mutants"), total("not_applicable"), total("declared_equivalent"), s["killed"],
                 total("survived"), total("timeout") + total("error"), _ratio(s["ratio"])])
    return rows


AREA_HEADERS = ["area", "mutants", "not applicable", "equivalent", "killed", "survived", "timeout/error",
                "kill ratio"]


def _not_killed(data):
    return [r for r in data["mutants"] if r["status"] in ("survived", "timeout", "error")
            or (r["equivalent"] and r["status"] == "killed")]


def _baseline_line(baseline):
    if baseline["status"] == "pass":
        return (f"Baseline: the {baseline['passed']} checks the mutants select pass on the unmutated package "
                f"({baseline['seconds']:.0f} s), so every kill below is the mutant's.")
    return (f"Baseline: {baseline['status']}; failing on the unmutated package: "
            f"{', '.join(f'`{c}`' for c in baseline['failed']) or 'none'} (kills by these do not count).")


def render_text(data, tabulate):
    env = data["environment"]
    s = data["score"]
    lines = [f"transformers {env['transformers']}: mutation score {s['killed']}/{s['non_equivalent']} "
             f"({_ratio(s['ratio'])}), wall time {data['wall_s']:.0f} s",
             tabulate(area_rows(data), headers=AREA_HEADERS)]
    if data.get("baseline"):
        lines.append(_baseline_line(data["baseline"]).replace("`", ""))
    bad = _not_killed(data)
    lines.append("not killed: " + ("none" if not bad else ""))
    lines += [f"  {r['id']} ({r['status']}): {r['message']}" for r in bad]
    return "\n".join(lines)


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_section(path, heading="##", others=()):
    """The mutation self-check results in `path` (the JSON `run` writes) as markdown: a summary line, the per-area
    table, the mutants not killed with their reason, the equivalent mutants with their argument, and every mutant.
    `others`: results of runs against other releases (e.g. the AdamW mutants, which only apply before 4.50), each
    summarised in one line."""
    from tabulate import tabulate

    data = json.loads(Path(path).read_text())
    env = data["environment"]
    s = data["score"]
    out = [f"{heading} Mutation self-check", "",
           f"Bugs seeded one at a time into a copy of transformers {env['transformers']} (torch {env['torch']}, "
           f"Python {env['python']}); each must make a check fail ({env['max_examples']} examples, "
           f"{env['dtype']}, {env['attention']} attention, Hypothesis profile `{env['hypothesis_profile']}`). "
           f"**Mutation score: {s['killed']}/{s['non_equivalent']} ({_ratio(s['ratio'])})** of the applicable "
           f"non-equivalent mutants killed; wall time {data['wall_s']:.0f} s with {env['jobs']} job(s) on "
           f"{env['cpus']} CPU(s).", "",
           tabulate(area_rows(data), headers=AREA_HEADERS, tablefmt="github"), ""]
    baseline = data.get("baseline")
    if baseline:
        out += [_baseline_line(baseline), ""]
    for other in others:
        o = json.loads(Path(other).read_text())
        ran = ", ".join(f"`{r['id']}`" for r in o["mutants"] if r["status"] != "not_applicable")
        areas = ", ".join(f"{area} {a['killed_non_equivalent']}/{a['non_equivalent']}" for area, a in o["areas"].items()
                          if a["non_equivalent"])
        unkilled = ", ".join(f"`{r['id']}` ({r['status']})" for r in _not_killed(o))
        out += [f"Against transformers {o['environment']['transformers']}: {o['score']['killed']}/"
                f"{o['score']['non_equivalent']} killed ({areas}: {ran})" + (f"; not killed: {unkilled}" if unkilled
                                                                            else "")
                + f"; wall time {o['wall_s']:.0f} s.", ""]
    bad = _not_killed(data)
    out.append(f"{heading}# Not killed")
    out.append("")
    out += [f"- `{r['id']}` ({r['status']}): {r['bug']}. {_md(r['message'] or '')}" for r in bad] or ["None."]
    out.append("")
    equivalent = [r for r in data["mutants"] if r["equivalent"]]
    if equivalent:
        out += [f"{heading}# Equivalent mutants", ""]
        out += [f"- `{r['id']}` ({r['status']}): {r['bug']}. {_md(r['equivalent'])}" for r in equivalent]
        out.append("")
    out += [f"{heading}# Every mutant", ""]
    rows = [[f"`{r['id']}`", r["area"], _md(r["bug"]), r["status"], f"`{r['killed_by']}`" if r.get("killed_by") else "",
             "" if r.get("seconds") is None else f"{r['seconds']:.0f}"] for r in data["mutants"]]
    out.append(tabulate(rows, headers=["mutant", "area", "bug it imitates", "outcome", "killed by", "seconds"],
                        tablefmt="github"))
    return "\n".join(out) + "\n"


# --- command line ----------------------------------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (default: 1)")
    parser.add_argument("--max-examples", type=int, default=100, help="Hypothesis examples per check (default: 100)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per mutant before it counts as "
                                                                   "'timeout', i.e. not killed (default: 300)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--area", choices=sorted(AREAS), help="run only this area's mutants")
    parser.add_argument("--subset", choices=sorted(SUBSETS), help="a fixed subset (quick: one fast mutant per "
                                                                  "area, for CI)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"JSON results (default: {DEFAULT_OUT}; '' for none)")
    parser.add_argument("--logs", default=None, help="keep each mutant's pytest output in this folder")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip running the selected checks against the unmutated package first (a check failing "
                             "there cannot kill a mutant)")
    return parser


def add_parser(subparsers):
    """Add the `mutants` command to the CLI's subparsers (its function is `run(args, extra)`)."""
    parser = subparsers.add_parser("mutants", help="mutation self-check: seed bugs into a copy of transformers "
                                                   "and require the suite to catch each")
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv=None):
    parser = add_arguments(argparse.ArgumentParser(prog="python -m conformance.mutants", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    parser.add_argument("--check-sources", metavar="FOLDER",
                        help="only check the version ranges against FOLDER/<version>/transformers sources: print how "
                             "often each mutant's old text occurs per release (* = inside its range)")
    args, extra = parser.parse_known_args(argv)
    if args.check_sources:
        from tabulate import tabulate

        versions, rows, problems = check_sources(args.check_sources)
        table = [[i] + [f"{n}{'*' if MUTANTS_BY_ID[i].applies_to(v) else ''}" for v, n in zip(versions, counts)]
                 for i, counts in rows]
        print(tabulate(table, headers=["mutant"] + versions))
        print("\n".join(problems) or "every range holds")
        return 1 if problems else 0
    return run(args, extra)


if __name__ == "__main__":
    sys.exit(main())
