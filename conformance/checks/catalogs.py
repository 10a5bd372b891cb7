"""Catalog checks: every BertConfig field, forward keyword, activation and collator field of a release is exercised by
a check or listed out of scope, and the release offers exactly the names recorded for it.

Like `schedule.catalog`: the installed release's catalog (`adapter.surface_catalog()`) against the classification
in `catalog_tables` and the spans of releases in `catalog_releases`, both ways: a name the release offers that the
tables do not classify, or whose recorded span does not cover the release, fails until it is classified and its
span recorded; a name whose span covers the release and that the release lacks fails until its removal is recorded
(the span's end, a drift change where a behaviour goes with it). A name classified as exercised must name checks
that exist (an id, or an id prefix, of a check declared under `conformance/checks/`), so a classification cannot
point at nothing.
"""

import importlib
import pkgutil

from hypothesis import strategies as st
from packaging.version import Version

from reference.activations import ACTIVATIONS

from .. import checks as checks_package
from ..case import SubjectCase
from ..check import Check
from ..compare import Comparison
from ..drift import CHANGES_BY_ID
from .catalog_releases import expected, recorded
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


def reached(adapter):
    """boundary -> whether the adapter's release is at or after it: a drift change id as the adapter's `has` answers,
    a release number against the adapter's version (the spans of `catalog_releases`)."""
    def at(boundary):
        if boundary in CHANGES_BY_ID:
            return adapter.has(boundary)
        return Version(str(adapter.version)) >= Version(boundary)
    return at


def classified(adapter, kinds):
    """The comparisons of the catalog kinds `kinds` (a prefix of `surface_catalog`'s keys): per kind, every name the
    release offers classified and recorded for this release, every name recorded for it offered, and every
    exercised name's checks declared."""
    catalog = {kind: names for kind, names in adapter.surface_catalog().items() if kind.startswith(kinds)}
    due = {kind: names for kind, names in expected(reached(adapter)).items() if kind.startswith(kinds)}
    ids = declared_check_ids() | {check.id for check in CHECKS}
    results = []
    for kind in sorted(set(catalog) | set(due)):
        names, want = catalog.get(kind), due.get(kind)
        if names is None or want is None:
            results.append(Comparison(f"{kind}: offered", False, 0.0,
                                      f"{adapter!r} {'lacks' if names is None else 'offers'} {kind}, recorded in "
                                      "conformance/checks/catalog_releases.py for "
                                      f"{'this release' if names is None else 'other releases only'}"))
            continue
        unclassified, unrecorded, dangling = [], [], []
        for name in names:
            exercised, reason = classification(kind, name, ACTIVATIONS)
            if exercised:
                dangling += [f"{name} -> {ref}" for ref in exercised if not resolves(ref, ids)]
            elif not reason:
                unclassified.append(name)
            if name not in want:
                unrecorded.append(f"{name} (recorded: {recorded(kind, name)})")
        removed = [f"{name} (recorded: {recorded(kind, name)})" for name in sorted(want - set(names))]
        results.append(Comparison(f"{kind}: unclassified", not unclassified and not unrecorded, 0.0, "; ".join(
            ([f"{adapter!r} offers {kind} {unclassified}, neither exercised by a check nor out of scope in "
              "conformance/checks/catalog_tables.py"] if unclassified else []) +
            ([f"{adapter!r} offers {kind} {unrecorded}, outside the releases recorded for them in "
              "conformance/checks/catalog_releases.py"] if unrecorded else []))))
        results.append(Comparison(f"{kind}: removed", not removed, 0.0,
                                  f"{adapter!r} lacks {kind} {removed}, recorded as offered by this release in "
                                  "conformance/checks/catalog_releases.py: record the release that removed it (a "
                                  "drift change where a behaviour goes with it)" if removed else ""))
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
