"""Input checks, dropped features, determinism, progress and cancel of the core API."""
import math
import struct

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mine_clusters.core import Cancelled, InputError, cluster_mines, prepare_features
from mine_clusters.core.geometry import cluster_polygons, cluster_polygons_wkb, known_shapes, make_valid_polygonal
from mine_clusters.core.linkage import single_linkage_forest

from layouts import box_m, destination, offset, random_layout


def _layout(seed=3, lon=25.0, lat=60.0):
    rng = np.random.default_rng(seed)
    return random_layout(rng, lon, lat, 30, 15, 6000.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(polygons=[shapely.Polygon([(0, 0), (1, float("nan")), (1, 1)])], polygon_ids=[7]),
     r"polygons layer's feature 7 has a coordinate that is not a number"),
    # the core's one coordinate rule (core/geometry.py): longitudes up to ±360° are one turn
    # away (200° is -160°); beyond, refused
    (dict(points=[shapely.Point(540.0, 10.0)], point_ids=[42], primary=["Gold"]),
     r"points layer's feature 42 has the coordinate \(540.0, 10.0\) outside longitude -360..360"),
    (dict(points=[shapely.Point(10.0, -91.0)], point_ids=[5], primary=["Gold"]), r"feature 5 .* outside"),
    (dict(polygons=[shapely.box(0, 0, 0.01, 0.01)], polygon_ids=[3], polygon_areas=[-1.0]),
     r"feature 3 has the area -1.0 m²"),
    (dict(polygons=[shapely.box(0, 0, 0.01, 0.01)], polygon_ids=[3], polygon_areas=[float("nan")]),
     r"feature 3 has the area nan m²"),
    (dict(polygons=[shapely.Point(0, 0)], polygon_ids=[8]), r"feature 8 is a Point; the polygons layer takes only"),
    (dict(points=[shapely.box(0, 0, 1, 1)], point_ids=[9], primary=["x"]), r"feature 9 is a Polygon"),
    (dict(points=[shapely.Point(0, 0)], point_ids=[1, 2], primary=["x"]), r"1 geometries but 2 ids"),
    (dict(points=[shapely.Point(math.nan, 5.0)], point_ids=[6], primary=["Gold"]),
     r"points layer's feature 6 has a coordinate that is not a number \(nan, 5.0\)"),
    (dict(points=[shapely.MultiPoint([(1.0, 2.0), (3.0, math.inf)])], point_ids=[4], primary=["Gold"]),
     r"points layer's feature 4 has the infinite coordinate \(3.0, inf\) in longitude/latitude"),
    (dict(polygons=[shapely.box(0, 0, 0.01, 0.01)] * 2, polygon_ids=[1, "x7"]),
     r"polygons layer's feature id 'x7' \(position 1 in the list\) is not a 64-bit integer"),
    (dict(polygons=[shapely.box(0, 0, 0.01, 0.01)] * 2, polygon_ids=[1, 2.5]),
     r"polygons layer's feature id 2.5 \(position 1 in the list\) is not a 64-bit integer"),
    (dict(points=[shapely.Point(0, 0)], point_ids=[math.nan], primary=["x"]),
     r"points layer's feature id nan \(position 0 in the list\) is not a 64-bit integer"),
    (dict(points=[shapely.Point(0, 0)], point_ids=[2 ** 64], primary=["x"]),
     r"feature id 18446744073709551616 \(position 0 in the list\)"),
])
def test_bad_input_names_feature_and_value(kwargs, message):
    with pytest.raises(InputError, match=message):
        prepare_features(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(h_limit_m=0.0), r"H_limit must be a positive distance"),
    (dict(h_limit_m=-5.0), r"H_limit must be a positive distance"),
    (dict(thresholds_m=[1000.0, 25000.0]), r"25000 m is above the pre-grouping limit"),
    (dict(weight=1.5), r"weight w must be between 0 and 1, got 1.5"),
    (dict(weight=-0.1), r"weight w must be between 0 and 1"),
    (dict(max_threshold_m=1500.0), r"H_max = 1500 m is not one of the candidate thresholds"),
    (dict(threshold_step_m=30000.0), r"larger than H_limit"),
    (dict(method="median"), r"method must be one of"),
])
def test_bad_parameters(kwargs, message):
    f = prepare_features([shapely.box(0, 0, 0.01, 0.01)], [1], None, [shapely.Point(0, 0)], [1], ["Gold"])
    with pytest.raises(InputError, match=message):
        cluster_mines(f, **kwargs)


