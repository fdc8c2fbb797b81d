"""Fuzz of the harmonise core: merge_polygons and harmonise_points never raise anything but a
one-sentence InputError, keep every input (or report why not), conserve the area of the union
and give the same answer in any feature order and on every run."""
import importlib.util

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from fuzz_cases import commodity_text, examples, is_one_sentence, point, polygon
from harmonise_checks import dense_area, lonlat_box_area, union_area
from mine_clusters.core import InputError
from mine_clusters.core.harmonise import (PointSource, PolygonSource, harmonise_points,
                                          merge_polygons)

HAVE_PYPROJ = importlib.util.find_spec("pyproj") is not None   # the independent area measure
GOOD_POLYGONS = ["box", "box", "box", "triangle", "hole", "multi", "bowtie", "zero_area",
                 "spike", "repeated", "multi_empty_part", "empty", "null"]
SOURCE_NAMES = ["Maus", "Tang", "OSM", "osm", "Ærø mines", "a/b", "x;y", "GEM:2022", " ", ""]
TABLE = {"gold": "Gold", "lead;zinc": "Lead, Zinc", "copper/gold": "Copper, Gold",
         "iron ore": "Iron", "straße": "Strasse", "processing": "", "ｇｏｌｄ": "Gold"}


@st.composite
def polygon_sources(draw, kinds=GOOD_POLYGONS, names=SOURCE_NAMES, unique_ids=True):
    n_src = draw(st.integers(1, 3))
    src_names = draw(st.lists(st.sampled_from(names), min_size=n_src, max_size=n_src))
    sources = []
    for name in src_names:
        n = draw(st.integers(0, 8))
        geoms = [draw(polygon(kinds))[1] for _ in range(n)]
        if unique_ids:
            ids = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n, unique=True))
        else:
            ids = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        sources.append(PolygonSource(name, geoms, ids))
    return sources


def shuffle_sources(sources, data):
    out = []
    for s in sources:
        perm = data.draw(st.permutations(range(len(s.ids))))
        out.append(PolygonSource(s.name, [s.geometries[i] for i in perm],
                                 [s.ids[i] for i in perm]))
    return out


def merged_groups(res):
    return sorted((tuple(sorted(map(repr, m))), s) for m, s in zip(res.members, res.sources))


def crosses_antimeridian(g):
    return g is not None and not g.is_empty and (g.bounds[2] - g.bounds[0] > 180.0)


def check_merge(sources, res):
    names = [s.name for s in sources]
    inputs = [(s.name, i) for s in sources for i in s.ids]
    kept = [tuple(m) for ms in res.members for m in ms]
    dropped = [(s, i) for s, i, reason in res.dropped]
    assert all(isinstance(r, str) and r.strip() for _, _, r in res.dropped)
    assert sorted(map(repr, kept + dropped)) == sorted(map(repr, inputs))
    assert res.n_in == len(inputs)
    for g, s, n, m in zip(res.geometries, res.sources, res.n_inputs, res.members):
        assert g.geom_type in ("Polygon", "MultiPolygon") and g.is_valid and not g.is_empty
        assert n == len(m)
        contributing = [nm for nm in names if any(src == nm for src, _ in m)]
        assert s == "/".join(contributing)
        assert g.bounds[0] >= -180.0 and g.bounds[2] <= 180.0
    # merged polygons neither overlap nor touch each other, nor across the antimeridian
    if len(res.geometries) > 1:
        tree = shapely.STRtree(res.geometries)
        a, b = tree.query(res.geometries, predicate="intersects")
        assert np.all(a == b)
        shifted = shapely.transform(np.asarray(res.geometries, dtype=object),
                                    lambda c: c - np.array([360.0, 0.0]))
        a, b = tree.query(shifted, predicate="intersects")
        assert np.all(a == b)
    if not HAVE_PYPROJ:
        return
    # each area with straight lon/lat edges, measured by pyproj on short edge pieces
    for g, area in zip(res.geometries, res.area_m2):
        assert area == pytest.approx(dense_area(g), rel=1e-6, abs=1e-3)
    # area of the union of the inputs: computed independently when no input wraps around the
    # antimeridian (those are split by the merge first)
    geoms = [g for s in sources for g in s.geometries]
    if not any(crosses_antimeridian(g) for g in geoms):
        expected = union_area(geoms)
        assert float(res.area_m2.sum()) == pytest.approx(expected, rel=1e-6, abs=1e-3)


