"""The drift catalog: every behaviour change of the checked surface between transformers releases.

Each `Change` names the first release with the new rule (bisected over the released sources and confirmed by the
suite on the two adjacent tox envs), the rule before and after, the checks that observe it, and a minimal input on
which the two rules differ, computed by the reference's two variants. The adapter's `has(change_id)` says which
rule the implementation under test follows; checks pick the reference variant from it.
"""

import numpy as np

from reference import dropout, losses, masking, optim, schedules, training
from reference.errors import Refusal

from . import drift_model
from .change import Change, fmt as _fmt, refused as _refused  # noqa: F401
from .get_scheduler import get_scheduler_arguments


def _problem_type_example():
    logits, labels = np.array([[0.5, -1.0]]), np.array([[1.0, 0.0]])
    return {"input": "BertForSequenceClassification, num_labels=2, logits [[0.5, -1.0]], float labels [[1.0, 0.0]]",
            "old": _refused(lambda: losses.cross_entropy(logits, labels)),
            "new": "loss " + _fmt(losses.bce_with_logits(logits, labels))}


def _special_tokens_example():
    ids = np.array([[2, 7, 3, 0]])  # [CLS] w [SEP] [PAD]
    settings = dict(vocab_size=10, mask_id=4, mlm_probability=1.0, mask_replace_prob=1.0, random_replace_prob=0.0)
    old = masking.sample(ids, masking.MaskingSpec(special_ids=(2, 3), **settings), np.random.default_rng(0))
    new = masking.sample(ids, masking.MaskingSpec(special_ids=(0, 1, 2, 3, 4), **settings), np.random.default_rng(0))
    return {"input": "input_ids [[CLS], w7, [SEP], [PAD]] = [[2, 7, 3, 0]], mlm_probability=1, all selected -> [MASK]",
            "old": f"labels {_fmt(old[1])}: the padding position is selected", "new": f"labels {_fmt(new[1])}"}


def _token_classification_example():
    logits, labels, mask = np.array([[[2.0, 0.0], [0.0, 2.0]]]), np.array([[0, 0]]), np.array([[1, 0]])
    return {"input": "logits [[[2, 0], [0, 2]]], labels [[0, 0]], attention_mask [[1, 0]]",
            "old": "loss " + _fmt(losses.token_classification_loss(logits, labels, attention_mask=mask)),
            "new": "loss " + _fmt(losses.token_classification_loss(logits, labels))}


def _inverse_sqrt_example():
    return {"input": "get_inverse_sqrt_schedule(num_warmup_steps=0), step 3",
            "old": _refused(lambda: schedules.inverse_sqrt(3, num_warmup_steps=0, default_timescale_10000=False)),
            "new": "multiplier " + _fmt(schedules.inverse_sqrt(3, num_warmup_steps=0))}


def _wsd_example():
    kw = dict(num_warmup_steps=2, num_stable_steps=1, num_decay_steps=2, min_lr_ratio=0.5)
    return {"input": "get_wsd_schedule(num_warmup_steps=2, num_stable_steps=1, num_decay_steps=2, min_lr_ratio=0.5), "
                     "steps 0-1",
            "old": "multipliers " + _fmt([schedules.warmup_stable_decay(t, warmup_from_min_lr=False, **kw) for t in (0, 1)]),
            "new": "multipliers " + _fmt([schedules.warmup_stable_decay(t, **kw) for t in (0, 1)])}


def _get_scheduler_example(name, params, flag, steps=3, lr_init=1.0):
    """The multipliers of steps 0..`steps` of `name` built by get_scheduler from `params`, under the rule before
    and after the change `flag` of `get_scheduler_arguments`."""
    def curve(new):
        forwarded = get_scheduler_arguments(name, params, **{flag: new})
        return "multipliers " + _fmt([row[0] for row in schedules.curve(name, forwarded, [1.0], lr_init, steps)])

    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return {"input": f"get_scheduler({name!r}, ...) from {shown}, steps 0-{steps}",
            "old": _refused(lambda: curve(False)), "new": _refused(lambda: curve(True))}


def _causal_lm_example():
    logits = np.array([[[0.1, 0.2, 0.3], [0.3, 0.2, 0.11]]])
    loss = losses.causal_lm_loss(logits, np.array([[1, 2]]))
    return {"input": "float64 BertLMHeadModel, logits [[[0.1, 0.2, 0.3], [0.3, 0.2, 0.11]]], labels [[1, 2]]",
            "old": f"loss {float(loss)!r} (float64)", "new": f"loss {float(np.float32(loss))!r} (rounded to float32)"}


