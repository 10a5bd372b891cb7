"""pytest plugin (entry point `bert_conformance`): options, Hypothesis profiles, fixtures and run records.

Options: --device, --dtype, --attn, --max-examples, --adapter, --report-dir. Profiles: `ci` (derandomized, no
example database, no deadline, 100 examples), `dev` (20 examples, the default off CI), `thorough` (1000
examples); pick one with Hypothesis' own `--hypothesis-profile`. With the `CI` environment variable set, `ci` is
the default.
"""

import importlib
import itertools
import json
import os
import platform
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
    from .adapter import available_devices

    adapter = _adapter(config)
    option = config.getoption("--device")
    devices = option.split(",") if option else available_devices()
    attns = (config.getoption("--attn") or ",".join(adapter.attention_implementations())).split(",")
    dtypes = config.getoption("--dtype").split(",")
    return [Target(d, t, a) for d, t, a in itertools.product(devices, dtypes, attns)]


def pytest_generate_tests(metafunc):
    if not {"check", "target"} <= set(metafunc.fixturenames):
        return
    from .registry import CHECKS

    all_targets = targets(metafunc.config)
    params = []
    adapter = _adapter(metafunc.config)
    for check, target in itertools.product(CHECKS, all_targets):
        if check.once and target != all_targets[0]:
            continue
        if (not check.every_attention or check.kind != "reference") and target.attn != all_targets[0].attn:
            continue
        marks = [getattr(pytest.mark, check.area)]
        not_applicable = check.applies(adapter)
        if not_applicable:
            marks.append(pytest.mark.skip(reason=f"not applicable: {not_applicable}"))
        if check.cpu_only and target.device != "cpu":
            marks.append(pytest.mark.skip(reason="out-of-range targets are device-side asserts off the CPU, which "
                                                 "poison the CUDA context; error conformance runs on the CPU"))
        if target.device == "mps" and target.dtype == "float64":
            marks.append(pytest.mark.skip(reason="MPS has no float64"))
        params.append(pytest.param(check, target, marks=marks, id=f"{check.id}[{target.id}]"))
    metafunc.parametrize("check,target", params)


@pytest.fixture
def hypothesis_settings(request):
    """The loaded profile, with --max-examples applied."""
    n = request.config.getoption("--max-examples")
    return settings(settings.default, max_examples=n) if n else settings.default


# --- records -------------------------------------------------------------------------------------------------


def environment(adapter):
    import numpy
    import torch

    return {
        "implementation": adapter.name,
        "version": str(getattr(adapter, "version", "")),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "hypothesis_profile": settings._current_profile,
    }


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    directory = item.config.getoption("--report-dir")
    callspec = getattr(item, "callspec", None)
    if not directory or callspec is None or "check" not in callspec.params:
        return
    if report.when != "call" and not (report.skipped or report.failed):
        return
    check, target = callspec.params["check"], callspec.params["target"]
    props = dict(item.user_properties)
    record = {
        "check": check.id, "area": check.area, "head": check.head,
        "device": target.device, "dtype": target.dtype, "attn": target.attn,
        "outcome": "skipped" if report.skipped else ("failed" if report.failed else
                                                     props.get("outcome", "passed")),
        "examples": props.get("examples"), "max_error_ratio": props.get("max_error_ratio"),
        "explained": props.get("explained"), "duration_s": round(report.duration, 3),
        "message": str(report.longrepr)[-4000:] if report.failed or report.skipped else None,
        "env": environment(_adapter(item.config)), "time": time.time(),
    }
    os.makedirs(directory, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join(directory, f"records-{worker}.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
