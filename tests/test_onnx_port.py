"""ONNX Runtime as a port (`conformance/adapters/onnx_runtime.py`): a head exported from transformers and run by
onnxruntime in float32 matches the reference on one case, feeds each case's own weights to the cached graph, and
declares what it lacks: float64 targets and the loss checks are not applicable in its words, comparisons leave the
loss out."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime==1.32.* onnx; or "
                    "tox -e onnx-1.32)")

from conformance.adapters.onnx_runtime import OnnxRuntimeAdapter  # noqa: E402
from conformance.case import Case  # noqa: E402
from conformance.port import not_offered  # noqa: E402
from conformance.registry import CHECKS, CHECKS_BY_ID  # noqa: E402
from conformance.runner import compare_with_reference  # noqa: E402
from conformance.targets import Target, check_targets  # noqa: E402

pytestmark = pytest.mark.harness

CONFIG = dict(vocab_size=11, hidden_size=6, num_hidden_layers=2, num_attention_heads=2, intermediate_size=5,
              hidden_act="gelu", layer_norm_eps=1e-12, max_position_embeddings=20, type_vocab_size=2,
              is_decoder=False, num_labels=3)
IDS = np.array([[3, 7, 1, 9, 2], [5, 4, 8, 0, 6]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


@pytest.fixture(scope="module")
def port():
    return OnnxRuntimeAdapter()


def test_one_case_against_the_reference(port):
    """Two weight seeds through one exported graph (the second case at another shape): both equal the reference
    at float32's tolerance; the loss, which the graph does not compute, is not among the comparisons."""
    check = CHECKS_BY_ID["head.sequence_classification"]
    target = Target("cpu", "float32", "eager")
    for seed, (ids, mask) in ((1, (IDS, MASK)), (2, (IDS[:1, :3], MASK[:1, :3]))):
        case = Case("BertForSequenceClassification", CONFIG, seed, {"input_ids": ids, "attention_mask": mask},
                    {"labels": np.array([2, 0])[:len(ids)]})
        results = compare_with_reference(check, case, port, target)
        assert {r.key for r in results} == {"logits", "last_hidden_state"}
        assert all(r.ok for r in results), [r.message for r in results if not r.ok]
    assert len(port._sessions) == 1


def test_what_it_lacks_is_not_applicable(port):
    targets = [Target("cpu", "float64", "eager"), Target("cpu", "float32", "eager")]
    pairs = check_targets(port, targets, [CHECKS_BY_ID["head.masked_lm"]])
    assert [skips for _, _, skips in pairs] == [["not applicable: onnxruntime computes in float32 only"], []]
    assert not_offered(port, CHECKS_BY_ID["loss.sequence_classification.regression"]) == (
        f"onnxruntime {port.version} computes no loss (its outputs_lacking)")
    assert not_offered(port, CHECKS_BY_ID["metamorphic.ignored_zero_grad.token_classification"]).endswith(
        "computes no loss, loss_grad (its outputs_lacking)")
    assert not_offered(port, CHECKS_BY_ID["metamorphic.batch_split.sequence_classification"]) is None
    assert {c.id for c in CHECKS if c.id.startswith("head.") and not_offered(port, c)} == set()