def test_integral_ids_of_other_types_are_taken_as_integers():
    f = prepare_features([shapely.box(0, 0, 0.01, 0.01)] * 3, [3.0, np.int32(4), " 12 "])
    assert sorted(f.feature_id) == [3, 4, 12] and f.feature_id.dtype == np.int64


def test_point_nan_nan_is_the_empty_point_and_is_dropped():
    """POINT (NaN NaN) is how WKB writes an empty point (QGIS too); GEOS reads it back as POINT
    EMPTY, so it follows the empty-geometry rule: dropped and reported. A NaN next to a number
    raises (see test_bad_input_names_feature_and_value)."""
    # Read from WKB, as QGIS hands geometries over: GEOS 3.11 also builds Point(nan, nan) and
    # MULTIPOINT ((nan nan), ...) from coordinates as empty, GEOS 3.15 (Debian forky) as points
    # with NaN coordinates, which the coordinate rule refuses (test_bad_input_names_feature_and_value).
    empty_wkb = bytes.fromhex("0101000000000000000000f87f000000000000f87f")
    nan_part = struct.pack("<BII", 1, 4, 2) + struct.pack("<BIdd", 1, 1, math.nan, math.nan) \
        + struct.pack("<BIdd", 1, 1, 1.001, 2.0)
    pts = [shapely.from_wkb(empty_wkb), shapely.from_wkb(empty_wkb), shapely.Point(1.0, 2.0),
           shapely.from_wkb(nan_part)]
    f = prepare_features([], [], None, pts, [1, 2, 3, 4], ["Gold"] * 4)
    assert sorted(f.dropped) == [("points", 1, "empty geometry"), ("points", 2, "empty geometry")]
    assert list(f.feature_id) == [3, 4] and list(f.part) == [0, 1]


def test_prepare_features_reports_progress_and_can_be_cancelled_while_measuring_areas():
    polys, pts, prim = _layout()
    polys = polys * 400                       # > 10,000 polygons: areas in several tasks
    seen = []
    f = prepare_features(polys, None, None, pts, None, prim, progress=seen.append, should_stop=lambda: False)
    assert len(f) == len(polys) + len(f.part[f.kind == 1])
    assert seen[0] == 0.0 and seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:]))
    assert any(0.15 < r < 0.8 for r in seen)  # inside the area computation
    for stop_after in (0, 1, 3, 5):
        calls = []

        def should_stop():
            calls.append(1)
            return len(calls) > stop_after

        with pytest.raises(Cancelled):
            prepare_features(polys, None, None, pts, None, prim, should_stop=should_stop)
    # A cancel that comes while the areas are being measured stops there.
    during = []

    def stop_in_areas():
        return bool(during) and 0.15 < during[-1] < 0.8

    with pytest.raises(Cancelled):
        prepare_features(polys, None, None, pts, None, prim, progress=during.append, should_stop=stop_in_areas)
    assert during[-1] < 0.8


def test_null_and_empty_geometries_are_dropped_and_reported():
    polys = [shapely.box(0, 0, 0.01, 0.01), None, shapely.Polygon(), shapely.box(0.02, 0, 0.03, 0.01)]
    pts = [shapely.Point(0.005, 0.005), shapely.Point(), None, shapely.MultiPoint([(0.025, 0.005), (0.5, 0.5)])]
    f = prepare_features(polys, [10, 11, 12, 13], None, pts, [1, 2, 3, 4], ["Gold", "Coal", "Coal", "Copper"])
    r = cluster_mines(f)
    assert sorted(r.dropped) == [("points", 2, "empty geometry"), ("points", 3, "null geometry"),
                                 ("polygons", 11, "null geometry"), ("polygons", 12, "empty geometry")]
    # Nothing lost: every input id is in an output table or in the drop list.
    out = {("polygons", i) for i in r.polygons.feature_id} | {("points", i) for i in r.points.feature_id}
    assert out | {(layer, i) for layer, i, _ in r.dropped} == \
        {("polygons", i) for i in (10, 11, 12, 13)} | {("points", i) for i in (1, 2, 3, 4)}
    # The MultiPoint gives two rows with the parent's id, parts 0 and 1.
    assert list(r.points.feature_id) == [1, 4, 4] and list(r.points.part) == [0, 0, 1]