def _adamw_example():
    kw = dict(lr=0.1, betas=(0.9, 0.999), eps=1e-3, weight_decay=0.1)
    old = optim.adamw([[1.0]], [[[1e-3]]], variant="transformers", **kw)[0]["params"][0]
    new = optim.adamw([[1.0]], [[[1e-3]]], variant="torch", **kw)[0]["params"][0]
    return {"input": "one step from p = 1, g = 1e-3, lr = 0.1, betas (0.9, 0.999), eps = 1e-3, weight_decay = 0.1",
            "old": f"transformers.AdamW: p = {_fmt(old)}", "new": f"torch.optim.AdamW (the replacement): p = {_fmt(new)}"}


def _lr_end_example():
    new = schedules.LR_END
    old = CHANGES_BY_ID["polynomial-lr-end-value-error"].refused_before[new.kind]
    return {"input": "get_polynomial_decay_schedule_with_warmup(optimizer with lr 1e-3, ..., lr_end=1e-2)",
            "old": f"refused: {old}", "new": f"refused: {new}"}


_NO_POOLER = ("checkpoint.head.masked_lm", "checkpoint.head.causal_lm", "checkpoint.head.token_classification",
              "checkpoint.head.question_answering")
LOADING_REPORT_CHANGES = [  # what from_pretrained's loading report (output_loading_info) lists for the checkpoint
    Change("loading-report-unused-pooler", "4.31.0", "checkpoint",
           "from_pretrained reports the checkpoint's pooler keys as unexpected in a head without a pooler",
           "masked LM, causal LM, token classification and QA list `pooler` in _keys_to_ignore_on_load_unexpected: "
           "the unused pooler keys are not reported",
           "reported in unexpected_keys", _NO_POOLER),
    Change("loading-report-prefixed-keys", "4.50.0", "checkpoint",
           "unexpected keys carry the head's base-model prefix",
           "named as the checkpoint names them ('pooler.dense.weight')",
           "named with the head's base-model prefix ('bert.pooler.dense.weight'), 4.50 to 4.57", _NO_POOLER),
    Change("loading-report-checkpoint-names", "5.0.0", "checkpoint",
           "unexpected keys are named as the checkpoint names them again",
           "with the head's base-model prefix ('bert.pooler.dense.weight')",
           "as the checkpoint names them ('pooler.dense.weight')", _NO_POOLER),
    Change("loading-report-stored-buffers", "5.0.0", "checkpoint",
           "from_pretrained reports a buffer the checkpoint stores but the model does not save as unexpected",
           "the checkpoint's embeddings.position_ids loads into the model's buffer (persistent, or ignored): not "
           "reported", "'embeddings.position_ids' in unexpected_keys", ("checkpoint.weights", *_NO_POOLER)),
    Change("loading-report-stored-buffers-ignored", "5.6.0", "checkpoint",
           "a stored buffer the model does not save is no longer reported (5.0-5.5.x reported it)",
           "'embeddings.position_ids' in unexpected_keys", "not reported", ("checkpoint.weights", *_NO_POOLER)),
]

