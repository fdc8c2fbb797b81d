"""Fuzz of the footprint summary and the validation: odd clustered polygons give tables that
reconcile with the total mine area, or a one-sentence InputError; the same input gives the same
tables on every run and in any order."""
import math
import re

import numpy as np
import pytest
import shapely
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz_cases import COMMODITY_TEXT, examples, is_one_sentence, polygon
from mine_clusters.core import InputError
from mine_clusters.core.footprint import mine_polygons, regions, summarise
from mine_clusters.core.geodesy import geodesic_area_m2
from mine_clusters.core.validate import set_metrics, validate

KINDS = ["box", "box", "triangle", "hole", "multi", "bowtie", "zero_area", "spike", "repeated",
         "multi_empty_part", "empty", "null"]
STATUS = [None, "", "assigned", "multiple", "unassigned", "Assigned ", "bogus"]
PRIMARY = [t for t in COMMODITY_TEXT if not isinstance(t, float)]
SOURCES = [None, "", "Maus", "Maus/Tang", "NA", " OSM "]
# regions: two countries side by side on the equator, one across the antimeridian, a bow-tie
REGIONS = [shapely.box(-1.0, -1.0, 0.0, 1.0), shapely.box(0.0, -1.0, 1.0, 1.0),
           shapely.box(179.0, 5.0, 180.0, 15.0), shapely.box(-180.0, 5.0, -179.0, 15.0),
           shapely.Polygon([(12, 47), (13, 48), (13, 47), (12, 48)]), None]
REGION_NAMES = ["West", "East", "Fiji", "Fiji", None, "Nothing"]


def _status_of(text):
    from mine_clusters.core import parse_commodities
    n = len(parse_commodities(text))
    return "unassigned" if n == 0 else "assigned" if n == 1 else "multiple"


@st.composite
def clustered(draw, kinds=KINDS):
    """Clustered polygons as the cluster algorithm writes them; one case in four is broken
    (an unknown or contradictory status, a negative area)."""
    broken = draw(st.integers(0, 3)) == 0
    n = draw(st.integers(1, 10))
    geoms = [draw(polygon(kinds))[1] for _ in range(n)]
    fids = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n, unique=True))
    cids = [draw(st.integers(1, 4)) for _ in range(n)]
    by_cluster = {c: draw(st.sampled_from(PRIMARY)) for c in sorted(set(cids))}
    primary = [by_cluster[c] for c in cids]
    if broken and draw(st.booleans()):
        primary = [draw(st.sampled_from(PRIMARY)) for _ in range(n)]
    if broken:
        status = [draw(st.sampled_from(STATUS)) for _ in range(n)]
    else:
        status = draw(st.sampled_from([None, [_status_of(p) for p in primary]]))
        if status is not None:
            status = [draw(st.sampled_from([s, s.upper() + " ", None, ""])) for s in status]
    area_values = st.one_of(st.none(), st.just(math.nan), st.floats(0.0, 1e7))
    if broken:
        area_values = st.one_of(area_values, st.just(-5.0))
    areas = None if draw(st.booleans()) else [draw(area_values) for _ in range(n)]
    if not broken and any(g is None or g.is_empty for g in geoms):
        # a polygon without geometry needs its area (the cluster output always has both)
        areas = [draw(st.floats(0.0, 1e7)) if g is None or g.is_empty
                 else None if areas is None else areas[i] for i, g in enumerate(geoms)]
    sources = None if draw(st.booleans()) else [draw(st.sampled_from(SOURCES)) for _ in range(n)]
    return dict(geoms=geoms, feature_ids=fids, cluster_ids=cids, primary=primary, status=status,
                area_m2=areas, sources=sources)


def repaired_area(g):
    """Spherical area of a geometry as the core's one rule reads it (core/geometry.py: a bow-tie
    counts both of its lobes; vertices on a pole are settled before the repair, so a bow-tie
    through the pole, A -> pole -> B -> pole -> A, encloses nothing)."""
    if g is None or g.is_empty:
        return 0.0
    return float(geodesic_area_m2([g])[0])


def km2(rows, key="area_km2"):
    return sum(r[key] for r in rows) * 1e6


