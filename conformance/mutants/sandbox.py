"""The sandbox: find the installed transformers, copy it to a temporary folder, apply a mutant's source edit there,
and build the environment (and check) that makes a fresh interpreter import the copy; also check the catalog's
version ranges against the sources of several releases."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from packaging.version import Version

from .catalog import MUTANTS

GUARD_ENV = "BERT_CONFORMANCE_MUTANT_GUARD"  # JSON {"root", "file", "new", "report"} for the in-process guard


class MutantError(RuntimeError):
    """The mutant cannot be applied to this source (its `old` text is missing or ambiguous)."""


def installed_package():
    """The directory of the `transformers` package this interpreter imports, and its version (without importing it:
    the runner must not hold the pristine package in memory, and importing transformers is slow)."""
    imported = sys.modules.get("transformers")  # imported already: its lazy module (4.x) may have no __spec__
    origin = getattr(imported, "__file__", None)
    if origin is None:
        spec = importlib.util.find_spec("transformers")
        origin = spec.origin if spec is not None else None
    if not origin:
        raise MutantError("transformers is not installed")
    directory = Path(origin).parent
    namespace = {}
    for line in (directory / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            exec(line, namespace)
            break
    return directory, Version(namespace.get("__version__", "0"))


def occurrences(mutant, package_dir):
    """How often `mutant.old` occurs in its file under `package_dir` (0 if the file is missing)."""
    path = Path(package_dir) / mutant.file
    return path.read_text().count(mutant.old) if path.is_file() else 0


def mutate_source(mutant, source):
    """`source` with the mutant applied; refuses unless `old` occurs exactly once."""
    count = source.count(mutant.old)
    if count != 1:
        raise MutantError(f"mutant {mutant.id}: expected exactly one occurrence of its old text in {mutant.file}, "
                          f"found {count}")
    return source.replace(mutant.old, mutant.new)


def _link_or_copy(src, dst):
    """A hard link where the filesystem allows it (the copy is only read, and the one file mutated is unlinked
    before it is written, so the installed package is never touched), else a copy keeping the modification time."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def apply(mutant, package_dir, root):
    """Copy the package `package_dir` to `root`/transformers and apply `mutant` there; return the mutated file.

    The bytecode caches come along (compiling transformers anew costs ~10 s per process), except the mutated
    module's: Python validates a cached .pyc against its source's modification time and size anyway, and removing
    it makes sure the mutated source is compiled."""
    target = Path(root) / "transformers"
    shutil.copytree(package_dir, target, copy_function=_link_or_copy)
    path = target / mutant.file
    if not path.is_file():
        raise MutantError(f"mutant {mutant.id}: {mutant.file} does not exist in {package_dir}")
    mutated = mutate_source(mutant, path.read_text())
    path.unlink()  # never write through a hard link into the installed package
    path.write_text(mutated)
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink()
    return path


def project_root():
    """The folder holding the `conformance` and `reference` packages this process runs (so that the suite imports
    them from a temporary working directory even when the editable install's mapping is stale)."""
    return str(Path(__file__).resolve().parents[2])


def mutant_env(root, guard=None):
    """The environment that puts the copy under `root` first on the import path, then this project (and arms the
    guard)."""
    env = dict(os.environ)
    paths = [str(root), project_root()] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop(GUARD_ENV, None)
    if guard is not None:
        env[GUARD_ENV] = json.dumps(guard)
    return env


def imported_transformers(env, python=sys.executable, cwd=None):
    """The `transformers/__init__.py` a fresh interpreter with `env` imports."""
    out = subprocess.run([python, "-c", "import transformers; print(transformers.__file__)"], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise MutantError(f"importing transformers failed: {out.stderr.strip()[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def is_under(path, root):
    """Whether `path` lies under the folder `root` (both resolved)."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def verify_import(env, root, python=sys.executable, cwd=None):
    """Fail unless a fresh interpreter with `env` imports transformers from under `root`; return its path."""
    path = imported_transformers(env, python, cwd)
    if not is_under(path, root):
        raise MutantError(f"the mutated copy under {root} is not the transformers imported ({path})")
    return path


def check_sources(folder, catalog=None):
    """Check the catalog's version ranges against the sources of several releases: `folder`/<version>/transformers.
    Returns (versions, rows of (mutant id, [occurrences per version]), problems): a problem is a release inside a
    mutant's range whose source does not hold `old` exactly once."""
    catalog = MUTANTS if catalog is None else catalog
    folder = Path(folder)
    versions = sorted((p.name for p in folder.iterdir() if (p / "transformers").is_dir()), key=Version)
    rows, problems = [], []
    for m in catalog:
        counts = [occurrences(m, folder / v / "transformers") for v in versions]
        rows.append((m.id, counts))
        problems += [f"{m.id}: transformers {v} is in {m.versions} but holds its old text {n} times"
                     for v, n in zip(versions, counts) if m.applies_to(v) and n != 1]
    return versions, rows, problems
