"""Mutants of train mode: dropout skipped, misplaced, at the wrong rate or scaled wrongly, at each of its sites."""

from .mutant import MODELING_BERT, Mutant  # noqa: F401

_EMBEDDINGS_END = "embeddings = self.LayerNorm(embeddings)\n        embeddings = self.dropout(embeddings)"
_SELF_OUTPUT_INIT = ("self.dense = nn.Linear(config.hidden_size, config.hidden_size)\n        self.LayerNorm = "
                     "nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)\n        self.dropout = "
                     "nn.Dropout(config.hidden_dropout_prob)")
_OUTPUT_END = ("hidden_states = self.dropout(hidden_states)\n        hidden_states = self.LayerNorm(hidden_states + "
               "input_tensor)\n        return hidden_states\n\n\nclass BertLayer(")
_TOKEN_CLASSIFIER_RATE = ("self.bert = BertModel(config, add_pooling_layer=False)\n        classifier_dropout = (\n"
                          "            config.classifier_dropout if config.classifier_dropout is not None else "
                          "config.hidden_dropout_prob\n        )")
_SEQUENCE_CLASSIFIER = ("pooled_output = self.dropout(pooled_output)\n        logits = self.classifier(pooled_output)\n\n"
                        "        loss = None")

MUTANTS = [
    Mutant("train.embeddings_dropout_skipped", "train", "the embeddings' dropout is never applied",
           MODELING_BERT, _EMBEDDINGS_END, "embeddings = self.LayerNorm(embeddings)", "train.dropout", ">=4.4"),
    Mutant("train.embeddings_dropout_before_layernorm", "train",
           "the embeddings' dropout is applied before their LayerNorm instead of after it",
           MODELING_BERT, _EMBEDDINGS_END,
           "embeddings = self.dropout(embeddings)\n        embeddings = self.LayerNorm(embeddings)",
           "train.dropout", ">=4.4"),
    Mutant("train.attention_probs_dropout_half_rate", "train",
           "attention-probability dropout at half attention_probs_dropout_prob",
           MODELING_BERT, "attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)",
           "attn_weights = nn.functional.dropout(attn_weights, p=dropout / 2, training=module.training)",
           "train.dropout", ">=5.0"),
    Mutant("train.attention_probs_dropout_half_rate@4.4", "train",
           "attention-probability dropout at half attention_probs_dropout_prob",
           MODELING_BERT, "attention_probs = self.dropout(attention_probs)",
           "attention_probs = nn.functional.dropout(attention_probs, p=self.dropout.p / 2, training=self.training)",
           "train.dropout", ">=4.4,<5.0"),
    Mutant("train.attention_output_dropout_skipped", "train",
           "the attention block's output gets no dropout before its residual and LayerNorm",
           MODELING_BERT, _SELF_OUTPUT_INIT, _SELF_OUTPUT_INIT.replace("nn.Dropout(config.hidden_dropout_prob)",
                                                                       "nn.Dropout(0.0)"),
           "train.dropout", ">=4.4"),
    Mutant("train.feed_forward_dropout_unscaled", "train",
           "the feed-forward output's dropout does not scale kept elements by 1 / (1 - p)",
           MODELING_BERT, _OUTPUT_END,
           _OUTPUT_END.replace("self.dropout(hidden_states)", "self.dropout(hidden_states) * (1 - self.dropout.p)", 1),
           "train.dropout", ">=4.4"),
    Mutant("train.token_classifier_dropout_ignored", "train",
           "the token classification head drops at hidden_dropout_prob and ignores classifier_dropout",
           MODELING_BERT, _TOKEN_CLASSIFIER_RATE,
           "self.bert = BertModel(config, add_pooling_layer=False)\n        classifier_dropout = config.hidden_dropout_prob",
           "train.dropout", ">=4.17"),
    Mutant("train.sequence_classifier_dropout_skipped", "train",
           "the sequence classification head applies no dropout to the pooled output",
           MODELING_BERT, _SEQUENCE_CLASSIFIER, "logits = self.classifier(pooled_output)\n\n        loss = None",
           "train.dropout", ">=4.4"),
    Mutant("train.trainer_default_learning_rate", "train",
           "TrainingArguments' default learning rate is 5e-4 instead of 5e-5",
           "training_args.py", "learning_rate: float = field(default=5e-5",
           "learning_rate: float = field(default=5e-4", "train.trainer.defaults", ">=4.4,<4.29"),
]

# The Trainer's gradient accumulation on 5.x (train.trainer.accumulation.*): which heads count as taking loss kwargs,
# the count of label items it passes as num_items_in_batch, and the division by the accumulation steps.
_COUNT_5_19 = "num_items_in_batch = sum(labels.ne(-100).sum() for labels in labels_for_count)"
_COUNT_5_0 = 'num_items_in_batch = sum((batch["labels"].ne(-100)).sum() for batch in batch_samples)'
_DIVIDE_5_0 = ("if (not self.model_accepts_loss_kwargs or num_items_in_batch is None) and self.compute_loss_func is "
               "None:")
MUTANTS += [
    Mutant("train.trainer_loss_kwargs_never_accepted", "train",
           "the Trainer reads no model's forward as taking loss kwargs: no num_items_in_batch, every loss divided",
           "trainer.py", "k.kind == inspect.Parameter.VAR_KEYWORD for k in forward_params.values()",
           "k.kind == inspect.Parameter.VAR_KEYWORD and False for k in forward_params.values()",
           "train.trainer.accumulation", ">=5.0"),
    Mutant("train.trainer_num_items_counts_ignored_labels", "train",
           "num_items_in_batch counts the ignored (-100) labels too", "trainer.py", _COUNT_5_19,
           _COUNT_5_19.replace("labels.ne(-100).sum()", "(labels.ne(-100).sum() + labels.eq(-100).sum())"),
           "train.trainer.accumulation", ">=5.19"),
    Mutant("train.trainer_num_items_counts_ignored_labels@5.0", "train",
           "num_items_in_batch counts the ignored (-100) labels too", "trainer.py", _COUNT_5_0,
           _COUNT_5_0.replace('(batch["labels"].ne(-100)).sum()',
                              '((batch["labels"].ne(-100)).sum() + (batch["labels"].eq(-100)).sum())'),
           "train.trainer.accumulation", ">=5.0,<5.19"),
    Mutant("train.trainer_accumulation_always_divided", "train",
           "training_step divides every loss by the accumulation steps, also one already divided by num_items_in_batch",
           "trainer.py", "if not loss_is_scaled_for_ga:", "if True:", "train.trainer.accumulation", ">=5.19"),
    Mutant("train.trainer_accumulation_always_divided@5.0", "train",
           "training_step divides every loss by the accumulation steps, also one already divided by num_items_in_batch",
           "trainer.py", _DIVIDE_5_0, "if True:", "train.trainer.accumulation", ">=5.0,<5.19"),
]
