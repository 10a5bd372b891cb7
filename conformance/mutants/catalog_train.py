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
