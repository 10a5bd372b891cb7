"""Catalog checks: every BertConfig field, forward keyword, activation and collator field of a release is exercised by
a check or listed out of scope.

Like `schedule.catalog`: the installed release's catalog (`adapter.surface_catalog()`) against the classification
in `catalog_tables`; a name the release offers that the tables do not classify fails until it is classified, and
a name classified as exercised must name checks that exist (an id, or an id prefix, of a check declared under
`conformance/checks/`), so a classification cannot point at nothing.
"""

import importlib
import pkgutil

from hypothesis import strategies as st

from reference.activations import ACTIVATIONS

from .. import checks as checks_package
from ..case import SubjectCase
from ..check import Check
from ..compare import Comparison
from .catalog_tables import classification


def declared_check_ids():
    """The ids of every check declared in a module under `conformance/checks/` (what the registry lists)."""
    ids = set()
    for module in pkgutil.iter_modules(checks_package.__path__):
        declared = importlib.import_module(f"{checks_package.__name__}.{module.name}")
        ids |= {check.id for check in getattr(declared, "CHECKS", ())}
    return ids


def resolves(reference, ids):
    """Whether the check reference (an id or an id prefix) names at least one declared check."""
    return any(i == reference or i.startswith(reference) for i in ids)


def classified(adapter, kinds):
    """The comparisons of the catalog kinds `kinds` (a prefix of `surface_catalog`'s keys): per kind, every name
    classified, and every exercised name's checks declared."""
    catalog = {kind: names for kind, names in adapter.surface_catalog().items() if kind.startswith(kinds)}
    ids = declared_check_ids() | {check.id for check in CHECKS}
    results = []
    for kind, names in sorted(catalog.items()):
        unclassified, dangling = [], []
        for name in names:
            exercised, reason = classification(kind, name, ACTIVATIONS)
            if exercised:
                dangling += [f"{name} -> {ref}" for ref in exercised if not resolves(ref, ids)]
            elif not reason:
                unclassified.append(name)
        results.append(Comparison(f"{kind}: unclassified", not unclassified, 0.0,
                                  f"{adapter!r} offers {kind} {unclassified}, neither exercised by a check nor out of "
                                  "scope in conformance/checks/catalog_tables.py" if unclassified else ""))
        results.append(Comparison(f"{kind}: exercised by no declared check", not dangling, 0.0,
                                  f"{kind}: {dangling} name checks that are not declared" if dangling else ""))
    if not catalog:
        results.append(Comparison(f"{kinds}: catalog", False, 0.0, f"{adapter!r} lists no {kinds} catalog"))
    return results


def _catalog_check(name, kinds, what):
    def prop(adapter, case, target):
        return classified(adapter, kinds)
    prop.__doc__ = (f"Every {what} of the installed release is exercised by a declared check or listed out of scope "
                    "(conformance/checks/catalog_tables.py); a new one fails until classified.")
    return Check(f"catalog.{name}", "catalog", kinds, prop.__doc__, lambda adapter: st.just(SubjectCase(kinds)),
                 kind="property", prop=prop, once=True, max_examples=1, case_type=SubjectCase)


CHECKS = [
    _catalog_check("config_fields", "config", "BertConfig field (to_dict() keys and __init__ parameters)"),
    _catalog_check("forward_keywords", "forward.", "forward keyword of the nine BERT classes"),
    _catalog_check("activations", "activations", "ACT2FN activation"),
    _catalog_check("collator_fields", "collator.", "field of the MLM collators"),
]