def test_same_features_in_any_order_give_the_same_clusters_and_ids():
    polys, pts, prim = _layout()
    f = prepare_features(polys, range(100, 100 + len(polys)), None, pts, range(len(pts)), prim)
    a = cluster_mines(f)
    rng = np.random.default_rng(0)
    pp, qp = rng.permutation(len(polys)), rng.permutation(len(pts))
    g = prepare_features([polys[k] for k in pp], [100 + k for k in pp], None, [pts[k] for k in qp], list(qp),
                         [prim[k] for k in qp])
    b = cluster_mines(g)
    ida = dict(zip(a.polygons.feature_id, a.polygons.cluster_id))
    idb = dict(zip(b.polygons.feature_id, b.polygons.cluster_id))
    assert ida == idb
    assert dict(zip(zip(a.points.feature_id, a.points.part), a.points.cluster_id)) == \
        dict(zip(zip(b.points.feature_id, b.points.part), b.points.cluster_id))
    assert a.max_threshold_m == b.max_threshold_m
    np.testing.assert_allclose(a.local_curve.distance, b.local_curve.distance, rtol=1e-12)
    assert a.clusters.primary_commodities == b.clusters.primary_commodities


def test_progress_is_monotone_and_reaches_one():
    polys, pts, prim = _layout()
    seen = []
    cluster_mines(prepare_features(polys, None, None, pts, None, prim), progress=seen.append)
    assert seen[-1] == 1.0 and all(b >= a for a, b in zip(seen, seen[1:])) and len(seen) > 5


@pytest.mark.parametrize("stop_after", [0, 1, 3, 10])
def test_cancel_at_several_points(stop_after):
    polys, pts, prim = _layout()
    f = prepare_features(polys, None, None, pts, None, prim)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > stop_after

    with pytest.raises(Cancelled):
        cluster_mines(f, should_stop=should_stop)


def test_cluster_summary_reconciles_with_elements():
    polys, pts, prim = _layout(seed=11, lon=-179.99, lat=-70.0)
    f = prepare_features(polys, None, None, pts, None, prim)
    r = cluster_mines(f)
    assert r.clusters.area_m2.sum() == pytest.approx(r.polygons.area_m2.sum(), rel=1e-12)
    assert r.clusters.n_polygons.sum() == len(r.polygons) and r.clusters.n_points.sum() == len(r.points)
    assert r.groups.area_m2.sum() == pytest.approx(r.total_area_m2, rel=1e-12)
    for cid, mp in cluster_polygons(r, polys):
        assert mp.geom_type == "MultiPolygon" and not mp.is_empty
    un = sum(a for a, s in zip(r.polygons.area_m2, r.polygons.status) if s == "unassigned")
    assert r.area_unassigned_pct == pytest.approx(100 * un / r.total_area_m2)
    assert r.area_unassigned_pct == pytest.approx(r.local_curve.area_unassigned_pct[r.local_curve.chosen_index])
    rows = r.sensitivity_rows()
    assert len(rows) == 2 * len(r.thresholds_m) and sum(row["chosen"] for row in rows) == 2


def test_multipoint_parts_keep_their_position_and_empty_parts_are_skipped():
    mp = shapely.from_wkt("MULTIPOINT (EMPTY, (1 2), (1.001 2))")
    f = prepare_features([], [], None, [mp, shapely.from_wkt("MULTIPOINT (EMPTY, EMPTY)")], [5, 6], ["Gold", "Coal"])
    r = cluster_mines(f)
    assert list(r.points.feature_id) == [5, 5] and list(r.points.part) == [1, 2]
    assert r.dropped == [("points", 6, "empty geometry")]


