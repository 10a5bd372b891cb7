"""The catalog checks (`conformance/checks/catalogs.py`): the installed release is fully classified, a new name fails
until classified, and a classification naming no declared check fails."""

import pytest

from conformance.adapters.transformers import TransformersAdapter
from conformance.checks import catalog_tables
from conformance.checks.catalogs import CHECKS, classified, declared_check_ids, resolves
from conformance.registry import CHECKS_BY_ID


class Adds(TransformersAdapter):
    """The installed release with one more config field, forward keyword, activation and collator field."""

    def surface_catalog(self):
        catalog = super().surface_catalog()
        for kind in catalog:
            catalog[kind] = catalog[kind] + ["brand_new"]
        return catalog


@pytest.fixture(scope="module")
def adapter():
    return TransformersAdapter()


def test_declared_ids_are_the_registry():
    assert declared_check_ids() == set(CHECKS_BY_ID)


def test_installed_release_is_classified(adapter):
    for check in CHECKS:
        results = check.prop(adapter, None, None)
        assert results and all(r.ok for r in results), [r.message for r in results if not r.ok]


def test_a_new_name_fails_until_classified():
    for kinds in ("config", "forward.", "activations", "collator.DataCollatorForLanguageModeling"):
        failed = [r for r in classified(Adds(), kinds) if not r.ok]
        assert failed and all("brand_new" in r.message for r in failed), kinds


def test_a_classification_must_name_a_declared_check(adapter, monkeypatch):
    monkeypatch.setitem(catalog_tables.CONFIG_EXERCISED, "vocab_size", ("encoder.no_such_check",))
    failed = [r for r in classified(adapter, "config") if not r.ok]
    assert len(failed) == 1 and "vocab_size -> encoder.no_such_check" in failed[0].message


def test_every_exercised_reference_resolves():
    ids = declared_check_ids()
    tables = (catalog_tables.CONFIG_EXERCISED, catalog_tables.FORWARD_EXERCISED, catalog_tables.COLLATOR_EXERCISED)
    refs = {ref for table in tables for refs in table.values() for ref in refs} | set(catalog_tables.ACTIVATION_CHECKS)
    assert all(resolves(ref, ids) for ref in refs), sorted(r for r in refs if not resolves(r, ids))


def test_no_name_is_both_exercised_and_out_of_scope():
    for exercised, out in ((catalog_tables.CONFIG_EXERCISED, catalog_tables.CONFIG_OUT_OF_SCOPE),
                           (catalog_tables.FORWARD_EXERCISED, catalog_tables.FORWARD_OUT_OF_SCOPE),
                           (catalog_tables.COLLATOR_EXERCISED, catalog_tables.COLLATOR_OUT_OF_SCOPE)):
        assert not set(exercised) & set(out)
