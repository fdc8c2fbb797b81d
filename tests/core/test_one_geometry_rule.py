"""One geometry rule (core/geometry.py, core/API.md "Geometry rules"): the same odd coordinate or
shape gets the same decision from the core entry of every operation — harmonise polygons,
harmonise points, the clustering (prepare_features + cluster_mines), footprint (mine_polygons)
and validate: kept as the same shape with the same area, or refused with the same sentence.
"""
import math

import numpy as np
import pytest
import shapely
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Point, Polygon, box

from mine_clusters.core import InputError, cluster_mines, prepare_features
from mine_clusters.core.footprint import mine_polygons
from mine_clusters.core.geodesy import polygon_area_m2
from mine_clusters.core.harmonise import PointSource, PolygonSource, harmonise_points, merge_polygons
from mine_clusters.core.validate import validate

KEPT, REFUSED = "kept", "refused"

#: name -> (polygon as drawn, what the rule makes of it: a shape, or the refusal's wording)
POLYGONS = {
    "lon_185": (box(185.0, 10.0, 185.01, 10.01), MultiPolygon([box(-175.0, 10.0, -174.99, 10.01)])),
    "lon_minus_180.0000001": (box(-180.0000001, 10.0, -179.99, 10.01),
                              MultiPolygon([box(-180.0, 10.0, -179.99, 10.01),
                                            box(179.9999999, 10.0, 180.0, 10.01)])),
    "lat_90.0000001": (Polygon([(10.0, 89.99), (10.01, 89.99), (10.0, 90.0000001)]),
                       "outside longitude -360..360 / latitude -90..90"),
    "nan": (Polygon([(10.0, 10.0), (math.nan, 10.0), (10.0, 10.01)]), "not a number"),
    "inf": (Polygon([(10.0, 10.0), (math.inf, 10.0), (10.0, 10.01)]), "infinite coordinate"),
    "ring_touching_a_pole": (Polygon([(0.0, 89.99), (0.1, 89.99), (123.0, 90.0)]), box(0.0, 89.99, 0.1, 90.0)),
    "across_180": (Polygon([(179.99, 10.0), (-179.99, 10.0), (-179.99, 10.01), (179.99, 10.01)]),
                   MultiPolygon([box(179.99, 10.0, 180.0, 10.01), box(-180.0, 10.0, -179.99, 10.01)])),
    "bow_tie": (Polygon([(30.0, 0.0), (30.01, 0.01), (30.01, 0.0), (30.0, 0.01)]),
                MultiPolygon([Polygon([(30.0, 0.0), (30.005, 0.005), (30.0, 0.01)]),
                              Polygon([(30.01, 0.0), (30.01, 0.01), (30.005, 0.005)])])),
    "collection_polygon_and_line": (GeometryCollection([box(40.0, 0.0, 40.01, 0.01),
                                                        LineString([(41.0, 0.0), (41.1, 0.1)])]),
                                    box(40.0, 0.0, 40.01, 0.01)),
}

#: name -> (point as given, the point the rule keeps, or the refusal's wording)
POINTS = {
    "lon_185": (Point(185.0, 10.0), Point(-175.0, 10.0)),
    "lon_minus_180.0000001": (Point(-180.0000001, 10.0), Point(179.9999999, 10.0)),
    "lat_90.0000001": (Point(10.0, 90.0000001), "outside longitude -360..360 / latitude -90..90"),
    "nan": (Point(math.nan, 10.0), "not a number"),
    "inf": (Point(math.inf, 10.0), "infinite coordinate"),
    "on_a_pole": (Point(123.0, 90.0), Point(123.0, 90.0)),
    "lon_540": (Point(540.0, 10.0), "outside longitude -360..360 / latitude -90..90"),
}


def decision(fn):
    """(KEPT, (geometry, area)) or (REFUSED, the sentence from 'has' on)."""
    try:
        return KEPT, fn()
    except InputError as exc:
        text = str(exc)
        assert text.count(". ") == 0 and text.endswith("."), text
        return REFUSED, text[text.index(" has "):]


def harmonise_polygon(g):
    res = merge_polygons([PolygonSource("S", [g], [1])])
    assert not res.dropped
    return res.geometries[0], res.area_m2[0]


def cluster_polygon(g):
    f = prepare_features(polygons=[g], polygon_ids=[1])
    res = cluster_mines(f)
    assert res.polygons.area_m2[0] == f.area_m2[0]
    return f.geoms[0], f.area_m2[0]


def footprint_polygon(g):
    p = mine_polygons([g], [1], [1], ["Gold"])
    return p.geoms[0], p.area_m2[0]


def validate_polygon(g, expected):
    """The validation reads the shape it compares: a reference drawn where the rule puts the
    polygon pairs with it, one a degree east of there does not (a band round the globe, the
    polygon as drawn beyond 180° or with its pole vertex's longitude would meet it or miss both)."""
    shape = shapely.normalize(expected)
    far = shapely.transform(shape, lambda c: c + np.array([1.0, 0.0]))
    res = validate([g], [1], [1], ["Gold"], [shape, far], [10, 11], ["Gold", "Gold"])
    assert [p["reference_id"] for p in res.pairs] == [10], res.pairs
    return shape, None