@pytest.mark.parametrize("polys, pts, n_clusters, unassigned", [
    ([], [], 0, 0.0),                                             # nothing at all
    ([None], [None], 0, 0.0),                                     # everything dropped
    ([shapely.box(0, 0, 0.01, 0.01)], [], 1, 100.0),              # polygons only
    ([], [shapely.Point(1, 1)], 1, 0.0),                          # points only
    ([shapely.box(0, 0, 0.01, 0.01)] * 3, [shapely.Point(0, 0)] * 3, 1, 0.0),  # all identical
])
def test_degenerate_inputs(polys, pts, n_clusters, unassigned):
    r = cluster_mines(prepare_features(polys, None, None, pts, None, ["Gold"] * len(pts)))
    assert r.n_clusters == n_clusters
    assert r.area_unassigned_pct == unassigned
    assert len(r.polygons) + len(r.points) + len(r.dropped) == len(polys) + len(pts)


def test_cluster_polygons_equal_the_union_of_each_cluster():
    polys, pts, prim = _layout(seed=5, lon=179.995, lat=10.0)
    polys.append(shapely.Polygon([(179.99, 10.0), (179.995, 10.005), (179.99, 10.005), (179.995, 10.0)]))  # bow-tie
    r = cluster_mines(prepare_features(polys, None, None, pts, None, prim), threshold_step_m=500.0)
    out = dict(cluster_polygons(r, polys))
    assert sorted(out) == sorted(set(r.polygons.cluster_id))
    for cid in out:
        members = [shapely.make_valid(polys[k]) for k, c in zip(r.polygons.index, r.polygons.cluster_id) if c == cid]
        expected = shapely.union_all(members)
        assert out[cid].geom_type == "MultiPolygon"
        assert shapely.symmetric_difference(out[cid], expected).area <= 1e-9 * max(expected.area, 1e-12)


