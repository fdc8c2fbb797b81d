"""One area model for every ``area_m2`` (core/API.md, "Geometry rules"; core.geodesy.AREA_EDGE_MODEL).

1. The same polygon gets bit for bit the same area in harmonise, the clustering and footprint,
   fed directly or down the pipeline (harmonise's output clustered, the cluster output summarised,
   with the GeoPackage writer's MultiPolygons and a WKB round trip in between).
2. The model, edges straight in longitude/latitude on the sphere R = 6,371,008.8 m, against two
   independent oracles: pyproj's geodesic solver on edges cut short (tests/harmonise_checks.py),
   and a spherical-excess sum of the same densified ring written out here (no pyproj, no plugin).
"""
import math
import os

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from harmonise_checks import R_SPHERE, dense_area
from mine_clusters.core import cluster_mines, prepare_features
from mine_clusters.core.footprint import mine_polygons, summarise
from mine_clusters.core.geodesy import geodesic_area_m2
from mine_clusters.core.harmonise import PolygonSource, merge_polygons
from realdata import have_shared, read_geojson, read_gpkg, shared_path

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "resources", "sample", "mine_polygons.gpkg")

#: Long edges and the poles: the shapes where edge models differ most.
ODD = {
    "lease_long_edge": Polygon([(10.0, 43.0), (10.26, 43.0), (10.13, 43.06)]),
    "box_10deg_70N": box(20.0, 65.0, 30.0, 75.0),
    "long_diagonal_60S": Polygon([(-70.0, -60.0), (-60.0, -62.0), (-61.0, -59.0)]),
    "polar_cap_strip": Polygon([(10.0, 89.5), (20.0, 89.5), (20.0, 90.0), (10.0, 90.0)]),
    "pole_vertex_any_lon": Polygon([(0.0, 89.99), (0.1, 89.99), (123.0, 90.0)]),
    "south_pole_from_3035": shapely.from_wkt("POLYGON ((-170 -90, -170 -90, 10.1 -89.99, 10 -89.99, -170 -90))"),
    "across_180": Polygon([(179.9, -17.0), (-179.9, -17.0), (-179.9, -16.9), (179.9, -16.9)]),
    "beyond_180": box(185.0, 10.0, 185.2, 10.1),
    "bow_tie": Polygon([(30.0, 0.0), (30.01, 0.01), (30.01, 0.0), (30.0, 0.01)]),
    "holed": Polygon(box(0, 60, 1, 61).exterior.coords, [box(0.2, 60.2, 0.4, 60.4).exterior.coords]),
    "one_metre": box(9.0, 47.0, 9.0 + 1.3e-5, 47.0 + 9e-6),
}


