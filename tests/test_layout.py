"""The layout's rules (README, "Layout"): imports run one way, no private name crosses a module, no module grows
past what one person holds in mind, and every check id another table names exists."""

import ast
import pathlib

import pytest

from conformance.drift import CHANGES
from conformance.registry import CHECKS, CHECKS_BY_ID

pytestmark = pytest.mark.harness

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("conformance", "reference")
MAX_LINES = 450
DATA_TABLES = {"conformance/mutants/catalog.py", *(f"conformance/mutants/catalog_{name}.py" for name in
               ("surface", "decoding", "gradients", "train", "outcomes"))}  # data, not logic: exempt from MAX_LINES


def _modules():
    """{dotted module name: path} of every module of our packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name, path):
    """[(imported module, [imported names], line)] of one module, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{base}.{n}" in MODULES]
            if len(submodules) < len(names):  # `from package import submodule` needs only the submodule
                out.append((base, [n for n in names if n not in submodules], node.lineno))
            out += [(f"{base}.{n}", [], node.lineno) for n in submodules]
    return out


def _graph():
    graph = {}
    for name, path in MODULES.items():
        targets = set()
        for module, _, _ in _imports(name, path):
            while module and module not in MODULES:  # `import a.b.c` reaches the innermost of our modules it names
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    return graph


def test_no_import_cycles():
    """The import graph of our modules (a package's __init__ counts as the package) has no cycle."""
    graph, state, stack = _graph(), {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_private_name_crosses_a_module():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {n} from {module}"
                 for name, path in MODULES.items() for module, names, line in _imports(name, path)
                 if module.split(".")[0] in PACKAGES for n in names if n.startswith("_")]
    assert not offenders, offenders


def test_no_module_level_getattr():
    offenders = [str(path.relative_to(ROOT)) for path in MODULES.values()
                 if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(path.read_text()).body)]
    assert not offenders, offenders


def test_reference_imports_nothing_of_the_harness_nor_what_it_checks():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for name, path in MODULES.items() if name.startswith("reference")
                 for module, _, line in _imports(name, path)
                 if module.split(".")[0] in ("conformance", "torch", "transformers")]
    assert not offenders, offenders


def test_no_module_past_the_size_one_person_holds_in_mind():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in MODULES.values()}
    over = {path: n for path, n in sizes.items() if n > MAX_LINES and path not in DATA_TABLES}
    assert not over, over


def test_every_check_the_drift_catalog_names_exists():
    missing = [(change.id, check) for change in CHANGES for check in change.checks if check not in CHECKS_BY_ID]
    assert not missing, missing


def test_a_known_difference_id_means_one_thing():
    by_id = {}
    for check in CHECKS:
        for known in check.known:
            assert by_id.setdefault(known.id, known) is known, f"two known differences named {known.id}"
