"""Mutants of refusals, problem types and other outcome rules."""

from .mutant import MASKING_UTILS, MODELING_BERT, OPTIMIZATION, Mutant  # noqa: F401

MUTANTS = []

MUTANTS += [  # helper H7: transformers.AdamW's own argument checks
    Mutant("adamw.negative_lr_accepted", "adamw", "transformers.AdamW no longer refuses a negative learning rate "
           "(its `if lr < 0.0` check dropped): it ascends", OPTIMIZATION,
           '        if lr < 0.0:\n            raise ValueError(f"Invalid learning rate',
           '        if False:\n            raise ValueError(f"Invalid learning rate',
           "errors.adamw.transformers_hyperparameters", ">=4.5,<4.50", path="error"),
    Mutant("adamw.negative_lr_accepted@4.4", "adamw", "transformers.AdamW no longer refuses a negative learning rate "
           "(its `if lr < 0.0` check dropped; the 4.4 source formats its message with str.format)", OPTIMIZATION,
           '        if lr < 0.0:\n            raise ValueError("Invalid learning rate',
           '        if False:\n            raise ValueError("Invalid learning rate',
           "errors.adamw.transformers_hyperparameters", "<4.5", path="error"),
]

CONFIGURATION_UTILS = "configuration_utils.py"

MUTANTS += [  # helper H3: head options and forward contracts (conformance/checks/options.py)
    Mutant("head.nsp_alias_ignored", "head",
           "BertForNextSentencePrediction pops the deprecated next_sentence_label but drops it instead of using it as "
           "labels (no loss)", MODELING_BERT,
           'labels = kwargs.pop("next_sentence_label")', 'kwargs.pop("next_sentence_label")',
           "options.nsp_alias", ">=4.4,<5.0"),
    Mutant("loss.problem_type_not_persisted", "loss",
           "BertForSequenceClassification infers the problem type again on every call instead of keeping the first "
           "call's in config.problem_type (an explicit type is still honoured)", MODELING_BERT,
           "            if self.config.problem_type is None:\n                if self.num_labels == 1:",
           '            if self.config.problem_type is None or getattr(self, "_inferred", False):\n'
           "                self._inferred = True\n                if self.num_labels == 1:",
           "options.problem_type_persists", ">=4.6"),
    Mutant("head.qa_positions_clamped_in_place", "head",
           "question answering clamps the caller's start_positions in place again (clamp_, as before 4.7)",
           MODELING_BERT, "start_positions = start_positions.clamp(0, ignored_index)",
           "start_positions = start_positions.clamp_(0, ignored_index)",
           "options.no_input_writes.question_answering", ">=4.7"),
    Mutant("loss.single_label_one_label_accepted", "loss",
           "BertConfig no longer refuses problem_type single_label_classification with num_labels == 1",
           CONFIGURATION_UTILS,
           'if self.problem_type == "single_label_classification" and self.num_labels == 1:',
           'if False and self.problem_type == "single_label_classification" and self.num_labels == 1:',
           "options.num_labels_one.single_label_classification", ">=5.7"),
]

MODELING_UTILS = "modeling_utils.py"
_MASK_CHECKS = "head.sequence_classification or head.masked_lm or encoder.bidirectional"
MUTANTS += [  # the reduced precisions: bugs that only a bfloat16, float16 or autocast run can show
    Mutant("encoder.mask_float32@4.4", "encoder",
           "the extended attention mask stays float32 instead of taking the model's dtype (the 'fp16 compatibility' "
           "cast dropped): in bfloat16 or float16 the scores are promoted to float32 and the probabilities no longer "
           "match the values' dtype", MODELING_UTILS,
           "extended_attention_mask = extended_attention_mask.to(dtype=self.dtype)  # fp16 compatibility",
           "extended_attention_mask = extended_attention_mask.to(dtype=torch.float32)  # fp16 compatibility",
           _MASK_CHECKS, "<4.21", path="reduced"),
    Mutant("encoder.mask_float32@4.21", "encoder",
           "the extended attention mask stays float32 instead of taking the model's dtype (4.21-4.57's form)",
           MODELING_UTILS,
           "extended_attention_mask = extended_attention_mask.to(dtype=dtype)  # fp16 compatibility",
           "extended_attention_mask = extended_attention_mask.to(dtype=torch.float32)  # fp16 compatibility",
           _MASK_CHECKS, ">=4.21,<5.0", path="reduced"),
    Mutant("encoder.eager_mask_float32", "encoder",
           "masking_utils.eager_mask builds the additive mask in float32 whatever the model's dtype: a bfloat16 or "
           "float16 model's scores are promoted to float32", MASKING_UTILS,
           "device=mask.device, dtype=dtype), min_dtype)", "device=mask.device, dtype=torch.float32), min_dtype)",
           _MASK_CHECKS, ">=5.0", path="reduced"),
]
