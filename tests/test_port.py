"""The port contract (`conformance/port.py`) and the README's tutorial port (`examples/tiny_bert.py`): a port that
lacks part of the core is told everything it lacks at once; what it does not offer is not applicable in its own
words; the tutorial port gets its report, and a bug seeded into it fails with a reproduce command that reproduces."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conformance.port import CAPABILITIES, HEADS, Port, capability_of, missing_core, not_offered
from conformance.registry import CHECKS, CHECKS_BY_ID
from conformance.report import load_tree
from conformance.targets import PortError, Target, check_targets, load_adapter
from examples.tiny_bert import TinyBert
from test_report import ENV, ROOT

pytestmark = pytest.mark.harness


class HalfAPort:
    name = "half"

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        return {}, {}


class BuggyTinyBert(TinyBert):
    """The tutorial port with one bug: the pooler's tanh replaced by a ReLU."""

    def run(self, case, attn="eager", device="cpu", dtype="float64", grad=True):
        tanh = torch.tanh
        torch.tanh = torch.relu
        try:
            return super().run(case, attn, device, dtype, grad)
        finally:
            torch.tanh = tanh


def test_missing_core_is_listed_at_once():
    assert missing_core(HalfAPort()) == ["version", "devices", "attention_implementations", "activations", "has",
                                         "build"]
    with pytest.raises(PortError, match="lacks version, devices, attention_implementations, activations, has, "
                                        "build of the port contract's core"):
        load_adapter("test_port:HalfAPort")
    assert isinstance(TinyBert(), Port) and missing_core(TinyBert()) == []


def test_every_check_has_a_home():
    """Each check is either core (on a head the port may declare) or needs one capability."""
    for check in CHECKS:
        assert capability_of(check) is not None or check.head in HEADS, check.id
    assert {c.name for c in CAPABILITIES} >= {"schedules", "adamw", "decay", "collator", "checkpoint"}


def test_transformers_offers_everything():
    """The complete adapter offers every capability and head: the contract names what the checks really use."""
    from conformance.adapters.transformers import TransformersAdapter

    adapter = TransformersAdapter()  # its real weights: the full checkpoint capability, not a port's own loader
    assert [c.name for c in CAPABILITIES if not c.offered_by(adapter)] == ["port_checkpoint"]
    assert [check.id for check in CHECKS if not_offered(adapter, check)] == ["checkpoint_port.encoder"]


def test_not_offered_in_the_ports_words():
    port = TinyBert()
    assert not_offered(port, CHECKS_BY_ID["schedule.linear"]) == (
        "tiny-bert 0.1 does not offer learning-rate schedules (no schedule_names, lr_curve)")
    assert not_offered(port, CHECKS_BY_ID["head.masked_lm"]) == "tiny-bert 0.1 has no BertForMaskedLM"
    assert "has no decoder" in not_offered(port, CHECKS_BY_ID["encoder.causal"])
    assert not_offered(port, CHECKS_BY_ID["head.sequence_classification"]) is None
    pairs = check_targets(port, [Target("cpu", "float64", "eager")])
    skipped = {check.id for check, _, skips in pairs if skips}
    assert "encoder.bidirectional" not in skipped and "checkpoint.weights" in skipped


def run_port(report_dir, adapter, *args):
    command = [sys.executable, "-m", "conformance", "--adapter", adapter, "run", "--report-dir", str(report_dir),
               "--workers", "0", "--max-examples", "5", "-p", "no:randomly", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=ENV)


def test_tutorial_port_gets_its_report(tmp_path):
    proc = run_port(tmp_path, "examples.tiny_bert:TinyBert")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "tiny-bert 0.1: " in proc.stdout and " not_applicable (cells)" in proc.stdout
    assert os.listdir(tmp_path / "records") == ["tiny-bert-0.1.json"]
    runs, records = load_tree(str(tmp_path / "records"))
    outcomes = {(r["check"], r["target"]): r["outcome"] for r in records}
    assert outcomes["encoder.bidirectional", "cpu-float64-eager"] == "pass"
    assert outcomes["head.sequence_classification", "cpu-float32-eager"] == "pass"
    assert outcomes["schedule.linear", "cpu-float64-eager"] == "not_applicable"
    assert "tiny-bert 0.1" in (tmp_path / "COMPATIBILITY.md").read_text()


def test_a_ports_failure_reproduces(tmp_path):
    proc = run_port(tmp_path, "test_port:BuggyTinyBert", "-k", "encoder.bidirectional and float64")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs, records = load_tree(str(tmp_path / "records"))
    [record] = [r for r in records if r["outcome"] == "fail"]
    assert record["reproduce"].startswith("python -m conformance --adapter test_port:BuggyTinyBert repro "
                                          "encoder.bidirectional cpu-float64-eager '")
    json.loads(record["counterexample"])
    again = subprocess.run(record["reproduce"], shell=True, cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env=dict(ENV, PATH=os.path.dirname(sys.executable) + os.pathsep + ENV["PATH"]))
    assert again.returncode == 1 and "FAIL pooler_output" in again.stdout, again.stdout + again.stderr
