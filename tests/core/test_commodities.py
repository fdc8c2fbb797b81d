"""Commodity values as METHOD.md reads them (Data model), one rule per test; the choices METHOD.md
leaves open are the ones core/API.md documents."""
import math

import pytest
import shapely

from mine_clusters.core import cluster_mines, parse_commodities, prepare_features


@pytest.mark.parametrize("value", [None, "", "   ", "\t", "NA", " NA "])
def test_empty_null_na_and_blank_values_are_unknown(value):
    assert parse_commodities(value) == ()


@pytest.mark.parametrize("value", ["na", "Na", float("nan")])
def test_na_in_any_case_and_a_numeric_nan_are_unknown_too(value):
    # METHOD.md is silent: API.md documents NA in any case and a float NaN (a missing number) as NULL.
    assert parse_commodities(value) == ()


@pytest.mark.parametrize("value", ["None", "null", "NULL", "n/a", "N/A", "nan", "NaN", "-"])
def test_other_words_are_names_kept_as_they_are(value):
    # Names not in the table are kept, never silently dropped (METHOD.md).
    assert parse_commodities(value) == (value,)
    assert parse_commodities(f" Gold , {value} ") == tuple(sorted(["Gold", value], key=str.casefold))


def test_lists_are_comma_lists():
    assert parse_commodities("Lead,Zinc") == ("Lead", "Zinc")
    assert parse_commodities(" Lead ,  Zinc ") == ("Lead", "Zinc")
    assert parse_commodities("Lead;Zinc") == ("Lead;Zinc",)            # ';' does not separate
    assert parse_commodities("Copper/Gold") == ("Copper/Gold",)


def test_empty_and_na_items_of_a_list_are_skipped():
    assert parse_commodities("Gold,,NA, ,na") == ("Gold",)
    assert parse_commodities(",") == ()


def test_names_are_trimmed_and_case_variants_are_one_commodity():
    assert parse_commodities("  Iron ore ") == ("Iron ore",)
    assert parse_commodities("gold,GOLD,Gold") == ("GOLD",)           # the spelling sorting first


def test_the_harmonisation_table_maps_drops_and_splits():
    table = {"cu": "Copper", "steel": "", "galena": "Lead, Zinc"}
    assert parse_commodities(" CU ", table) == ("Copper",)              # keys trimmed, case-folded
    assert parse_commodities("Steel,Gold", table) == ("Gold",)          # mapped to "": not a commodity
    assert parse_commodities("galena", table) == ("Lead", "Zinc")       # a value may be a comma list
    assert parse_commodities("unobtainium", table) == ("unobtainium",)  # not in the table: kept


def test_unknown_and_word_values_in_a_cluster():
    """A point whose primary is "NA" leaves its polygon unassigned; one whose primary is "null"
    (a name) assigns it, as does "Lead;Zinc" (one name)."""
    d = math.degrees(500.0 / 6371008.8)
    polys = [shapely.box(10 * k, 0, 10 * k + 0.001, 0.001) for k in range(3)]
    pts = [shapely.Point(10 * k + d, 0) for k in range(3)]
    f = prepare_features(polys, [1, 2, 3], [1.0] * 3, pts, [1, 2, 3], ["NA", "null", "Lead;Zinc"])
    r = cluster_mines(f, h_limit_m=1000.0, threshold_step_m=1000.0)
    assert r.polygons.status == ["unassigned", "assigned", "assigned"]
    assert r.polygons.primary_commodities == [None, "null", "Lead;Zinc"]
