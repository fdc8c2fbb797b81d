"""Core of the harmonise algorithms: polygon merge and point harmonisation (no QGIS).

Real sources are read here with the standard library only (json, csv, sqlite3, xml), so the
expected values come from the files, never from the code under test.
"""
import collections
import csv
import json
import os
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape

from harmonise_checks import dense_area, great_circle_area, lonlat_box_area, union_area
from mine_clusters.core.errors import Cancelled, InputError
from mine_clusters.core.harmonise import (
    DEFAULT_TABLE_PATH, DROPPED_FIELDS, POINT_FIELDS, POLYGON_FIELDS, CommodityHarmoniser,
    PointSource, PolygonSource, dropped_rows, harmonise_points, merge_polygons,
    parse_harmonisation_table, read_harmonisation_table)
from mine_clusters.core.geometry import fix_antimeridian

DATA = Path(os.environ.get("MINE_CLUSTERS_SHARED_DATA",
                           Path(__file__).resolve().parents[3] / "shared" / "data"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared real data not available")

R_TABLE = DATA / "r-impl-harmonisation-tables" / "harmonisation_metals_coal.csv"


# --------------------------------------------------------------------------- readers

def read_geojson(path, id_key):
    feats = json.loads(Path(path).read_text(encoding="utf-8"))["features"]
    geoms = [shape(f["geometry"]) if f.get("geometry") else None for f in feats]
    ids = [f["properties"].get(id_key) for f in feats]
    return geoms, ids, [f["properties"] for f in feats]


def read_gpkg(path, table, columns=()):
    """(geometries, fids, rows) from a GeoPackage table: the GPKG blob header is skipped."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    cols = "".join(f', "{c}"' for c in columns)
    geoms, fids, rows = [], [], []
    for rec in con.execute(f'SELECT fid, geom{cols} FROM "{table}" ORDER BY fid'):
        blob = rec[1]
        if blob is None:
            geoms.append(None)
        else:
            envelope = (blob[3] >> 1) & 7
            offset = 8 + {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[envelope]
            geoms.append(shapely.from_wkb(bytes(blob[offset:])))
        fids.append(rec[0])
        rows.append(dict(zip(columns, rec[2:])))
    con.close()
    return geoms, fids, rows


def r_table():
    """The default table, read independently: the R implementation's table (the shared data's
    copy) with the plugin's documented review applied (core/data/README.md)."""
    with open(R_TABLE, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    table = {}
    for r in rows:
        table.setdefault(r["material"].strip().casefold(), r["material_harmonized"])
    review = Path(DEFAULT_TABLE_PATH).parent / "commodity_harmonisation_review.csv"
    with open(review, encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            table[" ".join(r["material"].strip().casefold().split())] = r["material_harmonized"]
    return table


def check_traceability(result, sources):
    """Every input id is in exactly one output id list or in the dropped report."""
    seen = collections.Counter()
    for members in result.members:
        seen.update(members)
    for s, i, _ in result.dropped:
        seen[(s, i)] += 1
    expected = collections.Counter((s.name, i) for s in sources for i in s.ids)
    assert seen == expected


def check_disjoint(result):
    geoms = np.asarray(result.geometries, dtype=object)
    tree = shapely.STRtree(geoms)
    pairs = tree.query(geoms, predicate="intersects")
    assert np.all(pairs[0] == pairs[1]), "two merged polygons still touch or overlap"
    # nor across the antimeridian: the parts at +180 moved to -180 meet no other polygon
    shifted = shapely.transform(geoms, lambda c: c - np.array([360.0, 0.0]))
    pairs = tree.query(shifted, predicate="intersects")
    assert np.all(pairs[0] == pairs[1]), "two merged polygons touch across the antimeridian"


# --------------------------------------------------------------------------- polygons

def sq(x0, y0, size=0.01):
    return box(x0, y0, x0 + size, y0 + size)


def test_schemas():
    assert [n for n, _ in DROPPED_FIELDS] == ["source", "source_id", "reason"]
    assert [n for n, _ in POINT_FIELDS] == ["point_id", "source", "source_id",
                                            "primary_commodity", "commodities"]
    assert [n for n, _ in POLYGON_FIELDS] == ["polygon_id", "sources", "n_inputs", "input_ids",
                                              "area_m2"]


def test_sources_on_hand_made_overlaps():
    a = PolygonSource("Maus", [sq(10, 0), sq(20, 0)], [1, 2])          # a1 overlaps b1; a2 alone
    b = PolygonSource("Tang", [sq(10.005, 0), sq(30, 0), sq(30.005, 0.005)], [1, 2, 3])
    c = PolygonSource("OSM", [sq(10.015, 0), sq(40, 0)], [7, 8])     # c7 touches b1 (shared edge)
    result = merge_polygons([a, b, c])
    by_members = {frozenset(m): (s, n) for m, s, n in
                  zip(result.members, result.sources, result.n_inputs)}
    assert by_members == {
        frozenset({("Maus", 1), ("Tang", 1), ("OSM", 7)}): ("Maus/Tang/OSM", 3),
        frozenset({("Maus", 2)}): ("Maus", 1),
        frozenset({("Tang", 2), ("Tang", 3)}): ("Tang", 2),       # overlap within one source
        frozenset({("OSM", 8)}): ("OSM", 1),
    }
    assert list(result.polygon_id) == [1, 2, 3, 4]
    assert result.sources[0] == "Maus/Tang/OSM"                  # ordered by first member
    assert result.input_ids[0] == "Maus:1;Tang:1;OSM:7"
    # the merged area is the area of the union: 0.025 x 0.01 degrees for the chain
    assert result.area_m2[0] == pytest.approx(lonlat_box_area(10, 0, 10.025, 0.01), rel=1e-7)
    check_disjoint(result)


def test_sources_follow_input_order():
    a = PolygonSource("A", [sq(0, 0)], [1])
    b = PolygonSource("B", [sq(0.005, 0)], [1])
    assert merge_polygons([b, a]).sources == ["B/A"]
    assert merge_polygons([a, b]).sources == ["A/B"]


def test_corner_touch_merges_into_a_multipolygon():
    result = merge_polygons([PolygonSource("S", [sq(0, 0), sq(0.01, 0.01)], [1, 2])])
    assert len(result.geometries) == 1
    assert result.geometries[0].geom_type == "MultiPolygon"
    assert len(result.geometries[0].geoms) == 2
    assert result.n_inputs[0] == 2


def test_bad_geometries_repaired_or_dropped():
    bowtie = Polygon([(0, 0), (0.01, 0.01), (0.01, 0), (0, 0.01)])
    line_like = Polygon([(1, 1), (1.01, 1.01), (1.02, 1.02)])
    geoms = [bowtie, None, Polygon(), Point(5, 5), line_like, sq(3, 3)]
    result = merge_polygons([PolygonSource("S", geoms, [1, 2, 3, 4, 5, 6])])
    assert result.repaired == [("S", 1)]
    reasons = {i: r for _, i, r in result.dropped}
    assert set(reasons) == {2, 3, 4, 5}
    assert reasons[2] == reasons[3] == "empty or null geometry"
    assert "Point" in reasons[4]
    assert "no area" in reasons[5]
    assert result.n_in == 6
    assert sorted(m for ms in result.members for m in ms) == [("S", 1), ("S", 6)]
    # the repaired bow tie is two triangles of a quarter square each
    assert result.area_m2[0] == pytest.approx(lonlat_box_area(0, 0, 0.01, 0.01) / 2, rel=1e-6)
    assert "Invalid geometries repaired: 1." in result.summary_lines()


def test_duplicate_source_names_are_an_input_error():
    with pytest.raises(InputError, match="both named 'A'"):
        merge_polygons([PolygonSource("A", [sq(0, 0)], [1]), PolygonSource("A", [sq(1, 1)], [1])])


@pytest.mark.parametrize("name", ["", "Maus/Tang", "a;b", "GEM:2022"])
def test_source_names_must_be_usable(name):
    """':' joins source and id in input_ids ("Maus:12"): a name holding it is refused too."""
    with pytest.raises(InputError, match=r"^The polygon source name '.*' is empty or holds one "
                                         r"of '/', ';' and ':'.*choose another name\.$"):
        merge_polygons([PolygonSource(name, [sq(0, 0)], [1])])


def test_input_ids_split_back_into_source_and_id():
    """Ids may hold ':' (only source names may not): the first ':' separates them."""
    result = merge_polygons([PolygonSource("OSM", [sq(0, 0), sq(0.005, 0)],
                                           ["way:12", "relation:7"])])
    assert [tuple(t.split(":", 1)) for t in result.input_ids[0].split(";")] == [
        ("OSM", "way:12"), ("OSM", "relation:7")]


def test_core_module_does_not_import_qgis():
    import subprocess
    import sys

    code = ("import sys, mine_clusters.core.harmonise; "
            "print([m for m in sys.modules if m.split('.')[0] in ('qgis', 'PyQt5')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cancel_and_progress():
    src = PolygonSource("S", [sq(i * 0.1, 0) for i in range(50)], list(range(50)))
    with pytest.raises(Cancelled):
        merge_polygons([src], should_stop=lambda: True)
    seen = []
    merge_polygons([src], progress=seen.append)
    assert seen[-1] == 1.0 and all(0 <= v <= 1 for v in seen)
    assert seen == sorted(seen)


def test_empty_input():
    result = merge_polygons([PolygonSource("S", [], [])])
    assert result.geometries == [] and result.area_m2.size == 0


# ---- antimeridian

FIJI = 0.1  # degrees; a 0.2 x 0.1 degree polygon across 180 degrees near Fiji (-17 S)


def test_antimeridian_polygon_written_with_a_jump_stays_small():
    # as a transform from a projected CRS gives it: vertices jump from 179.9 to -179.9
    jumping = Polygon([(179.9, -17.0), (-179.9, -17.0), (-179.9, -16.9), (179.9, -16.9)])
    result = merge_polygons([PolygonSource("S", [jumping], [1])])
    geom = result.geometries[0]
    minx, miny, maxx, maxy = geom.bounds
    assert minx >= -180 and maxx <= 180
    assert len(geom.geoms) == 2                          # split at the antimeridian
    expected = lonlat_box_area(179.9, -17.0, 180.1, -16.9)   # the same box drawn continuously
    assert result.area_m2[0] == pytest.approx(expected, rel=1e-6)
    assert result.antimeridian == [("S", 1)]


def test_antimeridian_polygon_beyond_180_and_neighbours_merge():
    beyond = box(179.9, -17.0, 180.1, -16.9)            # longitudes past 180
    west = box(-179.9, -17.0, -179.8, -16.9)            # touches its part east of the line
    far = box(179.0, -17.0, 179.05, -16.9)
    result = merge_polygons([PolygonSource("A", [beyond], ["a"]),
                             PolygonSource("B", [west, far], ["w", "f"])])
    assert result.sources == ["A/B", "B"]
    expected = lonlat_box_area(179.9, -17.0, 180.2, -16.9)
    assert result.area_m2[0] == pytest.approx(expected, rel=1e-6)
    check_disjoint(result)


def test_polygon_split_at_the_antimeridian_is_left_alone():
    split = MultiPolygon([box(179.9, -17.0, 180.0, -16.9), box(-180.0, -17.0, -179.9, -16.9)])
    fixed, changed = fix_antimeridian(np.array([split], dtype=object))
    assert not changed[0]
    result = merge_polygons([PolygonSource("S", [split], [1])])
    assert result.area_m2[0] == pytest.approx(lonlat_box_area(179.9, -17.0, 180.1, -16.9),
                                              rel=1e-6)


def sides(geom):
    """(parts east of 179, parts west of -179) of a merged polygon."""
    parts = list(shapely.get_parts(geom))
    return ([p for p in parts if p.bounds[0] >= 179.0], [p for p in parts if p.bounds[2] <= -179.0])


def test_polygons_touching_at_the_antimeridian_merge():
    """Regression: X ends at +180, Y starts at -180 on the same stretch of the line; they used
    to stay two polygons."""
    east = box(179.8, -17.0, 180.0, -16.9)
    west = box(-180.0, -17.0, -179.8, -16.9)
    result = merge_polygons([PolygonSource("X", [east], [1]), PolygonSource("Y", [west], [1])])
    assert result.sources == ["X/Y"] and list(result.n_inputs) == [2]
    assert result.input_ids == ["X:1;Y:1"]
    geom = result.geometries[0]
    assert geom.geom_type == "MultiPolygon"
    e, w = sides(geom)
    assert len(e) == 1 and len(w) == 1 and len(geom.geoms) == 2
    assert e[0].equals(east) and w[0].equals(west)
    assert result.area_m2[0] == pytest.approx(lonlat_box_area(179.8, -17.0, 180.2, -16.9),
                                              rel=1e-6)
    check_disjoint(result)


def test_polygons_touching_the_antimeridian_within_the_tolerance_merge():
    """A reprojected edge on the line is off by floating-point noise: within 1e-9 degrees
    it touches, as everywhere else; 1e-6 degrees (0.1 m) away it does not."""
    east = box(179.8, -17.0, 180.0 - 5e-10, -16.9)
    west = box(-180.0, -17.0, -179.8, -16.9)
    assert merge_polygons([PolygonSource("X", [east], [1]),
                           PolygonSource("Y", [west], [1])]).sources == ["X/Y"]
    apart = box(179.8, -17.0, 180.0 - 1e-6, -16.9)
    assert merge_polygons([PolygonSource("X", [apart], [1]),
                           PolygonSource("Y", [west], [1])]).sources == ["X", "Y"]


def test_polygons_overlapping_across_the_antimeridian_merge():
    """X crosses the line written with a jump (as read from a projected CRS), Y lies past it
    in 180..360 longitudes: both end on both sides and overlap on [180, 180.1]."""
    x = Polygon([(179.8, -17.0), (-179.9, -17.0), (-179.9, -16.9), (179.8, -16.9)])
    y = box(180.0, -17.0, 180.2, -16.9)
    result = merge_polygons([PolygonSource("X", [x], [1]), PolygonSource("Y", [y], [2])])
    assert result.sources == ["X/Y"] and list(result.n_inputs) == [2]
    e, w = sides(result.geometries[0])
    assert len(e) == 1 and len(w) == 1
    assert e[0].equals(box(179.8, -17.0, 180.0, -16.9))
    assert w[0].equals(box(-180.0, -17.0, -179.8, -16.9))
    assert result.area_m2[0] == pytest.approx(lonlat_box_area(179.8, -17.0, 180.2, -16.9),
                                              rel=1e-6)
    check_disjoint(result)


def test_split_polygon_chains_across_the_antimeridian():
    """P is already split at the line (a MultiPolygon); Q touches P's eastern part; R touches
    only Q, across the line (R lies above P's western part). One polygon of the three."""
    p = MultiPolygon([box(179.9, -17.0, 180.0, -16.9), box(-180.0, -17.0, -179.9, -16.9)])
    q = box(179.95, -16.9, 180.0, -16.8)
    r = box(-180.0, -16.85, -179.99, -16.8)
    assert not r.intersects(p) and not r.intersects(q)           # not in lon/lat: only at ±180
    result = merge_polygons([PolygonSource("A", [p], ["p"]), PolygonSource("B", [q], ["q"]),
                             PolygonSource("C", [r], ["r"])])
    assert result.sources == ["A/B/C"] and result.input_ids == ["A:p;B:q;C:r"]
    expected = (lonlat_box_area(179.9, -17.0, 180.1, -16.9)
                + lonlat_box_area(179.95, -16.9, 180.0, -16.8)
                + lonlat_box_area(180.0, -16.85, 180.01, -16.8))
    assert result.area_m2[0] == pytest.approx(expected, rel=1e-6)
    check_disjoint(result)


def test_polygons_on_both_sides_of_the_antimeridian_that_do_not_meet_stay_apart():
    east = box(179.8, -17.0, 180.0, -16.9)
    north_west = box(-180.0, -16.8, -179.8, -16.7)        # on the line, 0.1 degrees north
    far_west = box(-179.5, -17.0, -179.3, -16.9)          # same latitudes, off the line
    result = merge_polygons([PolygonSource("X", [east], [1]),
                             PolygonSource("Y", [north_west, far_west], [1, 2])])
    assert result.sources == ["X", "Y", "Y"] and list(result.n_inputs) == [1, 1, 1]


# ---- the edge model of area_m2

def test_area_edges_are_straight_in_lonlat():
    """A lease-like triangle with a long east-west edge at 43° N: area_m2 is its area with
    edges straight in lon/lat (pyproj on short pieces) to 1e-7; with great-circle edges between
    its three vertices (pyproj, QGIS's ellipsoidal measure) it is 9e-4 smaller
    (core.geodesy.AREA_EDGE_MODEL)."""
    tri = Polygon([(10.0, 43.0), (10.26, 43.0), (10.13, 43.06)])
    result = merge_polygons([PolygonSource("GEM", [tri], ["M1"])])
    straight = dense_area(tri)
    assert result.area_m2[0] == pytest.approx(straight, rel=1e-7)
    assert (great_circle_area(tri) - straight) / straight == pytest.approx(-9.0e-4, abs=0.5e-4)


def test_area_of_a_small_triangle_near_the_antimeridian_and_of_holes():
    """Edge model at every size: a 100 m triangle at 45° N (great-circle edges would give
    6e-6 more), a box with a hole at 60° N, a box split at +/-180."""
    tri = Polygon([(-180.0, 45.0), (-179.999, 45.0), (-180.0, 45.001)])
    holed = Polygon(box(0, 60, 1, 61).exterior.coords, [box(0.2, 60.2, 0.4, 60.4).exterior.coords])
    split = MultiPolygon([box(179.9, -17.0, 180.0, -16.9), box(-180.0, -17.0, -179.9, -16.9)])
    result = merge_polygons([PolygonSource("S", [tri, holed, split], [1, 2, 3])])
    area = dict(zip([m[0][1] for m in result.members], result.area_m2))
    assert area[1] == pytest.approx(dense_area(tri), rel=1e-7)
    assert area[2] == pytest.approx(lonlat_box_area(0, 60, 1, 61)
                                    - lonlat_box_area(0.2, 60.2, 0.4, 60.4), rel=1e-9)
    assert area[3] == pytest.approx(lonlat_box_area(179.9, -17.0, 180.1, -16.9), rel=1e-9)


def test_merged_area_does_not_depend_on_the_vertices_the_union_adds():
    """P's top edge and Q's bottom edge lie on one parallel; the union replaces them by a part
    of P's edge (a new vertex at 179.95). With straight lon/lat edges the merged area is the
    sum of the two (with great-circle edges the merged polygon measures 2e-5 more than its
    two inputs did)."""
    p = box(179.9, -17.0, 180.0, -16.9)
    q = box(179.95, -16.9, 180.0, -16.8)
    result = merge_polygons([PolygonSource("A", [p, q], [1, 2])])
    assert len(result.geometries) == 1
    expected = lonlat_box_area(179.9, -17.0, 180.0, -16.9) + lonlat_box_area(179.95, -16.9,
                                                                           180.0, -16.8)
    assert result.area_m2[0] == pytest.approx(expected, rel=1e-9)
    gc_inputs = great_circle_area(p) + great_circle_area(q)
    assert (great_circle_area(result.geometries[0]) - gc_inputs) / gc_inputs == pytest.approx(
        2.0e-5, abs=2e-6)


def test_the_independent_measures_agree_with_each_other():
    """The test's own measures, checked against each other: pyproj on short pieces against the
    exact box area, and against pyproj's great-circle area where pieces are already short."""
    assert dense_area(box(3, 50, 4, 51)) == pytest.approx(lonlat_box_area(3, 50, 4, 51),
                                                          rel=1e-9)
    tiny = Polygon([(10.0, 43.0), (10.0001, 43.0), (10.00005, 43.0001)])
    assert dense_area(tiny) == pytest.approx(great_circle_area(tiny), rel=1e-6)


# ---- real polygon sources

REAL_POLYGONS = {
    "maus_india": ("maus2020-v1-india-brazil/indian_polygon_with_grId.geojson", "fid"),
    "maus_brazil": ("maus2020-v1-india-brazil/brazil_polygon_with_grId.geojson", "fid"),
    "gem_boundaries": ("gem-coal-mine-boundaries-v1.0.2/coal-mine-boundaries-methane.geojson",
                       "id"),
}
SEPIN = {
    "sepin1000": "sepin2025-combined-polygons-demo/commit-633645897-1000polygons/"
                 "mining_polygons_combined_demo.gpkg",
    "sepin100": "sepin2025-combined-polygons-demo/commit-96ad6dfe-100polygons/"
                "mining_polygons_combined_demo.gpkg",
}


def real_polygon_source(name):
    if name in REAL_POLYGONS:
        path, key = REAL_POLYGONS[name]
        geoms, ids, _ = read_geojson(DATA / path, key)
    else:
        geoms, ids, _ = read_gpkg(DATA / SEPIN[name], "mining_polygons_combined_demo")
    return PolygonSource(name, geoms, ids)


@needs_data
@pytest.mark.parametrize("name", sorted(REAL_POLYGONS) + sorted(SEPIN))
def test_each_real_polygon_source_conserves_area(name):
    src = real_polygon_source(name)
    result = merge_polygons([src])
    check_traceability(result, [src])
    check_disjoint(result)
    assert result.area_m2.sum() == pytest.approx(union_area(src.geometries), rel=1e-6)
    assert set(result.sources) == {name}


@needs_data
def test_gem_boundaries_keep_the_333_polygons_and_drop_the_rest():
    src = real_polygon_source("gem_boundaries")
    props = read_geojson(DATA / REAL_POLYGONS["gem_boundaries"][0], "id")[2]
    n_boundaries = sum(p["mine feature category"] == "mine boundary" for p in props)
    result = merge_polygons([src])
    assert int(result.n_inputs.sum()) == n_boundaries == 333
    assert len(result.dropped) == len(props) - 333
    assert all(r.startswith("not a polygon") for _, _, r in result.dropped)
    # each polygon's area with straight lon/lat edges, to 1e-6 (great-circle edges: up to 9e-4)
    for geom, area in zip(result.geometries, result.area_m2):
        assert area == pytest.approx(dense_area(geom), rel=1e-6)


@needs_data
def test_maus_area_agrees_with_its_area_column():
    src = real_polygon_source("maus_india")
    props = read_geojson(DATA / REAL_POLYGONS["maus_india"][0], "fid")[2]
    km2 = sum(p["AREA"] for p in props)                    # ellipsoidal km², from the file
    result = merge_polygons([src])
    # sphere against ellipsoid, and the file's own overlaps: well within 0.5 %
    assert result.area_m2.sum() / 1e6 == pytest.approx(km2, rel=5e-3)


@needs_data
def test_all_real_polygon_sources_together():
    sources = [real_polygon_source(n) for n in ("maus_india", "maus_brazil", "gem_boundaries",
                                                "sepin1000", "sepin100")]
    result = merge_polygons(sources)
    check_traceability(result, sources)
    check_disjoint(result)
    everything = [g for s in sources for g in s.geometries]
    assert result.area_m2.sum() == pytest.approx(union_area(everything), rel=1e-6)
    # Maus v1 India and GEM coal lease boundaries overlap in India's coal fields
    assert "maus_india/gem_boundaries" in result.sources
    # each combination's polygons really touch a polygon of each source named
    trees = {s.name: shapely.STRtree(np.asarray(
        [g for g in s.geometries if g is not None and not g.is_empty], dtype=object))
        for s in sources}
    for geom, names in zip(result.geometries, result.sources):
        for name in names.split("/"):
            assert len(trees[name].query(geom, predicate="intersects")) > 0
    again = merge_polygons(sources)
    assert again.input_ids == result.input_ids
    assert np.array_equal(again.area_m2, result.area_m2)


# --------------------------------------------------------------------------- commodities

def test_default_table_is_the_reference_table_reviewed():
    assert Path(DEFAULT_TABLE_PATH).is_file()
    table = read_harmonisation_table()
    if R_TABLE.is_file():
        assert table == {" ".join(k.split()): v.strip() for k, v in r_table().items()}


@needs_data
def test_icmm_names_through_the_table():
    h = CommodityHarmoniser(read_harmonisation_table())
    ref = r_table()
    # ICMM's spellings against the reference table's rows "Iron ore", "Thermal coal", ...
    assert h.names("iron ore ") == [ref["iron ore"]] == ["Iron"]
    assert h.names("thermal coal") == [ref["thermal coal"]] == ["Coal"]
    assert h.names("metallurgical coal") == [ref["metallurgical coal"]] == ["Coal"]
    assert h.names("steel") == [] and ref["steel"] == ""         # mapped to empty: not a commodity
    assert h.names("Zinc-Lead") == ["Zinc", "Lead"]
    assert h.names("Aggregates") == []                          # "Not relevant"
    assert h.names("lead; Gold ,NA,  ") == ["Lead", "Gold"]
    assert h.names("bariumite, Bariumite") == ["bariumite"]     # unknown: kept, case-folded once
    assert h.unknown_names() == {"Bariumite": 2}
    assert h.names("barium") == []                              # ICMM's barite: "Not relevant"
    assert h.not_commodity_names() == {"steel": 1, "Aggregates": 1, "barium": 1}
    assert h.names("Chromite") == ["Chromium"] and h.renamed_names()["Chromite -> Chromium"] == 1


def test_non_commodities_are_counted_case_folded():
    """Regression: the log listed "steel (83)" and "Steel (1)" apart, while unknown names were
    case-folded; now both are one name each (spelled as the spelling sorting first)."""
    src = PointSource("inv", [Point(0, 0), Point(1, 1), Point(2, 2)], [1, 2, 3],
                      ["Gold", "Gold", "Gold"], [["steel", "Steel", " STEEL; processing"]])
    result = harmonise_points([src], table={"gold": "Gold", "steel": ""})
    assert result.not_commodity == {"STEEL": 3, "processing": 1}
    assert ("Not commodities, removed from the lists: STEEL (3), processing (1)."
            in result.summary_lines())


def test_non_commodity_rule_is_configurable():
    table = {"aggregates": "Not relevant", "gold": "Gold"}
    assert CommodityHarmoniser(table).names("Aggregates, Processing, gold") == ["Gold"]
    keep = CommodityHarmoniser(table, non_commodities=())
    assert keep.names("Aggregates, Processing, gold") == ["Not relevant", "Processing", "Gold"]
    only = CommodityHarmoniser(table, non_commodities=["other mine"])
    assert only.names("Other Mine, gold") == ["Gold"]


def test_user_table_formats():
    t1 = parse_harmonisation_table("raw,harmonised\nCu,Copper\n cu ,Other\nFe,\n")
    assert t1 == {"cu": "Copper", "fe": ""}
    t2 = parse_harmonisation_table("Au;x,Gold\n")   # no header: first two columns
    assert t2 == {"au;x": "Gold"}
    with pytest.raises(InputError, match="is empty"):
        parse_harmonisation_table("\n\n")
    with pytest.raises(InputError, match="cannot be read"):
        read_harmonisation_table("/nonexistent/table.csv")


def test_points_hand_made():
    geoms = [Point(1, 2), shapely.MultiPoint([(3, 4), (5, 6)]), None, Point(7, 8), Point(0, 0)]
    src = PointSource("inv", geoms, ["a", "b", "c", "d", "e"],
                      primary=["Gold", "Zinc-Lead", "Gold", "Processing", None],
                      others=[["Copper; gold", None, None, "Copper", "NA"],
                              ["Silver", "tin", None, None, "Unobtainium"]])
    result = harmonise_points([src], table={"zinc-lead": "Zinc,Lead", "gold": "Gold"})
    rows = list(result.rows())
    assert [r["source_id"] for r in rows] == ["a", "b", "b", "e"]
    assert [r["point_id"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["primary_commodity"] == "Gold"
    assert rows[0]["commodities"] == "Copper,Gold,Silver"
    assert rows[1]["primary_commodity"] == rows[2]["primary_commodity"] == "Lead,Zinc"
    assert rows[1]["commodities"] == "Lead,tin,Zinc"
    assert rows[3]["primary_commodity"] is None and rows[3]["commodities"] == "Unobtainium"
    assert [p.coords[0] for p in result.points] == [(1, 2), (3, 4), (5, 6), (0, 0)]
    assert sorted(r for _, _, r in result.dropped) == ["empty or null geometry",
                                                       "primary commodity Processing"]
    assert result.n_parts_exploded == 1 and result.no_primary == 1


# ---- real point sources

@needs_data
def test_icmm_points():
    geoms, ids, props = read_geojson(DATA / "icmm-global-mining-dataset-2025/mines.geojson", "id")
    src = PointSource("ICMM", geoms, ids, [p.get("primaryCommodity") for p in props],
                      [[p.get("secondaryCommodity") for p in props],
                       [p.get("otherCommodities") for p in props]])
    result = harmonise_points([src])
    assert len(result.points) == len(props) == 8508
    assert result.dropped == []
    ref = r_table()
    by_id = {r["source_id"]: r for r in result.rows()}
    n_checked = 0
    for p in props:
        raw = p["primaryCommodity"]
        key = raw.strip().casefold()
        if key in ref and ref[key] not in ("", "Not relevant"):
            assert by_id[p["id"]]["primary_commodity"] == ref[key]
            n_checked += 1
    assert n_checked > 7000
    iron = [p["id"] for p in props if p["primaryCommodity"] == "iron ore "]
    assert iron and all(by_id[i]["primary_commodity"] == "Iron" for i in iron)
    # every ICMM commodity name appears in the output or in one of the reports; the table's
    # renamings are reported too
    assert "barium" in {k.casefold() for k in result.not_commodity}   # barite: "Not relevant"
    assert any(k.casefold() == "chromite -> chromium" for k in result.renamed), result.renamed
    assert "Renamed by the harmonisation table" in " ".join(result.summary_lines())


@needs_data
def test_jasansky_points_empty_geometries_and_multipoints():
    path = DATA / "jasansky2022-facilities-prerelease/facilities.gpkg"
    geoms, _, rows = read_gpkg(path, "facilities",
                               ("facility_id", "primary_commodity", "commodities_products"))
    src = PointSource("Jasansky", geoms, [r["facility_id"] for r in rows],
                      [r["primary_commodity"] for r in rows],
                      [[r["commodities_products"] for r in rows]])
    result = harmonise_points([src])
    empty = sum(g is None or g.is_empty for g in geoms)
    assert empty == 518
    processing = sum(1 for g, r in zip(geoms, rows)
                     if not (g is None or g.is_empty) and r["primary_commodity"] == "Processing")
    reasons = collections.Counter(r for _, _, r in result.dropped)
    assert reasons == {"empty or null geometry": 518, "primary commodity Processing": processing}
    expected_parts = sum(len(shapely.get_parts(g)) for g, r in zip(geoms, rows)
                         if not (g is None or g.is_empty)
                         and r["primary_commodity"] != "Processing")
    assert len(result.points) == expected_parts
    assert all(p.geom_type == "Point" for p in result.points)
    # each part keeps its facility id
    parts_by_id = collections.Counter(result.source_id)
    for g, r in zip(geoms, rows):
        if g is not None and not g.is_empty and r["primary_commodity"] != "Processing":
            assert parts_by_id[r["facility_id"]] >= len(shapely.get_parts(g))
    coal = [r for r in result.rows() if r["source_id"] == "COM00003.00"]
    assert coal and coal[0]["primary_commodity"] == "Coal"
    # the dropped rows name every feature that is not in the output: together, every facility
    dropped = list(dropped_rows(result.dropped))
    assert all(list(d) == [n for n, _ in DROPPED_FIELDS] for d in dropped)
    dropped_ids = collections.Counter(d["source_id"] for d in dropped)
    assert sum(dropped_ids.values()) == 518 + processing
    # (one facility id, COM00125.01, is in the file twice)
    assert set(collections.Counter(r["facility_id"] for r in rows) - dropped_ids) == set(
        result.source_id)


def tokens(text):
    return [" ".join(t.split()) for t in re.split(r"[,;]", text or "")]


@needs_data
def test_steel_of_icmm_and_jasansky_is_one_non_commodity():
    """ICMM writes "steel", Jasansky "Steel"; the table maps it to nothing: one line entry with
    the count of both files (Jasansky's dropped facilities, without a location or processing
    plants, are not read for commodities)."""
    geoms, ids, props = read_geojson(DATA / "icmm-global-mining-dataset-2025/mines.geojson", "id")
    icmm = PointSource("ICMM", geoms, ids, [p.get("primaryCommodity") for p in props],
                       [[p.get("secondaryCommodity") for p in props],
                        [p.get("otherCommodities") for p in props]])
    jgeoms, _, rows = read_gpkg(DATA / "jasansky2022-facilities-prerelease/facilities.gpkg",
                                "facilities",
                                ("facility_id", "primary_commodity", "commodities_products"))
    jas = PointSource("Jasansky", jgeoms, [r["facility_id"] for r in rows],
                      [r["primary_commodity"] for r in rows],
                      [[r["commodities_products"] for r in rows]])
    result = harmonise_points([icmm, jas])
    n_icmm = sum(t.casefold() == "steel" for p in props
                 for k in ("primaryCommodity", "secondaryCommodity", "otherCommodities")
                 for t in tokens(p.get(k)))
    n_jas = sum(t.casefold() == "steel" for g, r in zip(jgeoms, rows)
                if g is not None and not g.is_empty and r["primary_commodity"] != "Processing"
                for k in ("primary_commodity", "commodities_products") for t in tokens(r[k]))
    assert n_icmm == 83 and n_jas > 0
    assert {k: v for k, v in result.not_commodity.items() if k.casefold() == "steel"} == {
        "Steel": n_icmm + n_jas}
    line = [x for x in result.summary_lines() if x.startswith("Not commodities")][0]
    assert f"Steel ({n_icmm + n_jas})" in line and "steel (" not in line


@needs_data
def test_gem_coal_tracker_csv_latin1_constant_coal():
    path = DATA / "gem-global-coal-mine-tracker-2022-07/Global-Coal-Mine-Tracker-July-2022.csv"
    with open(path, encoding="latin-1", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3672
    geoms = []
    for r in rows:
        try:
            geoms.append(Point(float(r["Longitude"]), float(r["Latitude"])))
        except ValueError:
            geoms.append(None)
    src = PointSource("GEM GCMT", geoms, [r["Mine IDs"] for r in rows], ["Coal"] * len(rows))
    result = harmonise_points([src])
    assert len(result.points) == sum(g is not None for g in geoms)
    assert set(result.primary_commodity) == {"Coal"} == set(result.commodities)


@needs_data
def test_dethier_kml_constant_gold():
    path = DATA / "dethier2023-asgm-sites/ASGM_global_sites_10232022.kml"
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = ET.parse(path).getroot().findall(".//k:Placemark", ns)
    geoms, ids = [], []
    for m in marks:
        x, y = (float(v) for v in m.find(".//k:coordinates", ns).text.strip().split(",")[:2])
        geoms.append(Point(x, y))
        ids.append(m.find("k:name", ns).text)
    src = PointSource("Dethier", geoms, ids, ["gold"] * len(ids))
    result = harmonise_points([src])
    assert len(result.points) == len(marks) == 436
    assert set(result.primary_commodity) == {"Gold"}


@needs_data
def test_several_point_sources_in_one_run():
    geoms, ids, props = read_geojson(DATA / "icmm-global-mining-dataset-2025/mines.geojson", "id")
    icmm = PointSource("ICMM", geoms[:100], ids[:100],
                       [p["primaryCommodity"] for p in props[:100]])
    const = PointSource("extra", [Point(0, 0)], ["x"], ["Thermal coal"])
    result = harmonise_points([icmm, const])
    assert result.source[-1] == "extra" and result.primary_commodity[-1] == "Coal"
    assert result.n_in_by_source == {"ICMM": 100, "extra": 1}
    assert list(result.point_id) == list(range(1, 102))


def test_points_cancel():
    src = PointSource("S", [Point(0, 0)] * 10, list(range(10)), ["Gold"] * 10)
    with pytest.raises(Cancelled):
        harmonise_points([src], table={}, should_stop=lambda: True)


def test_points_columns_must_match():
    with pytest.raises(InputError, match="'S'"):
        harmonise_points([PointSource("S", [Point(0, 0)], [1, 2], ["Gold"])], table={})


def test_review_regressions_processing_beside_a_commodity_and_one_spelling_for_unknown_names():
    """A primary "Gold, Processing" keeps the gold mine; "Unobtainium"/"UNOBTAINIUM" are one name."""
    from shapely.geometry import Point as P

    from mine_clusters.core.harmonise import PointSource, harmonise_points

    src = PointSource("inv", [P(1, 1), P(2, 2), P(3, 3)], [1, 2, 3],
                      ["Gold, Processing", "Unobtainium", "UNOBTAINIUM"])
    res = harmonise_points([src], table={"gold": "Gold"})
    assert res.primary_commodity == ["Gold", "UNOBTAINIUM", "UNOBTAINIUM"]
    assert not res.dropped


def test_primary_processing_in_two_spellings_is_dropped():
    """'Processing;processing' is the one name Processing twice: the point is dropped like a
    plain 'Processing', and 'Processing; Gold' in any case is kept."""
    src = PointSource("inv", [Point(1, 1), Point(2, 2), Point(3, 3), Point(4, 4)],
                      ["a", "b", "c", "d"],
                      ["Processing;processing", " PROCESSING , processing", "processing; Gold",
                       "Gold"])
    res = harmonise_points([src], table={"gold": "Gold"})
    assert res.source_id == ["c", "d"]
    assert [(s, i) for s, i, _ in res.dropped] == [("inv", "a"), ("inv", "b")]
    assert [r for _, _, r in res.dropped] == ["primary commodity Processing",
                                              "primary commodity PROCESSING"]


@pytest.mark.parametrize("wkt, box_", [
    # EPSG:3035 and back: both pole vertices come back at lon -170
    ("POLYGON ((0 89.99, 0.1 89.99, -170 90, -170 90, 0 89.99))", (0, 89.99, 0.1, 90)),
    ("POLYGON ((-170 -90, -170 -90, 10.1 -89.99, 10 -89.99, -170 -90))", (10, -90, 10.1, -89.99)),
    # one vertex on the pole, at any longitude: the edges to it are meridians
    ("POLYGON ((0 89.99, 0.1 89.99, 123 90, 0 89.99))", (0, 89.99, 0.1, 90)),
    ("POLYGON ((179.95 89.99, -179.95 89.99, 40 90, 179.95 89.99))", (179.95, 89.99, 180.05, 90)),
])
def test_a_vertex_on_a_pole_has_no_longitude(wkt, box_):
    """A polygon with a vertex on a pole is the lon/lat box between its other vertices'
    meridians, whatever longitude the pole vertex carries (a reprojection gives it one)."""
    result = merge_polygons([PolygonSource("S", [shapely.from_wkt(wkt)], [1])])
    assert result.area_m2[0] == pytest.approx(lonlat_box_area(*box_), rel=1e-6)
    x0, y0, x1, y1 = result.geometries[0].bounds
    if box_[2] <= 180:
        assert (x0, y0, x1, y1) == pytest.approx(box_, abs=1e-9)
        assert result.antimeridian == []
    else:                                     # a real crossing of 180 next to the pole
        assert (x0, x1) == (-180, 180) and result.antimeridian == [("S", 1)]
