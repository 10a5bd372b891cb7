"""`bert-conformance bench`: every area gets a row with examples per second, the floor and their ratio; the floor is
the bare calls only (the adapter's forward/autograd clock and the reference's clock tick during a case); the command
prints the table and exits 0. A few examples per area keep this fast."""

import json
import time

import pytest

from conformance import bench, cli
from conformance.adapters.transformers import TransformersAdapter
from conformance.targets import Target, make_targets
from conformance.registry import CHECKS, CHECKS_BY_ID
from conformance.runner import Clock

pytestmark = pytest.mark.harness

CPU64 = [Target("cpu", "float64", "eager")]
AREAS = ["encoder", "head", "loss", "metamorphic", "errors", "schedule", "optim", "masking"]


@pytest.fixture(scope="module")
def adapter():
    return TransformersAdapter()


@pytest.fixture(scope="module")
def result(adapter):
    return bench.bench(adapter, CPU64, examples=2, areas=AREAS)


def test_a_row_per_area_and_a_total(adapter, result):
    areas = [r["area"] for r in result["rows"]]
    assert areas == AREAS + ["all"]  # in registry order; on cpu-float64-eager every area has a check to run
    assert [a for a in dict.fromkeys(c.area for c in CHECKS) if a in AREAS] == AREAS
    for r in result["rows"]:
        assert r["tests"] >= 1 and r["examples"] >= r["tests"], r
        assert r["seconds"] > 0 and r["examples_per_s"] > 0, r
        # the floor is part of the run's work: replaying the same cases' bare calls cannot take much longer than
        # running them with everything else (a generous bound: timings on a shared machine are noisy)
        assert 0 < r["ratio"] < 3, r
        assert r["floor_examples_per_s"] == pytest.approx(r["examples_per_s"] / r["ratio"], rel=1e-6)
    total = result["rows"][-1]
    assert total["examples"] == sum(r["examples"] for r in result["rows"][:-1])
    assert result["failures"] == []


def test_the_floor_counts_bare_calls_only(adapter):
    """A reference check's floor is the forward + autograd + reference time, which both clocks measure."""
    check = CHECKS_BY_ID["head.sequence_classification"]
    n, seconds, floor, failure = bench.time_pair(check, CPU64[0], adapter, 3)
    assert failure is None and n >= 3
    assert 0 < floor < seconds
    before = (adapter.bare_seconds, Clock.seconds)
    bench.time_pair(check, CPU64[0], adapter, 1)
    assert adapter.bare_seconds > before[0] and Clock.seconds > before[1]


def test_targets_follow_the_suite(adapter):
    targets = make_targets(adapter, "cpu", "float64,float32", "eager")
    assert [t.id for t in targets] == ["cpu-float64-eager", "cpu-float32-eager"]


def test_table_format():
    rows = [bench.row("head", 2, 10, 2.0, 1.0), bench.row("all", 2, 10, 2.0, 1.0)]
    lines = bench.table(rows).splitlines()
    assert lines[0].split() == ["area", "tests", "examples", "seconds", "examples/s", "floor", "examples/s", "ratio"]
    assert lines[2].split() == ["head", "2", "10", "2.00", "5.0", "10.0", "0.50"]


def test_cli_prints_the_table_and_exits_0(tmp_path, capsys):
    """`bert-conformance bench` (conformance.cli.main, what the console script calls) in this process: the imports
    a subprocess would repeat are most of its cost."""
    out = tmp_path / "bench.json"
    code = cli.main(["bench", "--examples", "2", "--area", "loss,schedule", "--dtype", "float64", "--attn", "eager",
                     "--json", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["area", "tests", "examples"]
    assert [line.split()[0] for line in lines[3:6]] == ["loss", "schedule", "all"]
    assert "one-time per process" in lines[6] and "load average" in lines[6]
    data = json.loads(out.read_text())
    assert [r["area"] for r in data["rows"]] == ["loss", "schedule", "all"]
    assert data["targets"] == ["cpu-float64-eager"] and data["startup_s"] > 0


def test_warm_up_runs_one_example_per_attention_and_per_other_check(adapter, monkeypatch):
    """Before timing: one example of the first reference check under each attention implementation (the lazy imports
    of the first forward) and one of every other check on its first target (what its subject loads on first use,
    e.g. the Trainer's imports for the decay grouping)."""
    calls = []
    monkeypatch.setattr(bench, "time_pair", lambda check, target, adapter, n: calls.append((check, target.id, n)))
    targets = make_targets(adapter, "cpu", "float64,float32", None)
    pairs = [(c, t) for c in CHECKS if c.area in ("head", "optim") for t in targets]
    bench.warm_up(adapter, pairs)
    reference = [(c.id, t) for c, t, _ in calls if c.kind == "reference"]
    assert [t for _, t in reference] == [t.id for t in targets if t.dtype == "float64"][:len(reference)]
    assert {t.split("-")[-1] for _, t in reference} == {t.attn for t in targets}
    others = [(c.id, t) for c, t, _ in calls if c.kind != "reference"]
    assert others == [(c.id, targets[0].id) for c in CHECKS if c.area in ("head", "optim") and c.kind != "reference"]
    assert all(n == 1 for _, _, n in calls)


def test_reference_functions_are_timed_by_whatever_route_a_check_calls_them():
    """Inside `reference_timed`: a reference function reached through a module attribute (`optim.adamw`), a name
    imported into a check module, or a table (`HEADS`) adds its time to the clock once (nested calls inside it do
    not add again); outside, every one of them is the original function again."""
    from conformance.checks import adamw, gradients
    from reference import heads, optim

    originals = (optim.adamw, gradients.head_gradients, heads.HEADS["BertModel"])
    case = adamw.SubjectCase("torch.optim.AdamW", {"params": [[1.0, 2.0]], "grads": [[[0.5, -0.5]]] * 3,
                                                   "hyper": {"lr": 0.1, "betas": [0.9, 0.999], "eps": 1e-8,
                                                             "weight_decay": 0.0, "amsgrad": False}})
    with bench.reference_timed():
        assert optim.adamw is not originals[0] and gradients.head_gradients is not originals[1]
        assert heads.HEADS["BertModel"] is not originals[2]
        before = bench.ReferenceClock.seconds
        start = time.perf_counter()
        adamw.reference_adamw(case)
        elapsed = time.perf_counter() - start
        assert 0 < bench.ReferenceClock.seconds - before <= elapsed
    assert (optim.adamw, gradients.head_gradients, heads.HEADS["BertModel"]) == originals
    assert bench.ReferenceClock.depth == 0