@pytest.mark.parametrize("clusters_at_a_time", [10000, 1, 3])
def test_cluster_polygons_wkb_is_the_wkb_of_cluster_polygons(monkeypatch, clusters_at_a_time):
    """The writers' WKB path: byte for byte the WKB of the shapely MultiPolygons, with unions,
    repaired bow-ties, MultiPolygon inputs and a zero-area polygon (a line once repaired), alone
    in its cluster (no shape) and beside a real polygon (that polygon only); a repair that gives a
    collection keeps its polygons; an EMPTY part stays a part in both. The WKB made for all the
    clusters at once, for one at a time, for three at a time."""
    from mine_clusters.core import geometry

    monkeypatch.setattr(geometry, "_WKB_CLUSTERS", clusters_at_a_time)
    polys, pts, prim = _layout(seed=5, lon=179.995, lat=10.0)
    polys.append(shapely.Polygon([(179.99, 10.0), (179.995, 10.005), (179.99, 10.005), (179.995, 10.0)]))  # bow-tie
    polys.append(shapely.MultiPolygon([shapely.box(20.0, 0.0, 20.01, 0.01), shapely.box(20.02, 0.0, 20.03, 0.01)]))
    polys.append(shapely.box(20.005, 0.005, 20.025, 0.006))  # overlaps both parts above
    polys.append(shapely.Polygon([(40.0, 0.0), (40.01, 0.01), (40.0, 0.0)]))  # alone: no area
    polys.append(shapely.Polygon([(60.0, 0.0), (60.01, 0.01), (60.0, 0.0)]))  # beside a box
    polys.append(shapely.box(60.01, 0.0, 60.02, 0.01))  # touches it
    # A bow-tie with a spike: make_valid gives GEOMETRYCOLLECTION (MULTIPOLYGON (..), LINESTRING):
    # its two triangles are the cluster's shape (they were lost while only top-level polygons
    # were kept).
    polys.append(shapely.Polygon([(80.0, 0.0), (80.02, 0.02), (80.02, 0.0), (80.0, 0.02), (80.0, 0.0),
                                  (79.99, -0.01), (80.0, 0.0)]))
    polys.append(shapely.from_wkt("MULTIPOLYGON (EMPTY, ((100 0, 100.01 0, 100.01 0.01, 100 0)))"))
    polys.append(shapely.Polygon([(120.0, 0.0, 5.0), (120.01, 0.0, 5.0), (120.0, 0.01, 5.0)]))  # Z
    polys.append(shapely.GeometryCollection([shapely.box(140.0, 0.0, 140.01, 0.01)]))
    features = prepare_features(polys, None, None, pts, None, prim)
    r = cluster_mines(features, threshold_step_m=500.0)
    expected = list(cluster_polygons(r, polys))
    ids, wkbs = cluster_polygons_wkb(r, polys)
    assert ids == [cid for cid, _ in expected]
    assert wkbs == list(shapely.to_wkb([g for _, g in expected], output_dimension=2, byte_order=1))
    # with their boxes for a writer's index: exactly the boxes of the shapes written
    with_boxes = cluster_polygons_wkb(r, polys, with_bounds=True)
    assert with_boxes[:2] == (ids, wkbs)
    np.testing.assert_array_equal(with_boxes[2], shapely.bounds(shapely.from_wkb(wkbs)))
    # what prepare_features checked and repaired is not checked or repaired again: the same
    # bytes. Known are the polygons it took as they are (the objects themselves) and the ones only
    # its repair changed (the bow-ties: their repaired shapes); not the lines drawn as polygons (no
    # polygon left), the Z one, the collection, the ones cut at the antimeridian, nor a polygon of
    # another list
    known = known_shapes(features, polys)
    assert cluster_polygons_wkb(r, polys, known=known) == (ids, wkbs)
    n = len(polys)
    parts, owner = shapely.get_parts(polys, return_index=True)
    box = shapely.bounds(parts)
    across = np.unique(owner[box[:, 2] - box[:, 0] > 180.0])  # a part drawn across the antimeridian
    assert len(across) == 2
    have = ~shapely.is_missing(known)
    assert sorted(np.flatnonzero(~have)) == sorted([*across, n - 7, n - 6, n - 2, n - 1])
    repaired = [n - 10, n - 4]
    assert all(known[k] is polys[k] for k in np.flatnonzero(have) if k not in repaired)
    for k in repaired:
        assert not shapely.is_valid(polys[k]) and known[k] is not polys[k]
        assert shapely.equals_exact(known[k], make_valid_polygonal(polys[k]), 0.0)
    assert shapely.is_valid(known[have]).all()
    copies = list(shapely.from_wkb(shapely.to_wkb(polys)))  # the same shapes, other objects
    assert shapely.is_missing(known_shapes(features, copies)).all()
    polys, n = polys[:-2], n - 2
    by_id = dict(zip(ids, shapely.from_wkb(wkbs)))

    def cluster_of(k):
        return r.polygons.cluster_id[r.polygons.index == k][0]

    n = len(polys)
    alone, beside = cluster_of(n - 5), cluster_of(n - 3)
    assert alone not in by_id and alone != beside
    assert cluster_of(n - 4) == beside
    assert by_id[beside].equals(shapely.MultiPolygon([polys[n - 3]]))
    joined = cluster_of(n - 6)
    assert len(by_id[joined].geoms) == 1 and by_id[joined].area == pytest.approx(
        shapely.union_all(polys[n - 7:n - 5]).area, rel=1e-12)
    spiked = by_id[cluster_of(n - 2)]
    assert len(spiked.geoms) == 2 and spiked.area == pytest.approx(2 * 0.5 * 0.02 * 0.01, rel=1e-9)
    assert by_id[cluster_of(n - 1)].area == pytest.approx(0.5 * 0.01 * 0.01, rel=1e-9)


def test_cluster_geometry_is_a_function_of_the_result():
    """ClusterResult is a plain record: its shapes come from core.geometry, which gives none
    without polygons (points only) and raises Cancelled when asked to stop."""
    from mine_clusters.core import ClusterResult
    assert not [name for name in dir(ClusterResult) if "polygon" in name or "merged" in name]
    r = cluster_mines(prepare_features([], [], None, [shapely.Point(1, 1)], None, ["Gold"]))
    assert list(cluster_polygons(r, [])) == [] and cluster_polygons_wkb(r, []) == ([], [])
    polys, pts, prim = _layout(seed=5)
    r = cluster_mines(prepare_features(polys, None, None, pts, None, prim))
    with pytest.raises(Cancelled):
        cluster_polygons_wkb(r, polys, should_stop=lambda: True)
    with pytest.raises(Cancelled):
        list(cluster_polygons(r, polys, should_stop=lambda: True))


