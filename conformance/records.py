"""The record format: what a run writes and a report reads, and the one vocabulary of outcomes.

A run with `--report-dir DIR` writes
  DIR/run-<run_id>.json       the run: environment, the expected (check, target) pairs, start and end time;
                              written by the controller (or the only process without xdist)
  DIR/records-<worker>.jsonl  one JSON line per (check, target) as its test ends, appended by each worker,
                              so a crash loses at most the test that was running
An expected pair without a record (a crashed or killed worker) is `missing` in the report.
"""

import glob
import json
import os
import platform
import re
import subprocess
import sys

import numpy

SCHEMA = 1
OUTCOMES = ("pass", "explained", "known_bug", "fail", "error", "not_applicable", "skipped", "missing")
RECORDED_OUTCOMES = OUTCOMES[:-1]  # `missing` is what a report says of an expected pair nobody recorded
LEGACY_OUTCOMES = {"passed": "pass", "failed": "fail"}  # records written before the outcome vocabulary
NOT_APPLICABLE = "not applicable:"  # the prefix of a skip reason that makes the outcome `not_applicable`
NODE_ID = re.compile(r"::test_check\[(?P<check>.+)\[(?P<target>[^\[\]]+)\]\]$")


def json_number(x):
    """Floats as JSON numbers; infinities and NaN (not JSON) as the strings "inf", "-inf", "nan"."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    return x


def write_json(path, data):
    """Write `data` to `path` atomically (a reader never sees half a file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)


def append_record(directory, worker, record):
    """Append one check record to `directory/records-<worker>.jsonl`."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"records-{worker}.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")


def expected_pairs(node_ids, areas):
    """The (check, target) pairs named by test_check node ids, as [{"check", "area", "target"}]; `areas` maps a
    check id to its area (an unknown id's area is its first dotted part)."""
    pairs = []
    for node_id in node_ids:
        m = NODE_ID.search(node_id)
        if m:
            pairs.append({"check": m["check"], "area": areas.get(m["check"], m["check"].split(".")[0]),
                          "target": m["target"]})
    return pairs


def environment(adapter, profile, seed, max_examples):
    """A run's environment: the implementation and its version, numpy, Python, platform, the adapter's own
    `environment()` entries (e.g. torch's version and the devices), the Hypothesis profile, its seed (an int,
    "derandomized" or None), the examples per check and the project's commit."""
    env = {
        "implementation": adapter.name,
        "version": str(getattr(adapter, "version", "")),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "devices": {"cpu": platform.processor() or platform.machine()},
        "hypothesis_profile": profile,
        "hypothesis_seed": seed,
        "max_examples": max_examples,
        "commit": project_commit(),
    }
    env.update(getattr(adapter, "environment", dict)())
    return env


def project_commit():
    """The git commit of the checked-out project (12 hex digits, "+dirty" when its tracked files differ from it), or
    None where the project is not a git checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def peak_rss_mb():
    """This process's peak resident memory so far, in MiB (a worker's, under xdist), or None where unknown."""
    try:
        import resource  # not on Windows
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)  # bytes on macOS, KiB on Linux


def load(directory):
    """Every run record (`run-*.json`) and check record (`*.jsonl` lines) under `directory`, recursively."""
    runs, records = [], []
    for path in sorted(glob.glob(os.path.join(directory, "**", "run-*.json"), recursive=True)):
        with open(path) as f:
            runs.append(json.load(f))
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.jsonl"), recursive=True)):
        with open(path) as f:
            for line in f:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut short by a killed worker
                        continue
    return runs, records
