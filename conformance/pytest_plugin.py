"""pytest plugin (entry point `bert_conformance`): options, Hypothesis profiles, fixtures and run records.

Options: --device, --dtype, --attn, --max-examples, --adapter, --report-dir (run records, see below). Profiles:
`ci` (derandomized, no example database, no deadline, 100 examples), `dev` (20 examples, the default off CI),
`thorough` (1000 examples); pick one with Hypothesis' own `--hypothesis-profile`. With the `CI` environment
variable set, `ci` is the default.
"""

import os
import time

import pytest
from hypothesis import HealthCheck, settings

from .compare import tolerance
from .records import (NOT_APPLICABLE, SCHEMA, append_record, environment as run_environment, expected_pairs,
                      json_number, peak_rss_mb, write_json)
from .registry import CHECKS_BY_ID
from .check import KNOWN_BUGS_BY_ID
from .known_bugs import PREFIX as KNOWN_BUG
from .runner import DEFAULT_ADAPTER, reproduce_command
from .targets import DEFAULT_DTYPES, check_targets, load_adapter, make_targets

COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], print_blob=True)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **COMMON)
settings.register_profile("dev", max_examples=20, **COMMON)
settings.register_profile("thorough", max_examples=1000, **COMMON)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_addoption(parser):
    group = parser.getgroup("bert-conformance")
    group.addoption("--device", default=None,
                    help="comma-separated devices to check (default: every device present: cpu, cuda, mps)")
    group.addoption("--dtype", default=DEFAULT_DTYPES, help=f"comma-separated dtypes (default: {DEFAULT_DTYPES}: "
                    "autocast_bfloat16 is float32 weights under torch.autocast to bfloat16)")
    group.addoption("--attn", default=None,
                    help="comma-separated attention implementations (default: every one the version has)")
    group.addoption("--max-examples", type=int, default=None, help="Hypothesis examples per check and target")
    group.addoption("--adapter", default=DEFAULT_ADAPTER,
                    help="module:Class of the implementation under test")
    group.addoption("--report-dir", default=None, help="write one JSON record per check and target here")


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


# --- records (the format: conformance.records) -------------------------------------------------------------------


def environment(config):
    """The run's environment (see `records.environment`), computed once per process."""
    if not hasattr(config, "_bert_env"):
        seed = config.getoption("--hypothesis-seed", None)
        config._bert_env = run_environment(
            _adapter(config), settings.get_current_profile_name(),
            seed if seed is not None else ("derandomized" if settings.default.derandomize else None),
            config.getoption("--max-examples") or settings.default.max_examples)
    return config._bert_env


def _expected_pairs(node_ids):
    return expected_pairs(node_ids, {check_id: check.area for check_id, check in CHECKS_BY_ID.items()})


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
            self.config._bert_run["expected"] = _expected_pairs(ids)
            write_json(_run_path(self.config), self.config._bert_run)


def pytest_sessionstart(session):
    """Controller (or the only process): write the run record with its environment and start time."""
    config = session.config
    if not config.getoption("--report-dir", None) or _is_worker(config):
        return
    config._bert_run = {"type": "run", "schema": SCHEMA, "run_id": config._bert_run_id, "env": environment(config),
                        "args": list(config.invocation_params.args), "start": time.time(), "end": None,
                        "exitstatus": None, "expected": None}
    write_json(_run_path(config), config._bert_run)


def pytest_collection_finish(session):
    """Without xdist: the collected pairs are the run's expected pairs."""
    config = session.config
    if not config.getoption("--report-dir", None) or _is_worker(config) or not hasattr(config, "_bert_run"):
        return
    config._bert_run["expected"] = _expected_pairs(item.nodeid for item in session.items)
    write_json(_run_path(config), config._bert_run)


def pytest_sessionfinish(session, exitstatus):
    """Controller (or the only process): add the end time and exit status to the run record."""
    config = session.config
    if not config.getoption("--report-dir", None) or _is_worker(config) or not hasattr(config, "_bert_run"):
        return
    config._bert_run.update(end=time.time(), exitstatus=int(exitstatus))
    write_json(_run_path(config), config._bert_run)


def outcome_of(report, props):
    """The record's outcome: not_applicable / skipped from the skip reason; fail for a comparison that did not
    hold (test_check records `failure` = "fail"), error for any other exception; known_bug where a known bug of a
    real release showed (`conformance.known_bugs`); explained / pass otherwise."""
    if report.skipped:
        return "not_applicable" if skip_reason(report).startswith(NOT_APPLICABLE) else "skipped"
    if report.failed:
        return "fail" if report.when == "call" and props.get("failure") == "fail" else "error"
    if any(k.startswith(KNOWN_BUG) for k in props.get("explained") or ()):
        return "known_bug"
    return "explained" if props.get("explained") else "pass"


def skip_reason(report):
    """The reason a skipped test gave, without pytest's "Skipped: " prefix."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return reason[len("Skipped: "):] if reason.startswith("Skipped: ") else reason


def worker_id(config):
    """This process's xdist worker id ("gw0", ...) or "main"; from xdist's own workerinput, not the environment,
    which a pytest run started from inside a worker inherits."""
    return getattr(config, "workerinput", {}).get("workerid", "main")


def check_record(item, report):
    """The JSON record of one (check, target) test: outcome, examples, largest error/tolerance, duration and, for
    a failure, the minimal counterexample and the command that reproduces it."""
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
    bugs = [k[len(KNOWN_BUG):] for k in props.get("explained") or () if k.startswith(KNOWN_BUG)]
    if outcome == "known_bug":  # the bug's description, its counterexample and the command that shows it
        message = "\n".join(f"known bug {b}: {KNOWN_BUGS_BY_ID[b].description}" for b in bugs)
        first = KNOWN_BUGS_BY_ID[bugs[0]]
        props.update(counterexample=first.counterexample,
                     reproduce=reproduce_command(check, target, _adapter(item.config), first.case()))
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
        "max_error_ratio": json_number(props.get("max_error_ratio")),
        "failure_ratio": json_number(props.get("failure_ratio")) if failed else None,
        "tolerance": tol,
        "explained": [k for k in props.get("explained") or () if not k.startswith(KNOWN_BUG)],
        "known_bugs": bugs,
        "duration_s": round(report.duration, 3),
        "peak_rss_mb": peak_rss_mb(),
        "message": message,
        "traceback": str(report.longrepr)[-4000:] if outcome == "error" else None,
        "counterexample": props.get("counterexample") if failed or bugs else None,
        "reproduce": props.get("reproduce") if failed or bugs else None,
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
    append_record(directory, worker_id(item.config), check_record(item, report))