def _corner_pair(lon, lat, east, north, bearing, gap):
    """Two boxes whose nearest points are a corner of each, exactly `gap` metres apart on the
    sphere: A ends at (lon, lat) + (east, north) m, B starts `gap` away along `bearing` (0-90°)."""
    o = offset(lon, lat, east, north)
    a = box_m(*o, -300.0, -200.0, 300.0, 200.0)
    b = box_m(*destination(*o, bearing, gap), 0.0, 0.0, 250.0, 350.0)
    return a, b


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(corners=st.lists(st.tuples(st.integers(-180, 179), st.sampled_from([-89, -86, -70, 60, 75, 85, 86, 88]),
                                  st.floats(-700.0, 700.0), st.floats(-700.0, 700.0), st.floats(15.0, 75.0),
                                  st.integers(1, 3)), min_size=1, max_size=4),
       data=st.data())
def test_shuffled_features_without_ids_give_the_same_partition(corners, data):
    """Pairs of polygons across 1° tile boundaries (high latitudes, ±180) at exactly 1-3 km: the
    partition does not depend on the input order when ids are omitted (nor on the ids)."""
    polys = []
    for lon, lat, east, north, bearing, km in corners:
        polys += _corner_pair(float(lon), float(lat), east, north, bearing, 1000.0 * km)
    perm = data.draw(st.permutations(range(len(polys))))

    def partition(order, ids):
        geoms = [polys[k] for k in order]
        f = prepare_features(geoms, ids, [1.0] * len(geoms))
        r = cluster_mines(f, h_limit_m=3000.0, thresholds_m=[1000.0, 2000.0, 3000.0], method="global",
                          max_threshold_m=1000.0)
        forest_labels = single_linkage_forest(f, 3000.0)
        cuts = {h: frozenset(frozenset(shapely.to_wkb(f.geoms[e]) for e in np.flatnonzero(lab == c))
                             for c in np.unique(lab))
                for h in (1000.0, 2000.0, 3000.0) for lab in [forest_labels.labels(h)]}
        final = frozenset(frozenset(shapely.to_wkb(geoms[k]) for k in r.polygons.index[r.polygons.cluster_id == c])
                          for c in np.unique(r.polygons.cluster_id))
        return cuts, final

    first = partition(range(len(polys)), None)
    assert partition(perm, None) == first
    assert partition(list(reversed(range(len(polys)))), None) == first
    assert partition(range(len(polys)), [10 ** 6 - k for k in range(len(polys))]) == first


def test_the_package_exports_every_operation_and_every_schema():
    """harmonise, cluster, footprint and validate, their schemas and the naming rule: all from
    mine_clusters.core (core/API.md), every name resolving to its module's own object."""
    import importlib

    import mine_clusters.core as core
    from mine_clusters.core import schema

    for name in core.__all__:
        assert getattr(core, name) is getattr(importlib.import_module(
            f"mine_clusters.core.{core._EXPORTS[name]}"), name), name
    schemas = {n for n in dir(schema) if n.endswith("_FIELDS")}
    assert schemas <= set(core.__all__), schemas - set(core.__all__)
    for op in ("merge_polygons", "harmonise_points", "prepare_features", "cluster_mines",
               "cluster_polygons", "mine_polygons", "regions", "summarise", "validate_clusters"):
        assert op in core.__all__, op


