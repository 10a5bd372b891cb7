"""The oracle's own tests for reference.optim: AdamW steps worked by hand for both variants, the differences
between them (decay order, epsilon placement), refusals, and the no-decay parameter-name rule.

The formulas (from the module docstring), with t the step count, bc1 = 1 - b1^t, bc2 = 1 - b2^t:
    m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g^2
    torch:        p <- p (1 - lr wd);   p <- p - (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps)
    transformers: p <- p - lr_t m / (sqrt(v) + eps), lr_t = lr sqrt(bc2) / bc1 (lr if not correct_bias);
                  p <- p - lr wd p
Most hand cases use betas (0.5, 0.96), so that sqrt(1 - b2) = 0.2, 1 - b2^2 = 0.0784 = 0.28^2 and 1 - b1^2 = 0.75.
Every expected number is worked on paper; nothing comes from torch or transformers, nor from running the code.
"""

import math

import numpy as np
import pytest

from helpers_reference import head_weights, tiny_spec
from reference import ReferenceInputError, optim

pytestmark = pytest.mark.reference

BETAS = (0.5, 0.96)
VARIANTS = ["torch", "transformers"]


def close(actual, expected, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def run(params, grads, **kw):
    kw.setdefault("lr", 0.1)
    kw.setdefault("betas", BETAS)
    kw.setdefault("eps", 0.0)
    return optim.adamw([np.array(p, dtype=float) for p in params],
                       [[np.array(g, dtype=float) for g in step] for step in grads], **kw)


# --- hand-computed steps -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_step_is_lr_times_the_sign_without_eps(variant):
    # g = [1, -4]: m = 0.5 g = [0.5, -2], v = 0.04 g^2 = [0.04, 0.64]
    # torch: m / bc1 = [1, -4], sqrt(v / bc2) = sqrt([1, 16]) = [1, 4]: step 0.1 [1, -1]
    # transformers: lr_t = 0.1 * 0.2 / 0.5 = 0.04; m / sqrt(v) = [0.5 / 0.2, -2 / 0.8] = [2.5, -2.5]: step 0.1 [1, -1]
    (h,) = run([[1.0, -2.0]], [[[1.0, -4.0]]], variant=variant)
    close(h["params"][0], [0.9, -1.9])
    close(h["exp_avg"][0], [0.5, -2.0])
    close(h["exp_avg_sq"][0], [0.04, 0.64])


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_steps_by_hand(variant):
    # step 2, g = [-1, -4]:
    #   element 0: m = 0.5 * 0.5 + 0.5 * (-1) = -0.25, v = 0.96 * 0.04 + 0.04 * 1 = 0.0784
    #     torch: (0.1 / 0.75) * (-0.25) / (sqrt(0.0784) / 0.28) = -1/30
    #     transformers: 0.1 * 0.28 / 0.75 * (-0.25) / 0.28 = -1/30          -> p = 0.9 + 1/30
    #   element 1: m = 0.5 * (-2) + 0.5 * (-4) = -3, v = 0.96 * 0.64 + 0.04 * 16 = 1.2544 = 1.12^2
    #     torch: (0.1 / 0.75) * (-3) / (1.12 / 0.28) = -0.4 / 4 = -0.1
    #     transformers: 0.1 * 0.28 / 0.75 * (-3) / 1.12 = -0.1               -> p = -1.9 + 0.1 = -1.8
    h = run([[1.0, -2.0]], [[[1.0, -4.0]], [[-1.0, -4.0]]], variant=variant)
    assert len(h) == 2
    close(h[0]["params"][0], [0.9, -1.9])
    close(h[1]["params"][0], [0.9 + 1 / 30, -1.8])
    close(h[1]["exp_avg"][0], [-0.25, -3.0])
    close(h[1]["exp_avg_sq"][0], [0.0784, 1.2544])


def test_several_parameters_are_updated_independently():
    # a scalar-shaped and a matrix parameter in one run: each gets its own moments; first step is lr * sign(g)
    h = run([2.0, [[1.0, 1.0], [1.0, 1.0]]], [[3.0, [[1.0, -1.0], [0.5, -7.0]]]])
    close(h[0]["params"][0], 1.9)
    close(h[0]["params"][1], [[0.9, 1.1], [0.9, 1.1]])
    assert h[0]["params"][0].shape == ()
    close(h[0]["exp_avg"][0], 1.5)  # 0.5 * 3
    close(h[0]["exp_avg_sq"][0], 0.36)  # 0.04 * 9


def test_transformers_without_bias_correction():
    # step 1, g = 1: m = 0.5, v = 0.04; lr_t = lr = 0.1: 0.1 * 0.5 / 0.2 = 0.25          -> p = 0.75
    # step 2, g = -1: m = -0.25, v = 0.0784: 0.1 * (-0.25) / 0.28 = -0.025 / 0.28         -> p = 0.75 + 0.025 / 0.28
    h = run([1.0], [[1.0], [-1.0]], variant="transformers", correct_bias=False)
    close(h[0]["params"][0], 0.75)
    close(h[1]["params"][0], 0.75 + 0.025 / 0.28)
    # with the correction the same run is 0.9, then 0.9 + 1/30 (see test_two_steps_by_hand)
    h = run([1.0], [[1.0], [-1.0]], variant="transformers", correct_bias=True)
    close(h[1]["params"][0], 0.9 + 1 / 30)


def test_transformers_with_betas_zero_is_sign_descent_whatever_the_bias_correction():
    # b1 = b2 = 0: m = g, v = g^2, bc1 = bc2 = 1 whether corrected or not: step lr g / |g|
    for correct_bias in (True, False):
        h = run([0.0], [[5.0], [-0.5]], betas=(0.0, 0.0), variant="transformers", correct_bias=correct_bias)
        close([h[0]["params"][0], h[1]["params"][0]], [-0.1, 0.0])


def test_amsgrad_uses_the_running_maximum_of_v():
    # step 1, g = 2: m = 1, v = 0.04 * 4 = 0.16, v_max = 0.16: (0.1 / 0.5) * 1 / (0.4 / 0.2) = 0.1    -> p = 0.9
    # step 2, g = 0: m = 0.5, v = 0.96 * 0.16 = 0.1536, v_max = 0.16
    #   amsgrad: (0.1 / 0.75) * 0.5 / (0.4 / 0.28) = (1/15) * 0.7 = 7/150                      -> p = 0.9 - 7/150
    #   plain:   (0.1 / 0.75) * 0.5 / (sqrt(0.1536) / 0.28) = (7/150) / sqrt(0.96)          -> a larger step
    ams = run([1.0], [[2.0], [0.0]], amsgrad=True)
    plain = run([1.0], [[2.0], [0.0]], amsgrad=False)
    close(ams[0]["params"][0], 0.9)
    close(ams[1]["params"][0], 0.9 - 7 / 150)
    close(plain[1]["params"][0], 0.9 - 7 / 150 / math.sqrt(0.96))
    # exp_avg_sq is the plain running average in both; only the denominator uses the maximum
    close(ams[1]["exp_avg_sq"][0], 0.1536)
    close(plain[1]["exp_avg_sq"][0], 0.1536)


def test_amsgrad_changes_nothing_while_v_grows():
    # a constant gradient makes v = (1 - b2^t) g^2 increase every step, so max(v) = v
    grads = [[[1.0, -3.0]]] * 4
    ams = run([[0.5, 0.5]], grads, amsgrad=True, eps=1e-8)
    plain = run([[0.5, 0.5]], grads, amsgrad=False, eps=1e-8)
    for a, b in zip(ams, plain):
        close(a["params"][0], b["params"][0])


# --- weight decay ------------------------------------------------------------------------------------------------


def test_weight_decay_order_differs_between_variants():
    # lr 0.1, wd 1, p = 1, g = 1 (the Adam step is 0.1 as above):
    #   torch decays first:          p = 1 * (1 - 0.1) = 0.9, then 0.9 - 0.1 = 0.8
    #   transformers decays after:   p = 1 - 0.1 = 0.9, then 0.9 - 0.1 * 1 * 0.9 = 0.81
    # step 2, g = -1 (Adam step -1/30):
    #   torch:        0.8 * 0.9 + 1/30
    #   transformers: (0.81 + 1/30) * 0.9
    torch = run([1.0], [[1.0], [-1.0]], weight_decay=1.0, variant="torch")
    hf = run([1.0], [[1.0], [-1.0]], weight_decay=1.0, variant="transformers")
    close(torch[0]["params"][0], 0.8)
    close(hf[0]["params"][0], 0.81)
    close(torch[1]["params"][0], 0.72 + 1 / 30)
    close(hf[1]["params"][0], (0.81 + 1 / 30) * 0.9)
    # the moments do not see the decay
    close(torch[1]["exp_avg"][0], hf[1]["exp_avg"][0])
    close(torch[1]["exp_avg_sq"][0], hf[1]["exp_avg_sq"][0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_weight_decay_is_decoupled_from_the_gradient(variant):
    # the decay term is lr wd p, never added to g: the moments are those of the gradient alone
    h = run([[10.0, -10.0]], [[[1.0, -4.0]]], weight_decay=0.5, variant=variant)
    close(h[0]["exp_avg"][0], [0.5, -2.0])
    close(h[0]["exp_avg_sq"][0], [0.04, 0.64])


@pytest.mark.parametrize("variant", VARIANTS)
def test_zero_gradients(variant):
    # m = v = 0: the Adam step is 0 / (0 + eps) = 0; only the decay moves p: 2 * (1 - 0.1 * 0.5)^t
    h = run([[2.0, -1.0]], [[[0.0, 0.0]]] * 2, eps=1e-8, variant=variant)
    close(h[1]["params"][0], [2.0, -1.0], rtol=0, atol=0)
    h = run([[2.0, -1.0]], [[[0.0, 0.0]]] * 2, eps=1e-8, weight_decay=0.5, variant=variant)
    close(h[0]["params"][0], [1.9, -0.95])
    close(h[1]["params"][0], [1.805, -0.9025])
    close(h[1]["exp_avg"][0], [0.0, 0.0], rtol=0, atol=0)


def test_a_zero_gradient_after_a_nonzero_one_still_moves_by_momentum():
    # step 2, g = 0 after g = 1: m = 0.25, v = 0.0384
    #   torch: (0.1 / 0.75) * 0.25 / (sqrt(0.0384) / 0.28) = (1/30) * 0.28 / sqrt(0.0384)
    h = run([1.0], [[1.0], [0.0]], variant="torch")
    close(h[1]["params"][0], 0.9 - (1 / 30) * 0.28 / math.sqrt(0.0384))


# --- epsilon placement -------------------------------------------------------------------------------------------


def test_epsilon_placement_one_step():
    # eps 0.1, p = 1, g = 1: m = 0.5, v = 0.04
    #   torch: (0.1 / 0.5) * 0.5 / (0.2 / 0.2 + 0.1) = 0.1 / 1.1                 -> p = 1 - 1/11
    #   transformers: (0.1 * 0.2 / 0.5) * 0.5 / (0.2 + 0.1) = 0.04 * 5/3 = 1/15   -> p = 1 - 1/15
    # transformers' epsilon acts as eps / sqrt(bc2) = 0.1 / 0.2 = 0.5 in torch's form: 0.1 / (1 + 0.5) = 1/15
    torch = run([1.0], [[1.0]], eps=0.1, variant="torch")
    hf = run([1.0], [[1.0]], eps=0.1, variant="transformers")
    close(torch[0]["params"][0], 1 - 1 / 11)
    close(hf[0]["params"][0], 1 - 1 / 15)


def test_epsilon_placement_makes_transformers_steps_smaller_and_the_gap_close_over_time():
    # with a constant gradient g, m / bc1 = g and v / bc2 = g^2 exactly, so each step is
    #   torch:        lr g / (|g| + eps)
    #   transformers: lr g / (|g| + eps / sqrt(1 - b2^t))
    # transformers' effective epsilon is larger (sqrt(bc2) < 1) and falls to eps as t grows: its step is smaller
    # but approaches torch's. With BERT's betas (0.9, 0.999), eps 1e-6 and a gradient of 1e-6 the first step of
    # transformers is lr / (1 + 1 / sqrt(0.001)) ~ lr / 32.6, torch's lr / 2.
    lr, eps, g, b2 = 1e-3, 1e-6, 1e-6, 0.999
    steps = 40
    torch = optim.adamw([np.zeros(1)], [[np.full(1, g)]] * steps, lr=lr, betas=(0.9, b2), eps=eps, variant="torch")
    hf = optim.adamw([np.zeros(1)], [[np.full(1, g)]] * steps, lr=lr, betas=(0.9, b2), eps=eps,
                     variant="transformers")
    p_torch = np.array([0.0] + [h["params"][0][0] for h in torch])
    p_hf = np.array([0.0] + [h["params"][0][0] for h in hf])
    step_torch, step_hf = -np.diff(p_torch), -np.diff(p_hf)
    close(step_torch, np.full(steps, lr * g / (g + eps)), rtol=1e-9)
    t = np.arange(1, steps + 1)
    close(step_hf, lr * g / (g + eps / np.sqrt(1 - b2 ** t)), rtol=1e-9)
    close(step_torch[0], lr / 2, rtol=1e-9)
    close(step_hf[0], lr / (1 + 1 / math.sqrt(0.001)), rtol=1e-9)
    assert (step_hf < step_torch).all()
    assert (np.diff(step_torch - step_hf) < 0).all()  # the gap shrinks every step
    assert p_hf[-1] > p_torch[-1]  # both descend; transformers has gone less far


@pytest.mark.parametrize("variant", VARIANTS)
def test_negligible_epsilon_makes_the_variants_agree(variant):
    # eps = 0 removes the only difference when wd = 0: both are lr m_hat / sqrt(v_hat)
    grads = [[[0.3, -2.0, 5.0]], [[-0.1, -1.0, 4.0]], [[0.7, 0.0, -3.0]]]
    torch = run([[0.0, 1.0, -1.0]], grads, variant="torch")
    hf = run([[0.0, 1.0, -1.0]], grads, variant="transformers")
    for a, b in zip(torch, hf):
        close(a["params"][0], b["params"][0], rtol=1e-12, atol=1e-14)


# --- refusals and history ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kwargs", [
    dict(lr=-1e-3),
    dict(eps=-1e-8),
    dict(weight_decay=-0.01),
    dict(betas=(1.0, 0.999)),
    dict(betas=(0.9, 1.0)),
    dict(betas=(-0.1, 0.999)),
    dict(betas=(0.9, -0.5)),
    dict(betas=(1.5, 0.999)),
])
def test_invalid_hyper_parameters_are_refused(variant, kwargs):
    if variant == "transformers" and "weight_decay" in kwargs:  # it computes with it (test_refusal_statements.py)
        return
    with pytest.raises(ReferenceInputError):
        optim.adamw([np.ones(2)], [[np.ones(2)]], variant=variant, **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(variant="torch", correct_bias=False),
    dict(variant="transformers", amsgrad=True),
    dict(variant="adam"),
    dict(variant="Torch"),
])
def test_unsupported_combinations_are_refused(kwargs):
    with pytest.raises(ReferenceInputError):
        optim.adamw([np.ones(2)], [[np.ones(2)]], **kwargs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradient_shape_must_match(variant):
    with pytest.raises(ReferenceInputError):
        optim.adamw([np.ones(2)], [[np.ones(3)]], variant=variant)
    with pytest.raises(ReferenceInputError):
        optim.adamw([np.ones((2, 1))], [[np.ones(2)]], variant=variant)


def test_valid_boundary_hyper_parameters_are_accepted():
    # lr = 0, eps = 0, wd = 0, b1 = b2 = 0 are all allowed; lr = 0 leaves the parameters alone
    h = optim.adamw([np.array([1.0, 2.0])], [[np.array([3.0, -1.0])]], lr=0.0, eps=0.0, betas=(0.0, 0.0))
    close(h[0]["params"][0], [1.0, 2.0], rtol=0, atol=0)


def test_no_gradients_gives_no_history():
    assert optim.adamw([np.ones(2)], []) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_history_entries_are_independent_copies(variant):
    p0 = np.array([1.0, -2.0])
    g = [np.array([1.0, -4.0])]
    h = optim.adamw([p0], [g, g, g], lr=0.1, betas=BETAS, eps=0.0, variant=variant)
    assert p0.tolist() == [1.0, -2.0]  # the input is not updated in place
    assert g[0].tolist() == [1.0, -4.0]
    kept = [{k: [a.copy() for a in v] for k, v in entry.items()} for entry in h]
    for key in ("params", "exp_avg", "exp_avg_sq"):
        for i in range(3):
            for j in range(3):
                if i != j:
                    assert not np.shares_memory(h[i][key][0], h[j][key][0])
            assert not np.shares_memory(h[i][key][0], p0)
    h[0]["params"][0][:] = 123.0
    h[0]["exp_avg"][0][:] = 123.0
    h[1]["exp_avg_sq"][0][:] = 123.0
    for key in ("params", "exp_avg", "exp_avg_sq"):
        close(h[2][key][0], kept[2][key][0], rtol=0, atol=0)
    close(h[1]["params"][0], kept[1]["params"][0], rtol=0, atol=0)
    close(h[0]["exp_avg_sq"][0], kept[0]["exp_avg_sq"][0], rtol=0, atol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_history_is_float64(variant):
    h = optim.adamw([np.array([1, 2], dtype=np.int64)], [[np.array([1, 1], dtype=np.float32)]], variant=variant)
    assert all(h[0][k][0].dtype == np.float64 for k in ("params", "exp_avg", "exp_avg_sq"))


# --- the no-decay rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, decays", [
    ("bert.embeddings.word_embeddings.weight", True),
    ("bert.embeddings.position_embeddings.weight", True),
    ("bert.embeddings.token_type_embeddings.weight", True),
    ("bert.embeddings.LayerNorm.weight", False),
    ("bert.embeddings.LayerNorm.bias", False),
    ("bert.encoder.layer.0.attention.self.query.weight", True),
    ("bert.encoder.layer.0.attention.self.query.bias", False),
    ("bert.encoder.layer.11.attention.output.dense.weight", True),
    ("bert.encoder.layer.11.attention.output.LayerNorm.weight", False),
    ("bert.encoder.layer.3.intermediate.dense.bias", False),
    ("bert.encoder.layer.3.output.LayerNorm.weight", False),
    ("bert.pooler.dense.weight", True),
    ("bert.pooler.dense.bias", False),
    ("cls.predictions.bias", False),
    ("cls.predictions.transform.dense.weight", True),
    ("cls.predictions.transform.LayerNorm.weight", False),
    ("cls.predictions.decoder.weight", True),
    ("cls.seq_relationship.weight", True),
    ("classifier.weight", True),
    ("classifier.bias", False),
    ("qa_outputs.weight", True),
])
def test_bert_parameter_names(name, decays):
    assert optim.decays(name) is decays