@pytest.mark.parametrize("name", sorted(POLYGONS))
def test_every_operation_reads_a_polygon_the_same_way(name):
    g, expected = POLYGONS[name]
    reference = box(0, 0, 1, 1) if isinstance(expected, str) else expected
    got = {op: decision(lambda: fn(g)) for op, fn in (
        ("harmonise", harmonise_polygon), ("cluster", cluster_polygon), ("footprint", footprint_polygon),
        ("validate", lambda h: validate_polygon(h, reference)))}
    kinds = {op: d[0] for op, d in got.items()}
    if isinstance(expected, str):
        assert set(kinds.values()) == {REFUSED}, got
        sentences = {d[1] for d in got.values()}
        assert len(sentences) == 1, sentences           # word for word, after the feature's name
        assert expected in sentences.pop()
        return
    assert set(kinds.values()) == {KEPT}, got
    shapes = {op: d[1][0] for op, d in got.items()}
    for op, shape in shapes.items():
        assert shape.geom_type in ("Polygon", "MultiPolygon"), (op, shape)
        assert shapely.normalize(shape).equals_exact(shapely.normalize(expected), 1e-12), (op, shape)
    # harmonise, cluster and footprint: the very same geometry and bit for bit the same area
    wkb = {op: shapely.to_wkb(shapely.normalize(shapes[op])) for op in ("harmonise", "cluster", "footprint")}
    assert len(set(wkb.values())) == 1, wkb
    areas = {op: got[op][1][1] for op in ("harmonise", "cluster", "footprint")}
    assert len(set(areas.values())) == 1, areas
    assert areas["cluster"] == polygon_area_m2([shapes["cluster"]])[0]
    b = shapely.bounds(shapes["cluster"])
    assert -180.0 <= b[0] and b[2] <= 180.0 and -90.0 <= b[1] and b[3] <= 90.0


def harmonise_point(p):
    res = harmonise_points([PointSource("S", [p], [1], ["Gold"])], table={})
    assert not res.dropped
    return res.points[0], None


def cluster_point(p):
    f = prepare_features(points=[p], point_ids=[1], primary=["Gold"])
    cluster_mines(f)
    return f.geoms[0], None


@pytest.mark.parametrize("name", sorted(POINTS))
def test_every_operation_reads_a_point_the_same_way(name):
    p, expected = POINTS[name]
    got = {op: decision(lambda: fn(p)) for op, fn in (("harmonise", harmonise_point), ("cluster", cluster_point))}
    if isinstance(expected, str):
        assert {d[0] for d in got.values()} == {REFUSED}, got
        sentences = {d[1] for d in got.values()}
        assert len(sentences) == 1, sentences
        assert expected in sentences.pop()
        return
    assert {d[0] for d in got.values()} == {KEPT}, got
    xy = {op: (point.x, point.y) for op, (_, (point, _)) in got.items()}
    assert len(set(xy.values())) == 1, xy                 # the same point, bit for bit
    assert xy["cluster"] == pytest.approx((expected.x, expected.y), abs=1e-12)


def test_a_reprojection_s_noise_at_the_limits_is_no_error():
    """1e-10° beyond ±90° or ±180° (what a transform gives for a vertex on the line) is read,
    not refused, by every operation."""
    noisy = Polygon([(179.9, 89.9), (180.0000000001, 89.9), (180.0000000001, 90.0000000001), (179.9, 90.0)])
    for fn in (harmonise_polygon, cluster_polygon, footprint_polygon):
        shape, area = fn(noisy)
        assert area == pytest.approx(polygon_area_m2([box(179.9, 89.9, 180.0, 90.0)])[0], rel=1e-6)


def test_a_read_geometry_reads_again_unchanged():
    """The reading is a fixed point (what makes areas identical down the pipeline): the kept
    shapes of every case above, and harmonise's merged output of all of them, read again are the
    same geometries, byte for byte."""
    from mine_clusters.core.geometry import read_polygons
    kept = [g for g, e in POLYGONS.values() if not isinstance(e, str)]
    once = read_polygons(kept, list(range(len(kept)))).geoms
    twice = read_polygons(once, list(range(len(kept)))).geoms
    assert list(shapely.to_wkb(once)) == list(shapely.to_wkb(twice))
    merged = merge_polygons([PolygonSource("S", kept + [box(0.0, 89.99, 0.2, 90.0), box(0.2, 89.99, 0.3, 90.0)],
                                           list(range(len(kept) + 2)))]).geometries
    again = read_polygons(merged, list(range(len(merged)))).geoms
    assert list(shapely.to_wkb(np.asarray(merged, dtype=object))) == list(shapely.to_wkb(again))


@pytest.mark.parametrize("start", [0, 9, 18, 30, 37])
@pytest.mark.parametrize("pole", [-90.0, 90.0])
def test_a_ring_closed_along_a_pole_is_a_cap_whatever_its_first_vertex(start, pole):
    """A polar cap drawn as shapefiles draw it (round the globe, then along the pole from 180°
    back to -180°) keeps its area and shape: the step along the pole is the pole's edge, not a
    crossing of the antimeridian, wherever the ring starts."""
    lon = np.arange(-180.0, 181.0, 10.0)
    edge = [(x, np.sign(pole) * (70.0 + 5 * np.sin(np.radians(3 * x)))) for x in lon]
    ring = edge + [(180.0, pole), (-180.0, pole)]
    ring = ring[start:] + ring[:start]
    cap = Polygon(ring + [ring[0]])
    assert cap.is_valid
    got = footprint_polygon(cap)
    assert got[1] == pytest.approx(polygon_area_m2([cap])[0], rel=1e-12)
    assert shapely.normalize(shapely.union_all(shapely.get_parts(got[0]))).equals_exact(
        shapely.normalize(cap), 1e-9)
    assert cluster_polygon(cap)[1] == got[1] and harmonise_polygon(cap)[1] == got[1]
