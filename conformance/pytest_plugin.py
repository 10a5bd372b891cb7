"""pytest plugin (entry point `bert_conformance`): options, Hypothesis profiles, fixtures and run records.

Options: --device, --dtype, --attn, --max-examples, --adapter, --report-dir (run records, see below). Profiles:
`ci` (derandomized, no example database, no deadline, 100 examples), `dev` (20 examples, the default off CI),
`thorough` (1000 examples); pick one with Hypothesis' own `--hypothesis-profile`. With the `CI` environment
variable set, `ci` is the default.
"""

import importlib
import itertools
import json
import os
import platform
import re
import sys
import time

import pytest
from hypothesis import HealthCheck, settings

from .runner import Target

COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **COMMON)
settings.register_profile("dev", max_examples=20, **COMMON)
settings.register_profile("thorough", max_examples=1000, **COMMON)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

DEFAULT_DTYPES = "float64,float32"


def pytest_addoption(parser):
    group = parser.getgroup("bert-conformance")
    group.addoption("--device", default=None,
                    help="comma-separated devices to check (default: every device present: cpu, cuda, mps)")
    group.addoption("--dtype", default=DEFAULT_DTYPES, help=f"comma-separated dtypes (default: {DEFAULT_DTYPES}; "
                    "also bfloat16)")
    group.addoption("--attn", default=None,
                    help="comma-separated attention implementations (default: every one the version has)")
    group.addoption("--max-examples", type=int, default=None, help="Hypothesis examples per check and target")
    group.addoption("--adapter", default="conformance.adapter:TransformersAdapter",
                    help="module:Class of the implementation under test")
    group.addoption("--report-dir", default=None, help="write one JSON record per check and target here")


def load_adapter(spec):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)()


@pytest.fixture(scope="session")
def adapter(request):
    return _adapter(request.config)


def _adapter(config):
    if not hasattr(config, "_bert_adapter"):
        config._bert_adapter = load_adapter(config.getoption("--adapter"))
    return config._bert_adapter


def targets(config):
    """Every (device, dtype, attention) to run on, from the options and what this machine and version have."""
    adapter = _adapter(config)
    return make_targets(adapter, config.getoption("--device"), config.getoption("--dtype"), config.getoption("--attn"))


def make_targets(adapter, device=None, dtype=DEFAULT_DTYPES, attn=None):
    """The targets of comma-separated devices (default: every one present), dtypes and attention implementations
    (default: every one the adapter has)."""
    from .adapter import available_devices

    devices = device.split(",") if device else available_devices()
    attns = (attn or ",".join(adapter.attention_implementations())).split(",")
    return [Target(d, t, a) for d, t, a in itertools.product(devices, dtype.split(","), attns)]


def check_targets(adapter, all_targets, checks=None):
    """Every (check, target, [reasons to skip]) the suite runs, in collection order: a check that is the same on
    every target (`once`) runs on the first; one that is not a reference comparison, or not run under every
    attention, runs under the first attention only."""
    from .registry import CHECKS

    pairs = []
    for check, target in itertools.product(CHECKS if checks is None else checks, all_targets):
        if check.once and target != all_targets[0]:
            continue
        if (not check.every_attention or check.kind in ("metamorphic", "error")) and target.attn != all_targets[0].attn:
            continue
        skips = []
        not_applicable = check.applies(adapter)
        if not_applicable:
            skips.append(f"not applicable: {not_applicable}")
        if check.cpu_only and target.device != "cpu":
            skips.append("out-of-range targets are device-side asserts off the CPU, which poison the CUDA context; "
                         "error conformance runs on the CPU")
        if target.device == "mps" and target.dtype == "float64":
            skips.append("MPS has no float64")
        pairs.append((check, target, skips))
    return pairs


def pytest_generate_tests(metafunc):
    if not {"check", "target"} <= set(metafunc.fixturenames):
        return
    params = []
    for check, target, skips in check_targets(_adapter(metafunc.config), targets(metafunc.config)):
        marks = [getattr(pytest.mark, check.area)] + [pytest.mark.skip(reason=reason) for reason in skips]
        params.append(pytest.param(check, target, marks=marks, id=f"{check.id}[{target.id}]"))
    metafunc.parametrize("check,target", params)