@examples(150)
@given(sources=polygon_sources())
def test_merge_polygons_keeps_everything_and_the_area_of_the_union(sources):
    try:
        res = merge_polygons(sources)
    except InputError as exc:
        names = [s.name for s in sources]
        assert (len(set(names)) < len(names) or any(not n.strip() or "/" in n or ";" in n
                                                    or ":" in n for n in names)), str(exc)
        assert is_one_sentence(str(exc)), str(exc)
        return
    check_merge(sources, res)
    again = merge_polygons(sources)
    assert merged_groups(again) == merged_groups(res)
    np.testing.assert_array_equal(again.area_m2, res.area_m2)
    assert [g.wkb for g in again.geometries] == [g.wkb for g in res.geometries]


@examples(100)
@given(sources=polygon_sources(names=["Maus", "Tang", "OSM"]).filter(
    lambda ss: len({s.name for s in ss}) == len(ss)), data=st.data())
def test_merge_polygons_does_not_depend_on_feature_order(sources, data):
    a = merge_polygons(sources)
    b = merge_polygons(shuffle_sources(sources, data))
    assert merged_groups(a) == merged_groups(b)
    assert sorted(a.area_m2.tolist()) == pytest.approx(sorted(b.area_m2.tolist()), rel=1e-9)
    assert sorted(map(repr, a.dropped)) == sorted(map(repr, b.dropped))


@examples(40)
@given(sources=polygon_sources(kinds=["nan", "lon_beyond", "lon_beyond_360", "lat_beyond", "box"],
                               names=["Maus", "Tang", "OSM"]).filter(
    lambda ss: len({s.name for s in ss}) == len(ss)))
def test_merge_polygons_with_broken_coordinates(sources):
    """NaN or out-of-range coordinates: a one-sentence InputError, or a clean merge."""
    try:
        res = merge_polygons(sources)
    except InputError as exc:
        assert is_one_sentence(str(exc)), str(exc)
        return
    check_merge(sources, res)
    assert np.all(np.isfinite(res.area_m2))


@st.composite
def point_sources(draw, kinds=("point", "point", "multipoint", "multipoint_empty_part",
                               "empty", "empty_multi", "null", "duplicate_parts")):
    out = []
    for name in draw(st.lists(st.sampled_from(["ICMM", "Jasansky", "GEM", "ICMM"]),
                              min_size=1, max_size=3)):
        n = draw(st.integers(0, 10))
        geoms = [draw(point(list(kinds)))[1] for _ in range(n)]
        ids = draw(st.lists(st.one_of(st.integers(0, 5), st.text(max_size=3), st.none()),
                            min_size=n, max_size=n))
        primary = [draw(st.one_of(commodity_text(), st.sampled_from(["Processing",
                                                                     " processing ;Gold"])))
                   for _ in range(n)]
        others = [[draw(commodity_text()) for _ in range(n)]
                  for _ in range(draw(st.integers(0, 2)))]
        if draw(st.booleans()):
            others.append(["Coal"] * n)                  # a constant, as for GEM
        out.append(PointSource(name, geoms, ids, primary, others))
    return out


def point_rows(res):
    return sorted((s, i, p, c, shapely.to_wkb(g)) for s, i, p, c, g in zip(
        res.source, [repr(x) for x in res.source_id], [repr(x) for x in res.primary_commodity],
        [repr(x) for x in res.commodities], res.points))