def test_the_four_operations_chain_through_the_public_api():
    """A notebook's pipeline with the package's names only: two overlapping sources merged, the
    points harmonised, clustered, summarised and validated; areas agree across the steps."""
    from shapely.geometry import Point, box

    from mine_clusters.core import (
        COMMODITY_FIELDS, PAIR_FIELDS, POINT_FIELDS, POLYGON_FIELDS, PointSource, PolygonSource,
        cluster_mines, harmonise_points, merge_polygons, mine_polygons, prepare_features, regions,
        summarise, validate_clusters)

    a = [box(10.0, 10.0, 10.01, 10.01), box(20.0, 0.0, 20.01, 0.01)]
    b = [box(10.005, 10.0, 10.02, 10.01)]  # overlaps a[0]: one merged polygon
    merged = merge_polygons([PolygonSource("A", a, [1, 2]), PolygonSource("B", b, [7])])
    assert len(merged.geometries) == 2 and set(next(iter(merged.rows()))) == {n for n, _ in POLYGON_FIELDS}
    pts = harmonise_points([PointSource("P", [Point(10.01, 10.005), Point(20.005, 0.005)], ["x", "y"],
                                        ["gold", "Copper; gold"])], table={"gold": "Gold"})
    assert set(next(iter(pts.rows()))) == {n for n, _ in POINT_FIELDS}
    features = prepare_features(polygons=merged.geometries, polygon_ids=list(merged.polygon_id),
                                polygon_areas=list(merged.area_m2), points=pts.points,
                                point_ids=list(pts.point_id), primary=pts.primary_commodity,
                                commodities=pts.commodities)
    result = cluster_mines(features)
    table = result.polygons
    polys = mine_polygons(merged.geometries, table.feature_id.tolist(), table.cluster_id.tolist(),
                          table.primary_commodities, status=table.status, area_m2=table.area_m2.tolist())
    world = regions([box(0, -10, 15, 20), box(15, -10, 30, 20)], ["West", "East"])
    summary = summarise(polys, countries=world, cell_size_m=None)
    assert summary.total_area_m2 == pytest.approx(float(merged.area_m2.sum()), rel=1e-12)
    assert {r["commodity"] for r in summary.commodity_rows} == {"Gold", "Copper"}
    assert set(summary.commodity_rows[0]) >= {n for n, _ in COMMODITY_FIELDS}
    assert {r["region"] for r in summary.country_rows} == {"West", "East"}
    checked = validate_clusters(merged.geometries, table.feature_id.tolist(), table.cluster_id.tolist(),
                       table.primary_commodities, [box(10.0, 10.0, 10.001, 10.001)], [5], ["Gold"],
                       reference_names=["Mine five"])
    assert [(p["feature_id"], p["match"], p["reference_name"]) for p in checked.pairs] == \
        [(1, "full", "Mine five")]
    assert set(checked.pairs[0]) - {"index"} == {n for n, _ in PAIR_FIELDS}


@pytest.mark.parametrize("cells", [8192, 16])
def test_grouped_unions_are_the_union_of_each_group(monkeypatch, cells):
    """The clusters' unions made many groups per call (rows padded with None) give the bytes
    shapely.union_all gives group by group: groups of 2 to 70 overlapping polygons (sizes at and
    across powers of two), holes, touching and disjoint members, in any order of the array."""
    from mine_clusters.core import geometry

    monkeypatch.setattr(geometry, "_UNION_CELLS", cells)   # 16: a call per few groups
    rng = np.random.default_rng(11)
    g, sizes = [], rng.choice([2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 64, 70], 120)
    for k, n in enumerate(sizes):
        x0, y0 = rng.uniform(-170, 170), rng.uniform(-60, 60)
        for _ in range(n):
            x, y = x0 + rng.uniform(0, 0.05), y0 + rng.uniform(0, 0.05)
            p = shapely.box(x, y, x + rng.uniform(0.001, 0.03), y + rng.uniform(0.001, 0.03))
            if rng.random() < 0.2:
                p = p.difference(p.centroid.buffer(0.0005))       # a hole
            g.append(p)
    g = np.asarray(g, dtype=object)
    perm = rng.permutation(len(g))
    g = g[perm]
    group = np.repeat(np.arange(len(sizes)), sizes)[perm]
    order = np.argsort(group, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)]
    groups = np.arange(len(sizes))
    got = geometry._unions(g, order, starts, groups)
    expected = [shapely.union_all(g[order[starts[k]:starts[k + 1]]]) for k in groups]
    assert list(shapely.to_wkb(got)) == list(shapely.to_wkb(expected))
    # a subset of the groups, as _merged_pieces passes only those of two or more pieces
    some = np.sort(rng.choice(groups, 40, replace=False))
    assert list(shapely.to_wkb(geometry._unions(g, order, starts, some))) == \
        list(shapely.to_wkb([expected[k] for k in some]))