@pytest.fixture
def hypothesis_settings(request):
    """The loaded profile, with --max-examples applied."""
    n = request.config.getoption("--max-examples")
    return settings(settings.default, max_examples=n) if n else settings.default


# --- records -------------------------------------------------------------------------------------------------
#
# With --report-dir DIR, a run writes
#   DIR/run-<run_id>.json       the run: environment, the expected (check, target) pairs, start and end time;
#                               written by the controller (or the only process without xdist)
#   DIR/records-<worker>.jsonl  one JSON line per (check, target) as its test ends, appended by each worker,
#                               so a crash loses at most the test that was running
# `conformance.report` reads both; an expected pair without a record (a crashed or killed worker) is `missing`.

SCHEMA = 1
OUTCOMES = ("pass", "explained", "fail", "error", "not_applicable", "skipped")  # plus `missing`, in reports
NOT_APPLICABLE = "not applicable:"
NODE_ID = re.compile(r"::test_check\[(?P<check>.+)\[(?P<target>[^\[\]]+)\]\]$")


def environment(config):
    """The run's environment: implementation and its version, torch, numpy, Python, platform, devices,
    Hypothesis profile, seed (an int for --hypothesis-seed, "derandomized", or None) and examples per check."""
    if not hasattr(config, "_bert_env"):
        import numpy
        import torch

        adapter = _adapter(config)
        seed = config.getoption("--hypothesis-seed", None)
        devices = {"cpu": platform.processor() or platform.machine()}
        if torch.cuda.is_available():
            devices["cuda"] = torch.cuda.get_device_name(0)
        config._bert_env = {
            "implementation": adapter.name,
            "version": str(getattr(adapter, "version", "")),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "devices": devices,
            "hypothesis_profile": settings.get_current_profile_name(),
            "hypothesis_seed": seed if seed is not None else ("derandomized" if settings.default.derandomize else None),
            "max_examples": config.getoption("--max-examples") or settings.default.max_examples,
        }
    return config._bert_env


def _json_number(x):
    """Floats as JSON numbers; infinities and NaN (not JSON) as the strings "inf", "-inf", "nan"."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    return x


def _write_json(path, data):
    """Write `data` to `path` atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def expected_pairs(node_ids):
    """The (check, target) pairs named by test_check node ids, as [{"check", "area", "target"}]."""
    from .registry import CHECKS_BY_ID

    pairs = []
    for node_id in node_ids:
        m = NODE_ID.search(node_id)
        if m:
            check = CHECKS_BY_ID.get(m["check"])
            pairs.append({"check": m["check"], "area": check.area if check else m["check"].split(".")[0],
                          "target": m["target"]})
    return pairs


def _is_worker(config):
    return hasattr(config, "workerinput")


def _run_path(config):
    return os.path.join(config.getoption("--report-dir"), f"run-{config._bert_run['run_id']}.json")


def pytest_configure(config):
    """Give the run an id (the controller's, passed to xdist workers) and, in the controller of an xdist run,
    register the hooks that pass it on and record the expected pairs."""
    if not config.getoption("--report-dir", None):
        return
    if _is_worker(config):
        config._bert_run_id = config.workerinput.get("bert_run_id")
        return
    config._bert_run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    if config.pluginmanager.hasplugin("xdist") and config.getoption("dist", "no") != "no":
        config.pluginmanager.register(_XdistController(config), "bert_conformance_xdist")


class _XdistController:
    """xdist controller hooks (registered only under xdist): hand the run id to each worker; record the pairs
    the workers collected as the run's expected pairs."""

    def __init__(self, config):
        self.config = config

    def pytest_configure_node(self, node):
        node.workerinput["bert_run_id"] = self.config._bert_run_id

    def pytest_xdist_node_collection_finished(self, node, ids):
        if self.config._bert_run.get("expected") is None:
            self.config._bert_run["expected"] = expected_pairs(ids)
            _write_json(_run_path(self.config), self.config._bert_run)


def pytest_sessionstart(session):
    """Controller (or the only process): write the run record with its environment and start time."""
    config = session.config
    if not config.getoption("--report-dir", None) or _is_worker(config):
        return
    config._bert_run = {"type": "run", "schema": SCHEMA, "run_id": config._bert_run_id, "env": environment(config),
                        "args": list(config.invocation_params.args), "start": time.time(), "end": None,
                        "exitstatus": None, "expected": None}
    _write_json(_run_path(config), config._bert_run)