def points_of(case):
    """Clustered points as the cluster algorithm writes them: in clusters 1 and 2 (with their
    polygons' primary commodities, if they have polygons), in no cluster, and alone in a
    points-only cluster 99."""
    prim = {}
    for c, p in zip(case["cluster_ids"], case["primary"]):
        prim.setdefault(c, p)
    ids = [1, 2, None, 99]
    return dict(point_cluster_ids=ids,
                point_primary=[prim.get(c) for c in ids[:3]] + ["Gold"])


def build(case):
    return mine_polygons(**case)


def tables(s):
    grid = None if s.grid is None else (s.grid.rows, s.grid.cells)
    return (s.total_area_m2, s.commodity_rows, s.country_rows, s.biome_rows, s.table2_rows,
            s.table3_rows, grid)


@examples(150)
@given(case=clustered(), allocation=st.sampled_from(["intersection", "centroid"]),
       cell=st.sampled_from([None, 1000.0, 50000.0, 2000000.0]),
       with_regions=st.booleans())
def test_footprint_tables_reconcile_with_the_total_area(case, allocation, cell, with_regions):
    try:
        polys = build(case)
        countries = regions(REGIONS, REGION_NAMES) if with_regions else None
        s = summarise(polys, countries=countries, biomes=None, allocation=allocation,
                      cell_size_m=cell, **points_of(case))
    except InputError as exc:
        event("refused: " + re.sub(r"-?\d+", "N", str(exc))[:60])
        assert is_one_sentence(str(exc)), str(exc)
        return
    event("summarised")
    total = polys.total_area_m2
    # area in: the given areas, else the sphere's
    expected = 0.0
    for g, a in zip(case["geoms"], case["area_m2"] or [None] * len(case["geoms"])):
        if a is None or (isinstance(a, float) and math.isnan(a)):
            expected += repaired_area(g)
        else:
            expected += a
    assert math.isfinite(total)
    if not any(g is not None and not g.is_empty and g.bounds[2] - g.bounds[0] > 180.0
               for g in case["geoms"]):     # (rings across ±180 are cut there first)
        assert total == pytest.approx(expected, rel=1e-6, abs=1e-6)
    tol = dict(rel=1e-9, abs=1e-3)
    assert km2(s.commodity_rows) == pytest.approx(total, **tol)
    assert km2(s.country_rows) == pytest.approx(total, **tol)
    assert km2(s.biome_rows) == pytest.approx(total, **tol)
    assert s.table2_rows[-1]["area_km2"] * 1e6 == pytest.approx(total, **tol)
    assert km2(s.table2_rows[:2]) == pytest.approx(total, **tol)
    assert s.table2_rows[-1]["n_polygons"] == len(case["geoms"])
    # every cluster (of polygons or points) and every point in a cluster
    assert s.table2_rows[-1]["n_clusters"] == len(set(case["cluster_ids"]) | {1, 2, 99})
    assert s.table2_rows[-1]["n_points"] == 3
    if case["sources"] is not None:
        assert km2(s.table3_rows) == pytest.approx(total, **tol)
    if s.grid is not None:
        # the grid holds the mine area of every polygon with a geometry
        placed = sum(a for g, a in zip(polys.geoms, polys.area_m2)
                     if g is not None and not g.is_empty)
        assert km2(s.grid.rows, "mine_area_km2") == pytest.approx(placed, **tol)
    for row in s.commodity_rows + s.country_rows:
        assert all(not isinstance(v, float) or math.isfinite(v) for v in row.values()), row
    again = summarise(build(case), countries=regions(REGIONS, REGION_NAMES) if with_regions
                      else None, allocation=allocation, cell_size_m=cell,
                      **points_of(case))
    assert tables(again) == tables(s)