CHANGES = [
    Change("sequence-classification-problem-type", "4.6.0", "loss",
           "BertForSequenceClassification chooses its loss by problem_type",
           "num_labels == 1: MSE; otherwise cross-entropy, which refuses float (multi-label) labels",
           "problem_type (given, or inferred: num_labels == 1 regression, integer labels single-label, otherwise "
           "multi-label BCE with logits)",
           ("loss.sequence_classification.multi_label", "loss.sequence_classification.regression_multi",
            "loss.sequence_classification.explicit_single_label"), _problem_type_example),
    Change("masking-skips-all-special-tokens", "4.6.0", "masking",
           "The MLM collator never selects any special token",
           "only [CLS] and [SEP] are protected: [PAD], [UNK] and [MASK] positions can be selected (padding too)",
           "no special token ([PAD], [UNK], [CLS], [SEP], [MASK]) is ever selected",
           ("masking.rule.pt", "masking.rates.pt"), _special_tokens_example),
    Change("token-classification-loss-ignores-only-labels", "4.17.0", "loss",
           "BertForTokenClassification's loss no longer skips padded positions",
           "positions with attention_mask 0 are left out of the loss, as are labels -100 (labels of the wrong shape "
           "meet the mask first: RuntimeError 'The size of tensor a ... must match' where it does not broadcast)",
           "only labels -100 are left out; a padded position with a real label counts",
           ("head.token_classification",), _token_classification_example),
    Change("bert-sdpa-attention", "4.41.0", "encoder",
           "BERT runs on torch's scaled_dot_product_attention",
           "eager attention only",
           "attn_implementation 'sdpa' too (the default where available); the same math up to rounding",
           ("encoder.bidirectional", "encoder.causal")),
    Change("sdpa-float64-causal-padding-mask", "5.0.0", "encoder",
           "A float64 BERT decoder with a padding mask runs under sdpa",
           "BertModel(is_decoder=True) in float64 with attention_mask and attn_implementation='sdpa' raises "
           "RuntimeError 'value cannot be converted to type float without overflow' while building the 4D mask "
           "(modeling_attn_mask_utils)",
           "the v5 mask builders handle float64; the outputs equal eager attention's",
           ("encoder.causal", "head.causal_lm")),
    Change("polynomial-lr-end-value-error", "4.10.0", "schedule",
           "The polynomial schedule refuses lr_end >= lr with a ValueError",
           "an assert: AssertionError 'lr_end (...) must be be smaller than initial lr (...)' (gone under python -O)",
           "ValueError with the same message (4.9.0 has the assert, 4.10.0 the ValueError)",
           ("schedule.polynomial",), _lr_end_example,
           refused_before={"polynomial-lr-end": Refusal("polynomial-lr-end", ("AssertionError",),
                                                        r"lr_end \(.*\) must be (be )?smaller than initial lr")}),
    Change("inverse-sqrt-default-timescale", "4.39.0", "schedule",
           "inverse_sqrt's default timescale is 10000 when there is no warmup",
           "timescale defaults to num_warmup_steps; with no warmup the schedule divides 0 by 0",
           "timescale defaults to num_warmup_steps, or 10000 when that is 0",
           ("schedule.inverse_sqrt",), _inverse_sqrt_example),
    Change("get-scheduler-specific-kwargs", "4.36.0", "schedule",
           "get_scheduler passes scheduler_specific_kwargs (the Trainer's lr_scheduler_kwargs) to the schedule",
           "only num_warmup_steps and num_training_steps reach the schedule; num_cycles, power, lr_end, ... keep "
           "their defaults; reduce_lr_on_plateau gets nothing",
           "the other parameters are passed on (not to constant, constant_with_warmup or, before 5.4, inverse_sqrt)",
           tuple(f"schedule.{n}" for n in ("cosine", "cosine_with_restarts", "polynomial", "reduce_lr_on_plateau")),
           lambda: _get_scheduler_example("cosine", {"num_warmup_steps": 0, "num_training_steps": 2,
                                                     "num_cycles": 1.0}, "specific_kwargs", steps=2)),
    Change("get-scheduler-wsd-branch", "4.42.0", "schedule",
           "get_scheduler builds warmup_stable_decay",
           "warmup_stable_decay takes the path of the step-count schedules: num_training_steps is required and "
           "passed on, and get_wsd_schedule does not take it: refused either way",
           "num_warmup_steps and the specific kwargs are passed on (num_training_steps too from 4.49)",
           ("schedule.warmup_stable_decay",),
           lambda: _get_scheduler_example("warmup_stable_decay", {
               "num_warmup_steps": 1, "num_stable_steps": 1, "num_decay_steps": 1}, "wsd_branch")),
    Change("causal-lm-loss-function", "4.47.1", "loss",
           "BertLMHeadModel's loss goes through ForCausalLMLoss",
           "cross-entropy of the shifted logits in the model's dtype, mean over counted positions",
           "logits upcast with .float() (a float64 model gets a float32 loss); num_items_in_batch divides the sum",
           ("head.causal_lm", "loss.causal_lm.num_items_in_batch", "train.steps.causal_lm",
            "train.trainer.accumulation.causal_lm"), _causal_lm_example),
    Change("wsd-warmup-from-min-lr", "4.49.0", "schedule",
           "warmup_stable_decay's warmup starts at min_lr_ratio; warmup/decay shapes become configurable",
           "warmup rises linearly from 0; decay is cosine; num_stable_steps required",
           "warmup rises from min_lr_ratio; warmup_type and decay_type (linear, cosine, 1-sqrt); "
           "num_training_steps or num_stable_steps",
           ("schedule.warmup_stable_decay",), _wsd_example,
           refused_before={"wsd-needs-steps": Refusal("wsd-needs-steps", ("TypeError",),
                                                      r"missing 1 required positional argument: 'num_stable_steps'")}),
    Change("get-scheduler-wsd-training-steps", "4.49.0", "schedule",
           "get_scheduler passes num_training_steps to warmup_stable_decay",
           "num_warmup_steps and the specific kwargs only: num_stable_steps must be given",
           "num_training_steps too, from which the schedule derives num_stable_steps when it is not given",
           ("schedule.warmup_stable_decay",),
           lambda: _get_scheduler_example("warmup_stable_decay", {
               "num_warmup_steps": 1, "num_training_steps": 3, "num_decay_steps": 1}, "wsd_training_steps")),
    Change("collator-replacement-probabilities", "4.49.0", "masking",
           "DataCollatorForLanguageModeling takes mask_replace_prob and random_replace_prob",
           "80% [MASK], 10% random, 10% kept, hard-coded; a bad mlm_probability is refused by torch.bernoulli only "
           "where a position can be selected (RuntimeError 'Expected p_in >= 0 && p_in <= 1')",
           "configurable; all probabilities validated when the collator is built (each in [0, 1], sum <= 1; "
           "ValueError 'mlm_probability should be between 0 and 1.', ...); the defaults keep 80/10/10",
           ("masking.rule.pt", "masking.rates.pt", "errors.masking.probabilities"),
           refused_before={"masking-probability": Refusal("masking-probability", ("RuntimeError",),
                                                          r"Expected p_in >= 0 && p_in <= 1")}),
    Change("transformers-adamw-removed", "4.50.0", "optim",
           "transformers.AdamW is removed; torch.optim.AdamW is the replacement",
           "transformers.AdamW: epsilon added before the bias correction, weight decay applied after the step",
           "only torch.optim.AdamW: epsilon after the bias correction, decay before the step",
           ("optim.transformers.AdamW", "optim.torch.optim.AdamW"), _adamw_example),
    Change("get-scheduler-inverse-sqrt-kwargs", "5.4.0", "schedule",
           "get_scheduler passes the specific kwargs (timescale) to inverse_sqrt",
           "inverse_sqrt gets num_warmup_steps alone: a timescale in lr_scheduler_kwargs is silently dropped",
           "the timescale is passed on",
           ("schedule.inverse_sqrt",),
           lambda: _get_scheduler_example("inverse_sqrt", {"num_warmup_steps": 0, "timescale": 1},
                                          "inverse_sqrt_kwargs")),
    Change("from-pretrained-reads-safetensors", "4.23.0", "checkpoint",
           "from_pretrained reads model.safetensors",
           "a pretrained directory's weights are pytorch_model.bin (torch.load); a directory with model.safetensors "
           "alone is refused",
           "model.safetensors (metadata format 'pt') is read first, where the safetensors package is installed; "
           "pytorch_model.bin otherwise",
           ("checkpoint.weights", "checkpoint.encoder")),
    *LOADING_REPORT_CHANGES,
    Change("classifier-dropout", "4.10.0", "train",
           "BertConfig.classifier_dropout sets the classifier heads' dropout rate",
           "the sequence, multiple-choice and token classification heads drop at hidden_dropout_prob",
           "at classifier_dropout, or hidden_dropout_prob where it is None",
           ("train.dropout.sequence_classification", "train.dropout.multiple_choice",
            "train.dropout.token_classification", "train.dropout_rates.sequence_classification"),
           lambda: {"input": "hidden_dropout_prob=0.1, classifier_dropout=0.5",
                    "old": f"classifier rate {dropout.classifier_rate(0.1, 0.5, configurable=False)}",
                    "new": f"classifier rate {dropout.classifier_rate(0.1, 0.5)}"}),
    Change("trainer-default-adamw-torch", "4.32.0", "train",
           "the Trainer's default optimizer is torch.optim.AdamW",
           "TrainingArguments.optim defaults to adamw_hf: transformers.AdamW (epsilon before the bias correction)",
           "optim defaults to adamw_torch: torch.optim.AdamW (epsilon after the bias correction)",
           ("train.trainer.defaults.sequence_classification", "train.trainer.defaults.pretraining"),
           lambda: {"input": "the Trainer's defaults (lr 5e-5, betas (0.9, 0.999), eps 1e-8, weight decay 0), one "
                             "step from p = 0, g = 1e-8",
                    "old": "p = " + _fmt(optim.adamw([[0.0]], [[[1e-8]]], lr=5e-5, eps=1e-8,
                                                     variant="transformers")[0]["params"][0]),
                    "new": "p = " + _fmt(optim.adamw([[0.0]], [[[1e-8]]], lr=5e-5, eps=1e-8,
                                                     variant="torch")[0]["params"][0])}),
    Change("trainer-num-items-in-batch", "4.46.0", "train",
           "the Trainer counts the label items of an accumulated batch (num_items_in_batch)",
           "with gradient accumulation each micro-batch's mean loss is divided by gradient_accumulation_steps",
           "the Trainer counts the label items over the accumulated micro-batches and passes num_items_in_batch to "
           "training_step / compute_loss (a model taking loss kwargs sums its loss and divides by it)",
           ("train.trainer.accumulation.sequence_classification", "train.trainer.accumulation.token_classification",
            "train.trainer.accumulation.causal_lm"),
           lambda: {"input": "two micro-batches with 1 and 3 label items, per-item losses [1] and [2, 2, 2]",
                    "old": "loss " + _fmt((1.0 + 2.0) / 2), "new": "loss " + _fmt((1.0 + 6.0) / 4)}),
    Change("trainer-accumulation-divides-unless-loss-kwargs", "4.48.1", "train",
           "training_step divides the loss by the accumulation steps unless the model's forward takes **kwargs",
           "4.46-4.48.0: the loss is divided only when no num_items_in_batch is passed, and the Trainer always passes "
           "one: a head whose forward takes no **kwargs adds its micro-batch mean losses undivided",
           "divided unless the forward takes **kwargs (the model is then trusted to divide by num_items_in_batch)",
           ("train.trainer.accumulation.sequence_classification", "train.trainer.accumulation.token_classification"),
           lambda: {"input": "two micro-batches with 1 and 3 label items, per-item losses [1] and [2, 2, 2]",
                    "old": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "sum")),
                    "new": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "mean"))}),
    Change("bert-forward-takes-kwargs", "5.0.0", "train",
           "every BERT head's forward takes **kwargs (TransformersKwargs)",
           "the classification heads' forward takes no **kwargs: the Trainer divides their accumulated losses by the "
           "accumulation steps (the mean of the micro-batch means)",
           "the Trainer reads **kwargs as accepting loss kwargs, passes num_items_in_batch and does not divide; the "
           "sequence and token classification losses are their own means and ignore the count, so the micro-batch "
           "means add up undivided (k times the gradient of the mean of means)",
           ("train.trainer.accumulation.sequence_classification", "train.trainer.accumulation.token_classification"),
           lambda: {"input": "two micro-batches with 1 and 3 label items, per-item losses [1] and [2, 2, 2]",
                    "old": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "mean")),
                    "new": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "sum"))}),
    Change("trainer-accelerator-divides-accumulated-loss", "5.2.0", "train",
           "the Trainer builds its Accelerator with num_steps = gradient_accumulation_steps",
           "the Accelerator has num_steps 1: its backward takes the loss as training_step scaled it",
           "Accelerator.backward divides the loss again by the accumulation steps (the loss training_step returns is "
           "not): every accumulated gradient is the rule's divided by k (until 5.5.4)",
           ("train.trainer.accumulation.sequence_classification", "train.trainer.accumulation.token_classification",
            "train.trainer.accumulation.causal_lm"),
           lambda: {"input": "two micro-batches with 1 and 3 label items, per-item losses [1] and [2, 2, 2], the "
                             "causal LM (num_items_in_batch), the loss whose gradient is taken",
                    "old": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "num_items")),
                    "new": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "num_items") / 2)}),
    Change("trainer-accelerator-num-steps-one", "5.5.4", "train",
           "the Trainer builds its Accelerator with num_steps 1 again",
           "5.2.0-5.5.3: num_steps = gradient_accumulation_steps, Accelerator.backward divides the loss again",
           "num_steps 1: the gradient is the loss's as training_step scaled it",
           ("train.trainer.accumulation.sequence_classification", "train.trainer.accumulation.token_classification",
            "train.trainer.accumulation.causal_lm"),
           lambda: {"input": "two micro-batches with 1 and 3 label items, per-item losses [1] and [2, 2, 2], the "
                             "causal LM (num_items_in_batch), the loss whose gradient is taken",
                    "old": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "num_items") / 2),
                    "new": "loss " + _fmt(training.accumulated_loss([[1.0], [2.0, 2.0, 2.0]], "num_items"))}),
    *drift_model.CHANGES,
]
CHANGES_BY_ID = {c.id: c for c in CHANGES}
