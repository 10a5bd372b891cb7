"""The catalog checks (`conformance/checks/catalogs.py`): the installed release is fully classified and offers what is
recorded for it, a new name fails until classified, a name a release drops fails until its removal is recorded, and a
classification naming no declared check fails."""

import pytest
from packaging.version import InvalidVersion, Version

from conformance.adapters.transformers import TransformersAdapter
from conformance.checks import catalog_releases, catalog_tables
from conformance.checks.catalogs import CHECKS, classified, declared_check_ids, reached, resolves
from conformance.drift import CHANGES_BY_ID
from conformance.registry import CHECKS_BY_ID
from reference.activations import ACTIVATIONS

KINDS = ("config", "forward.", "activations", "collator.")


class Adds(TransformersAdapter):
    """The installed release with one more config field, forward keyword, activation and collator field."""

    def surface_catalog(self):
        catalog = super().surface_catalog()
        for kind in catalog:
            catalog[kind] = catalog[kind] + ["brand_new"]
        return catalog


class Drops(TransformersAdapter):
    """The installed release without one name of every kind it offers (a release that removes them)."""

    DROPPED = {"config": "vocab_size", "activations": "gelu", "collator.DataCollatorForLanguageModeling": "mlm",
               **{f"forward.{head}": "input_ids" for head in catalog_releases.HEADS}}

    def surface_catalog(self):
        catalog = super().surface_catalog()
        return {kind: [n for n in names if n != self.DROPPED.get(kind)] for kind, names in catalog.items()}


class Reoffers(TransformersAdapter):
    """The installed release offering a name again after the release recorded as its last (BertModel's head_mask,
    gone in 5.0; on releases that still have it, `cache`, which comes in 5.24)."""

    def surface_catalog(self):
        catalog = super().surface_catalog()
        name = "head_mask" if self.has("head-mask-removed") else "cache"
        catalog["forward.BertModel"] = catalog["forward.BertModel"] + [name]
        return catalog


class Older(TransformersAdapter):
    """The installed release's catalog, claiming to be a release far older (4.4.2) or newer than it is."""

    def __init__(self, version):
        super().__init__()
        self.version = Version(version)


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


def test_a_dropped_name_fails_until_its_removal_is_recorded():
    for kinds in KINDS:
        failed = [r for r in classified(Drops(), kinds) if not r.ok]
        assert failed and all(r.key.endswith(": removed") for r in failed), (kinds, [r.key for r in failed])
        assert all(any(f"{name} (recorded:" in r.message for name in Drops.DROPPED.values()) for r in failed)


def test_a_name_outside_its_recorded_releases_fails():
    failed = [r for r in classified(Reoffers(), "forward.") if not r.ok]
    assert [r.key for r in failed] == ["forward.BertModel: unclassified"], [r.key for r in failed]
    assert "outside the releases recorded" in failed[0].message


def test_a_dropped_kind_fails():
    class NoCollator(TransformersAdapter):
        def surface_catalog(self):
            catalog = super().surface_catalog()
            return {k: v for k, v in catalog.items() if k != "collator.DataCollatorForLanguageModeling"}
    failed = [r for r in classified(NoCollator(), "collator.") if not r.ok]
    assert "collator.DataCollatorForLanguageModeling: offered" in [r.key for r in failed]


@pytest.mark.parametrize("version", ["4.4.2", "6.0.0"])
def test_another_release_is_held_to_its_own_set(adapter, version):
    """The installed catalog claimed by another release fails unless the two releases offer the same names."""
    same = catalog_releases.expected(reached(adapter)) == catalog_releases.expected(reached(Older(version)))
    failed = [r for kinds in KINDS for r in classified(Older(version), kinds) if not r.ok]
    assert bool(failed) != same


def test_recorded_sets_are_classified_and_classifications_recorded():
    recorded = {"config": set(catalog_releases.CONFIG), "forward": set(catalog_releases.FORWARD),
                "activations": set(catalog_releases.ACTIVATIONS),
                "collator": set(catalog_releases.COLLATORS["DataCollatorForLanguageModeling"][1])}
    for name in recorded["config"]:
        assert catalog_tables.classification("config", name) != (None, None), name
    for name in recorded["forward"]:
        assert catalog_tables.classification("forward.BertModel", name) != (None, None), name
    for name in recorded["activations"]:
        assert catalog_tables.classification("activations", name, ACTIVATIONS) != (None, None), name
    for name in recorded["collator"]:
        assert catalog_tables.classification("collator.DataCollatorForLanguageModeling", name) != (None, None), name
    for name in catalog_releases.COLLATORS["DataCollatorForWholeWordMask"][1]:
        assert catalog_tables.classification("collator.DataCollatorForWholeWordMask", name) != (None, None), name
    stale = {"config": set(catalog_tables.CONFIG_EXERCISED) | set(catalog_tables.CONFIG_OUT_OF_SCOPE),
             "forward": set(catalog_tables.FORWARD_EXERCISED) | set(catalog_tables.FORWARD_OUT_OF_SCOPE),
             "activations": set(catalog_tables.ACTIVATION_OUT_OF_SCOPE),
             "collator": set(catalog_tables.COLLATOR_EXERCISED) | set(catalog_tables.COLLATOR_OUT_OF_SCOPE)}
    assert all(stale[k] <= recorded[k] for k in stale), {k: stale[k] - recorded[k] for k in stale}


def test_every_boundary_is_a_change_or_a_release():
    spans = [*catalog_releases.CONFIG.values(), *catalog_releases.ACTIVATIONS.values(),
             *(s for by_class in catalog_releases.FORWARD.values() for s in by_class.values()),
             *(s for span, fields in catalog_releases.COLLATORS.values() for s in [span, *fields.values()])]
    for span in spans:
        for boundary in span:
            if boundary is not None and boundary not in CHANGES_BY_ID:
                try:
                    Version(boundary)
                except InvalidVersion:
                    pytest.fail(f"{boundary!r} is neither a drift change id nor a release")
        if None not in span:
            lo, hi = (Version(CHANGES_BY_ID[b].since if b in CHANGES_BY_ID else b) for b in span)
            assert lo < hi, span


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