@examples(60)
@given(case=clustered(kinds=["box", "triangle", "multi", "hole"]), data=st.data())
def test_footprint_tables_do_not_depend_on_polygon_order(case, data):
    case["status"] = None
    case["area_m2"] = None
    perm = data.draw(st.permutations(range(len(case["geoms"]))))
    shuffled = {k: None if v is None else [v[i] for i in perm] for k, v in case.items()}
    reg = regions(REGIONS, REGION_NAMES)
    try:
        a = summarise(build(case), countries=reg, cell_size_m=50000.0)
    except InputError as exc:
        assert is_one_sentence(str(exc)), str(exc)
        with pytest.raises(InputError):
            summarise(build(shuffled), countries=reg, cell_size_m=50000.0)
        return
    b = summarise(build(shuffled), countries=reg, cell_size_m=50000.0)
    for rows_a, rows_b in ((a.commodity_rows, b.commodity_rows),
                           (a.country_rows, b.country_rows), (a.table2_rows, b.table2_rows)):
        assert len(rows_a) == len(rows_b)
        for ra, rb in zip(rows_a, rows_b):
            assert ra.keys() == rb.keys()
            for k in ra:
                if isinstance(ra[k], float):
                    assert ra[k] == pytest.approx(rb[k], rel=1e-9, abs=1e-12), k
                else:
                    assert ra[k] == rb[k], k
    assert [r["cell_id"] for r in a.grid.rows] == [r["cell_id"] for r in b.grid.rows]


commodity_sets = st.sets(st.sampled_from(["Gold", "gold", "Copper", "Coal", "Ærø", "金"]),
                         max_size=4)


@examples(150)
@given(a=commodity_sets, b=commodity_sets)
def test_set_metrics_are_bounded_and_consistent(a, b):
    try:
        m = set_metrics(a, b)
    except InputError as exc:
        assert not a and not b and is_one_sentence(str(exc))
        return
    assert 0.0 <= m.jaccard <= m.dice <= 1.0
    assert m.overlap is None or m.dice <= m.overlap + 1e-12 <= 1.0 + 1e-12
    assert (m.match == "full") == (m.jaccard == 1.0)
    # undefined (None) exactly when a set is empty, like the overlap coefficient
    assert (m.id_overlap is None) == (m.overlap is None) == (not a or not b)
    assert m.id_overlap is None or (m.match == "none") == (m.id_overlap == 0)
    assert set_metrics(b, a) == m if a or b else True


@examples(100)
@given(case=clustered(), refs=st.lists(st.tuples(polygon(KINDS), st.sampled_from(PRIMARY)),
                                       min_size=0, max_size=6),
       around=st.lists(st.tuples(st.integers(0, 9), st.sampled_from([0.0, 1e-4, 0.02]),
                                 st.sampled_from(PRIMARY)), max_size=4),
       include=st.booleans(), data=st.data())
def test_validation_pairs_are_sound_and_order_free(case, refs, around, include, data):
    rg = [g for (_, g), _ in refs]
    rc = [c for _, c in refs]
    for k, d, c in around:       # reference polygons drawn around clustered ones
        g = case["geoms"][k % len(case["geoms"])]
        if g is not None and not g.is_empty:
            rg.append(shapely.envelope(g).buffer(d) if d else g)
            rc.append(c)
    rid = list(range(100, 100 + len(rg)))
    args = (case["geoms"], case["feature_ids"], case["cluster_ids"], case["primary"], rg, rid, rc)
    try:
        res = validate(*args, include_unassigned=include)
        event(f"validated, pairs: {min(res.n_pairs, 3)}")
    except InputError as exc:
        event("refused")
        assert is_one_sentence(str(exc)), str(exc)
        return
    for p in res.pairs:
        i = p["index"]
        g, r = case["geoms"][i], rg[p["reference_id"] - 100]
        assert g is not None and r is not None
        assert shapely.intersects(shapely.make_valid(g), shapely.make_valid(r))
        assert 0.0 <= p["jaccard"] <= 1.0 and p["match"] in ("full", "partial", "none")
        # an unassigned polygon's overlap coefficient and identifier overlap are undefined
        assert (p["id_overlap"] is None) == (p["overlap"] is None) == \
            (p["primary_commodities"] is None)
    counts = res.stat("Count")
    assert counts["full_match"] + counts["partial_match"] + counts["no_match"] == res.n_pairs
    perm = data.draw(st.permutations(range(len(case["geoms"]))))
    shuffled = [[v[i] for i in perm] for v in args[:4]] + list(args[4:])
    again = validate(*shuffled, include_unassigned=include)
    strip = [{k: v for k, v in p.items() if k != "index"} for p in res.pairs]
    assert strip == [{k: v for k, v in p.items() if k != "index"} for p in again.pairs]
    assert again.summary == res.summary