@pytest.mark.parametrize("name", [
    "model.norm.weight",                        # a component "norm"
    "norm.weight",                              # ... at the start
    "encoder.norm",                             # ... at the end
    "model.layers.0.input_layernorm.weight",    # contains "layernorm"
    "model.layers.0.self_attn.q_norm.weight",   # a component ending in "_norm"
    "blocks.0.attn_norm",                       # ... at the end
    "decoder.final_layer_norm.weight",
    "model.layers.0.post_rmsnorm.weight",       # contains "rmsnorm"
    "encoder.final_RMSNorm.weight",             # matched lower-cased
    "encoder.LAYERNORM.weight",
    "dense.Bias",
    "encoder.layer.0.attention.self.query.bias_k",  # "bias" anywhere
])
def test_normalisation_and_bias_names_get_no_decay(name):
    assert not optim.decays(name)


@pytest.mark.parametrize("name", [
    "model.normalizer.weight",   # "norm" only as the start of a longer component
    "encoder.denorm.weight",     # ... or inside one, without "_norm"
    "model.norm_proj.weight",    # "_norm" not at the end of its component
    "model.enorm_layer.weight",
    "model.pre_norm_linear.weight",   # "_norm" inside a component, not ending it
    "lm_head.weight",
])
def test_names_merely_containing_norm_decay(name):
    assert optim.decays(name)