def pytest_collection_finish(session):
    """Without xdist: the collected pairs are the run's expected pairs."""
    config = session.config
    if not config.getoption("--report-dir", None) or _is_worker(config) or not hasattr(config, "_bert_run"):
        return
    config._bert_run["expected"] = expected_pairs(item.nodeid for item in session.items)
    _write_json(_run_path(config), config._bert_run)


def pytest_sessionfinish(session, exitstatus):
    """Controller (or the only process): add the end time and exit status to the run record."""
    config = session.config
    if not config.getoption("--report-dir", None) or _is_worker(config) or not hasattr(config, "_bert_run"):
        return
    config._bert_run.update(end=time.time(), exitstatus=int(exitstatus))
    _write_json(_run_path(config), config._bert_run)


def outcome_of(report, props):
    """The record's outcome: not_applicable / skipped from the skip reason; fail for a comparison that did not
    hold (test_check records `failure` = "fail"), error for any other exception; explained / pass otherwise."""
    if report.skipped:
        return "not_applicable" if skip_reason(report).startswith(NOT_APPLICABLE) else "skipped"
    if report.failed:
        return "fail" if report.when == "call" and props.get("failure") == "fail" else "error"
    return "explained" if props.get("explained") else "pass"


def skip_reason(report):
    """The reason a skipped test gave, without pytest's "Skipped: " prefix."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def worker_id(config):
    """This process's xdist worker id ("gw0", ...) or "main"; from xdist's own workerinput, not the environment,
    which a pytest run started from inside a worker inherits."""
    return getattr(config, "workerinput", {}).get("workerid", "main")


def peak_rss_mb():
    """This process's peak resident memory so far, in MiB (a worker's, under xdist), or None where unknown."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def check_record(item, report):
    """The JSON record of one (check, target) test: outcome, examples, largest error/tolerance, duration and, for
    a failure, the minimal counterexample and the command that reproduces it."""
    from .compare import tolerance

    check, target = item.callspec.params["check"], item.callspec.params["target"]
    props = dict(item.user_properties)
    outcome = outcome_of(report, props)
    failed = outcome in ("fail", "error")
    message = None
    if report.skipped:
        message = skip_reason(report)
    elif report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        message = props.get("failure_message") or (crash.message if crash else str(report.longrepr)[-4000:])
    try:
        tol = tolerance(target.dtype, target.device)
        tol = {"rtol": tol.rtol, "atol": tol.atol}
    except KeyError:
        tol = None
    return {
        "type": "check", "schema": SCHEMA, "run_id": getattr(item.config, "_bert_run_id", None),
        "worker": worker_id(item.config),
        "check": check.id, "area": check.area, "head": check.head,
        "target": target.id, "device": target.device, "dtype": target.dtype, "attn": target.attn,
        "outcome": outcome,
        "examples": props.get("examples"),
        "max_error_ratio": _json_number(props.get("max_error_ratio")),
        "failure_ratio": _json_number(props.get("failure_ratio")) if failed else None,
        "tolerance": tol,
        "explained": props.get("explained") or [],
        "duration_s": round(report.duration, 3),
        "peak_rss_mb": peak_rss_mb(),
        "message": message,
        "traceback": str(report.longrepr)[-4000:] if outcome == "error" else None,
        "counterexample": props.get("counterexample") if failed else None,
        "reproduce": props.get("reproduce") if failed else None,
        "env": environment(item.config),
        "time": time.time(),
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Append the record of each test_check to this worker's records file (its call, or a setup that skipped
    or failed)."""
    outcome = yield
    report = outcome.get_result()
    directory = item.config.getoption("--report-dir")
    callspec = getattr(item, "callspec", None)
    if not directory or callspec is None or not {"check", "target"} <= set(callspec.params):
        return
    if not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    os.makedirs(directory, exist_ok=True)
    worker = worker_id(item.config)
    with open(os.path.join(directory, f"records-{worker}.jsonl"), "a") as f:
        f.write(json.dumps(check_record(item, report)) + "\n")