def real_polygons():
    """Real mine polygons: the demo sample, the GEM coal lease boundaries (long straight edges),
    Maus 2020 India and the 100 polygons of Sepin 2025."""
    out = [g for g, _ in zip(*read_gpkg(SAMPLE, "mine_polygons"))]
    if have_shared():
        out += read_geojson(shared_path("gem-coal-mine-boundaries-v1.0.2", "coal-mine-boundaries-methane.geojson"))[0]
        out += read_geojson(shared_path("maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson"))[0]
        out += read_gpkg(shared_path("sepin2025-combined-polygons-demo", "commit-96ad6dfe-100polygons",
                                     "mining_polygons_combined_demo.gpkg"), "mining_polygons_combined_demo")[0]
    return [g for g in out if g is not None and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon")]


def as_written(geoms):
    """What a GeoPackage layer gives back: every polygon a MultiPolygon, through WKB."""
    return [shapely.from_wkb(shapely.to_wkb(g if g.geom_type == "MultiPolygon" else MultiPolygon([g])))
            for g in geoms]


def cluster_areas(geoms):
    """area_m2 of the clustering's polygon rows, by feature id = position."""
    f = prepare_features(polygons=geoms, polygon_ids=range(len(geoms)))
    res = cluster_mines(f, h_limit_m=2000.0, threshold_step_m=1000.0)
    out = np.empty(len(geoms))
    out[res.polygons.feature_id] = res.polygons.area_m2
    return out, res


def footprint_areas(geoms):
    p = mine_polygons(geoms, range(len(geoms)), range(len(geoms)), ["Coal"] * len(geoms))
    return p.area_m2, p


@pytest.fixture(scope="module")
def polygons():
    return real_polygons() + list(ODD.values())


def test_the_same_polygon_has_the_same_area_in_every_step(polygons):
    """Fed directly: every polygon that harmonise keeps alone (no neighbour to merge with) has
    in its output the area the clustering and footprint give the same input polygon, bit for bit."""
    merged = merge_polygons([PolygonSource("S", polygons, list(range(len(polygons))))])
    alone = {m[0][1]: a for m, a, n in zip(merged.members, merged.area_m2, merged.n_inputs) if n == 1}
    assert len(alone) > 0.4 * len(polygons)      # the sample repeats Maus' India; GEM leases overlap
    assert all(k in alone for k in range(len(polygons) - len(ODD), len(polygons)))   # every odd shape
    cluster, _ = cluster_areas(polygons)
    footprint, _ = footprint_areas(polygons)
    for i, a in alone.items():
        assert cluster[i] == a and footprint[i] == a, i
    np.testing.assert_array_equal(cluster, footprint)          # the merged ones too
    np.testing.assert_array_equal(geodesic_area_m2(polygons), cluster)


def test_the_pipeline_keeps_each_polygons_area(polygons):
    """harmonise -> cluster -> footprint, each step reading the previous one's output as a layer
    gives it back: the area of each polygon is identical across the steps, and sums to the same."""
    merged = merge_polygons([PolygonSource("S", polygons, list(range(len(polygons))))])
    written = as_written(merged.geometries)
    cluster, res = cluster_areas(written)
    np.testing.assert_array_equal(cluster, merged.area_m2)
    assert res.clusters.area_m2.sum() == pytest.approx(res.polygons.area_m2.sum(), rel=1e-12)   # sums: any order
    footprint, p = footprint_areas(as_written(written))
    np.testing.assert_array_equal(footprint, merged.area_m2)
    # and footprint given the cluster's area_m2 (the shipped pipeline) or computing it: the same
    given = mine_polygons(written, range(len(written)), range(len(written)), ["Coal"] * len(written),
                          area_m2=list(cluster))
    np.testing.assert_array_equal(given.area_m2, footprint)
    assert summarise(p, cell_size_m=None).total_area_m2 == pytest.approx(float(merged.area_m2.sum()), rel=1e-12)


def test_the_area_does_not_depend_on_the_other_polygons_of_a_call(polygons):
    """Chunks, order and company do not change a polygon's area (the sums run per polygon)."""
    whole = geodesic_area_m2(polygons)
    rev = geodesic_area_m2(polygons[::-1])[::-1]
    np.testing.assert_array_equal(whole, rev)
    one_by_one = np.array([geodesic_area_m2([g])[0] for g in polygons[-len(ODD):]])
    np.testing.assert_array_equal(whole[-len(ODD):], one_by_one)


# ------------------------------------------------------------------ accuracy against oracles

def _unit(lon, lat):
    lon, lat = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def excess_area(geom, pieces=4000):
    """Independent oracle: each ring's edges cut into ``pieces`` steps along their straight
    lon/lat line, then the signed spherical excesses of the fan of triangles from the ring's
    mean direction summed (Van Oosterom & Strackee's tan(E/2) formula, L'Huilier's in vectors),
    holes subtracted. No pyproj, no plugin code."""
    def ring_area(xy):
        t = np.linspace(0.0, 1.0, pieces, endpoint=False)
        pts = np.concatenate([a + t[:, None] * (b - a) for a, b in zip(xy[:-1], xy[1:])])
        v = _unit(pts[:, 0], pts[:, 1])
        c = v.mean(axis=0)
        c /= np.linalg.norm(c)
        a, b = v, np.roll(v, -1, axis=0)
        num = np.einsum("ij,ij->i", c[None, :].repeat(len(a), 0), np.cross(a, b))
        den = 1.0 + a @ c + np.einsum("ij,ij->i", a, b) + b @ c
        return abs(float(np.sum(2.0 * np.arctan2(num, den)))) * R_SPHERE ** 2

    total = 0.0
    for p in shapely.get_parts(geom):
        total += ring_area(np.asarray(p.exterior.coords))
        total -= sum(ring_area(np.asarray(r.coords)) for r in p.interiors)
    return total


ORACLE_CASES = {   # what the shapes are, as the core reads them (core/geometry.py)
    "lease_long_edge": ODD["lease_long_edge"],
    "box_10deg_70N": ODD["box_10deg_70N"],
    "long_diagonal_60S": ODD["long_diagonal_60S"],
    "polar_cap_strip": ODD["polar_cap_strip"],
    "pole_vertex_any_lon": box(0.0, 89.99, 0.1, 90.0),           # the pole vertex settled
    "across_180": MultiPolygon([box(179.9, -17.0, 180.0, -16.9), box(-180.0, -17.0, -179.9, -16.9)]),
    "beyond_180": box(-175.0, 10.0, -174.8, 10.1),
    "holed": ODD["holed"],
}


@pytest.mark.parametrize("name", sorted(ORACLE_CASES))
def test_the_area_model_against_two_independent_oracles(name):
    ours = geodesic_area_m2([ODD[name]])[0]
    shape = ORACLE_CASES[name]
    assert ours == pytest.approx(dense_area(shape), rel=2e-7)            # pyproj, edges cut short
    if name != "polar_cap_strip":      # a fan from the mean direction needs the ring off the pole
        assert ours == pytest.approx(excess_area(shape), rel=2e-6)
    b = shape.bounds
    if shape.equals(box(*b)):          # a lon/lat box: R² Δλ (sin φ1 − sin φ0), exactly
        assert ours == pytest.approx(box_area(*b), rel=1e-12)


def box_area(x0, y0, x1, y1):
    """R² Δλ (sin φ1 − sin φ0), the difference of sines written as a product (no digit lost
    next to a pole, where lonlat_box_area's 1 − sin 89.99° keeps 8 digits)."""
    return (R_SPHERE ** 2 * math.radians(x1 - x0) * 2.0 * math.cos(math.radians(y0 + y1) / 2)
            * math.sin(math.radians(y1 - y0) / 2))


def test_the_bow_tie_and_the_one_metre_polygon():
    tie, metre = geodesic_area_m2([ODD["bow_tie"], ODD["one_metre"]])
    lobes = shapely.MultiPolygon([Polygon([(30.0, 0.0), (30.005, 0.005), (30.0, 0.01)]),
                                  Polygon([(30.01, 0.0), (30.01, 0.01), (30.005, 0.005)])])
    assert tie == pytest.approx(dense_area(lobes), rel=1e-7)           # both lobes, not cancelled
    assert metre == pytest.approx(box_area(9.0, 47.0, 9.0 + 1.3e-5, 47.0 + 9e-6), rel=1e-12)
    assert metre == pytest.approx(1.3e-5 * 9e-6 * math.radians(1) ** 2 * R_SPHERE ** 2
                                  * math.cos(math.radians(47.0)), rel=1e-5)