@pytest.mark.parametrize("head", ["BertForPreTraining", "BertForSequenceClassification", "BertForQuestionAnswering",
                                  "BertModel", "BertForMultipleChoice", "BertForTokenClassification"])
def test_rule_agrees_with_the_original_recipe_on_bert_names(head):
    # the original BERT recipe: no decay for names containing "bias" or "LayerNorm.weight"
    names = list(head_weights(head, tiny_spec()))
    recipe = [n for n in names if not any(nd in n for nd in ("bias", "LayerNorm.weight"))]
    assert optim.decay_parameter_names(names) == recipe
    assert recipe and len(recipe) < len(names)


def test_decay_parameter_names_keeps_the_given_order():
    names = ["classifier.weight", "bert.embeddings.LayerNorm.weight", "bert.embeddings.word_embeddings.weight",
             "classifier.bias", "bert.encoder.layer.0.attention.self.key.weight", "model.norm.weight",
             "a.weight"]
    assert optim.decay_parameter_names(names) == ["classifier.weight", "bert.embeddings.word_embeddings.weight",
                                                  "bert.encoder.layer.0.attention.self.key.weight", "a.weight"]
    assert optim.decay_parameter_names(list(reversed(names))) == ["a.weight",
                                                                  "bert.encoder.layer.0.attention.self.key.weight",
                                                                  "bert.embeddings.word_embeddings.weight",
                                                                  "classifier.weight"]
    assert optim.decay_parameter_names([]) == []
    assert optim.decay_parameter_names(iter(["x.weight", "x.bias"])) == ["x.weight"]  # any iterable
