"""torch.compile as a port (`conformance/adapters/torch_compile.py`): transformers' model with its encoder compiled
by inductor matches the reference on one case (logits, hidden state, loss and d loss / d logits through the eager
head), two weight seeds through one compiled graph, and it declares what it narrows: the config it compiles, float32
only (float64 targets not applicable)."""

import shutil

import numpy as np
import pytest
import torch

from conformance.case import Case
from conformance.port import narrowing
from conformance.registry import CHECKS_BY_ID
from conformance.runner import compare_with_reference
from conformance.targets import Target, check_targets

pytestmark = [pytest.mark.harness,
              pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                 reason="inductor on the CPU needs a C++ compiler")]

IDS = np.array([[3, 7, 1, 9, 2], [5, 4, 8, 0, 6]])
MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])


@pytest.fixture(scope="module")
def port():
    from conformance.adapters.torch_compile import TorchCompileAdapter

    return TorchCompileAdapter()


def test_one_case_against_the_reference(port):
    from conformance.adapters.torch_compile import CONFIG

    config = dict(CONFIG, max_position_embeddings=20, is_decoder=False, num_labels=3)
    check = CHECKS_BY_ID["head.sequence_classification"]
    graphs = []
    for seed, ids, mask in ((1, IDS, MASK), (2, IDS[:, :4], MASK[:, :4])):
        case = Case("BertForSequenceClassification", config, seed, {"input_ids": ids, "attention_mask": mask},
                    {"labels": np.array([2, 0])})
        results = compare_with_reference(check, case, port, Target("cpu", "float32", "eager"))
        assert {r.key for r in results} == {"logits", "last_hidden_state", "loss", "loss_grad.logits"}
        assert all(r.ok for r in results), [r.message for r in results if not r.ok]
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1 and graphs[1] == graphs[0]  # another length and other weights: no recompile


def test_narrowing(port):
    assert narrowing(port, "BertForSequenceClassification")["fixed"]["hidden_size"] == 8
    pairs = check_targets(port, [Target("cpu", "float64", "eager"), Target("cpu", "float32", "eager")],
                          [CHECKS_BY_ID["head.masked_lm"]])
    assert [skips for _, _, skips in pairs] == [["not applicable: torch.compile computes in float32 only"], []]


def test_every_head_calls_the_compiled_encoder_with_the_same_keywords():
    """The compiled frame sees one set of keyword names whichever head calls it (a head that leaves
    encoder_hidden_states out, after one that passed it, once raised KeyError 'encoder_hidden_states' in dynamo)."""
    import transformers

    from conformance.adapters.torch_compile import _Encoder

    config = transformers.BertConfig(vocab_size=12, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=6)
    encoder = _Encoder(transformers.BertModel(config))
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, **kwargs):
            seen.append(sorted(kwargs))

    encoder.compiled = Recorder()
    ids = torch.tensor([[1, 2]])
    encoder(ids, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None, use_cache=False,
            return_dict=True, output_hidden_states=True)
    encoder(ids, return_dict=True, output_hidden_states=True)
    assert seen[0] == seen[1] and "encoder_hidden_states" in seen[0]