@examples(150)
@given(sources=point_sources(), table=st.sampled_from([None, TABLE, {}]), data=st.data())
def test_harmonise_points_keeps_every_point_and_is_order_free(sources, table, data):
    res = harmonise_points(sources, table=table)
    # every input feature gives one row per non-empty part, or is dropped with a reason
    expected_rows, expected_drops = 0, 0
    for s in sources:
        for g in s.geometries:
            parts = [] if g is None or g.is_empty else [
                p for p in shapely.get_parts(g) if not p.is_empty]
            expected_rows += len(parts)
            expected_drops += not parts
    n_in = sum(len(s.ids) for s in sources)
    assert res.n_in == n_in
    dropped_for_primary = [d for d in res.dropped if d[2].startswith("primary commodity")]
    assert len(res.dropped) - len(dropped_for_primary) == expected_drops
    assert all(isinstance(r, str) and r.strip() for _, _, r in res.dropped)
    assert len(res.points) <= expected_rows
    assert list(res.point_id) == list(range(1, len(res.points) + 1))
    for g, p, c in zip(res.points, res.primary_commodity, res.commodities):
        assert g.geom_type == "Point" and not g.is_empty
        if p is not None:
            assert c is not None and set(p.split(",")) <= set(c.split(","))
            assert all(name == name.strip() and name for name in p.split(","))
    # again, and with every layer's features shuffled: the same rows
    assert point_rows(harmonise_points(sources, table=table)) == point_rows(res)
    shuffled = []
    for s in sources:
        perm = data.draw(st.permutations(range(len(s.ids))))
        shuffled.append(PointSource(s.name, [s.geometries[i] for i in perm],
                                    [s.ids[i] for i in perm], [s.primary[i] for i in perm],
                                    [[o[i] for i in perm] for o in s.others]))
    assert point_rows(harmonise_points(shuffled, table=table)) == point_rows(res)


@examples(60)
@given(sources=point_sources(kinds=("point", "multipoint", "nan", "lon_beyond", "lon_beyond_360", "lat_beyond")))
def test_harmonise_points_with_broken_coordinates(sources):
    """NaN, latitudes beyond ±90: one sentence; longitudes up to ±360: wrapped to ±180."""
    try:
        res = harmonise_points(sources)
    except InputError as exc:
        assert is_one_sentence(str(exc)), str(exc)
        assert "point source" in str(exc)
        return
    for g in res.points:
        assert -180.0 <= g.x <= 180.0 and -90.0 <= g.y <= 90.0


def test_points_beyond_the_antimeridian_are_wrapped_and_nan_is_refused():
    src = PointSource("GEM", [shapely.Point(190.0, 5.0), shapely.Point(-185.0, 5.0)], [1, 2],
                      ["Coal", "Coal"])
    res = harmonise_points([src])
    assert [(round(p.x, 9), p.y) for p in res.points] == [(-170.0, 5.0), (175.0, 5.0)]
    bad = PointSource("GEM", [shapely.Point(float("nan"), 5.0)], [7], ["Coal"])
    with pytest.raises(InputError, match=r"^Feature 7 of the point source 'GEM' has a coordinate "
                                         r"that is not a number"):
        harmonise_points([bad])


def test_polygon_with_a_nan_coordinate_is_refused_in_one_sentence():
    """Regression: a NaN vertex used to end in a GEOSException from make_valid."""
    bad = shapely.Polygon([(0, 0), (float("nan"), 0), (0, 1)])
    with pytest.raises(InputError, match=r"^Feature 4 of the polygon source 'OSM' has a "
                                         r"coordinate that is not a number \(nan, 0\.0\)"):
        merge_polygons([PolygonSource("OSM", [shapely.box(0, 0, 1, 1), bad], [3, 4])])


def test_a_reprojected_line_drawn_as_a_polygon_joins_nothing():
    """Regression: a zero-area polygon along a parallel, read from UTM, is a sliver whose
    vertices are 1e-12° off a line; it used to merge the two boxes it touches into one polygon
    with a collapsed spike whose area came out 36 m² short."""
    sliver = shapely.Polygon([(9.0, 47.0), (9.01, 47.0 + 1e-12), (9.02, 47.0)])
    a, b = shapely.box(9.0, 47.0, 9.01, 47.01), shapely.box(9.015, 47.0, 9.025, 47.01)
    res = merge_polygons([PolygonSource("Maus", [a, b, sliver], [1, 2, 3])])
    assert res.n_inputs.tolist() == [1, 1]
    assert [d[1] for d in res.dropped] == [3]
    assert res.area_m2.sum() == pytest.approx(lonlat_box_area(9.0, 47.0, 9.01, 47.01)
                                              + lonlat_box_area(9.015, 47.0, 9.025, 47.01),
                                              rel=1e-7)
