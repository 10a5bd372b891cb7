"""The Trainer checks' scheduled AdamW against a direct step-by-step loop at each step's learning rate."""

import numpy as np

from conformance.checks.trainer import _adamw_scheduled
from reference import schedules, training
from reference.training import TRAINER_DEFAULTS


def test_scheduled_adamw_equals_a_direct_loop_with_each_steps_learning_rate():
    rng = np.random.default_rng(0)
    initial = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) * 10.0 ** -k for k in range(3)]
    d = TRAINER_DEFAULTS
    p, m, v = initial.copy(), np.zeros_like(initial), np.zeros_like(initial)
    for t, g in enumerate(grads):
        lr = d["lr"] * schedules.linear(t, num_warmup_steps=0, num_training_steps=4)
        p, m, v = training.adamw_step(p, g, m, v, t + 1, lr=lr, betas=d["betas"], eps=d["eps"])
        got = _adamw_scheduled(initial, grads[:t + 1], 4, "torch")
        np.testing.assert_allclose(got["params"], p, rtol=0, atol=1e-15)
        np.testing.assert_allclose(got["exp_avg_sq"], v, rtol=1e-15)


def test_scheduled_adamw_transformers_variant_moves_by_its_own_step_size():
    initial, g = np.array([0.5]), np.array([1e-8])
    got = _adamw_scheduled(initial, [g], 1, "transformers")["params"]
    step = TRAINER_DEFAULTS["lr"] * np.sqrt(1 - 0.999) / (1 - 0.9) * (0.1 * g) / (np.sqrt(0.001) * 1e-8 + 1e-8)
    np.testing.assert_allclose(got, initial - step, rtol=0, atol=1e-15)


class _Release:
    """An adapter stand-in following the drift catalog's rules of transformers `version`."""

    def __init__(self, version):
        from packaging.version import Version

        from conformance.drift import CHANGES_BY_ID
        self.version, self._changes = Version(version), CHANGES_BY_ID

    def has(self, change_id):
        from packaging.version import Version
        return self.version >= Version(self._changes[change_id].since)


def test_accumulation_rule_by_release_and_head():
    from conformance.checks.trainer import accumulation_rule
    table = {"4.41.0": ("mean", "mean"), "4.46.0": ("sum", "sum"), "4.47.1": ("sum", "num_items"),
             "4.48.1": ("mean", "num_items"), "4.57.3": ("mean", "num_items"), "5.0.0": ("sum", "num_items"),
             "5.24.0": ("sum", "num_items")}
    for version, (classification, causal) in table.items():
        release = _Release(version)
        assert accumulation_rule(release, "BertForTokenClassification") == classification, version
        assert accumulation_rule(release, "BertLMHeadModel") == causal, version


def test_the_accelerator_divides_again_in_5_2_to_5_5_3():
    from conformance.checks.trainer import backward_divisor
    divisors = {v: backward_divisor(_Release(v), 2) for v in ("4.54.0", "5.0.0", "5.2.0", "5.4.0", "5.5.3", "5.5.4")}
    assert divisors == {"4.54.0": 1, "5.0.0": 1, "5.2.0": 2, "5.4.0": 2, "5.5.3": 2, "5.5.4": 1}
