"""Fuzz of prepare_features + cluster_mines: odd and broken layers give a result or a
one-sentence InputError, never another exception; nothing is lost; area is conserved; the
answer depends neither on the feature order nor on the run."""
import math

import numpy as np
import pytest
import shapely
from hypothesis import event, given
from hypothesis import strategies as st

from fuzz_cases import examples, is_one_sentence, layers
from mine_clusters.core import InputError, cluster_mines, prepare_features
from mine_clusters.core.geodesy import geodesic_area_m2

SMALL = dict(h_limit_m=5000.0, threshold_step_m=1000.0)


def run(case, **kw):
    features = prepare_features(
        polygons=case.polygons, polygon_ids=case.polygon_ids, polygon_areas=case.areas,
        points=case.points, point_ids=case.point_ids, primary=case.primary,
        commodities=case.commodities)
    return cluster_mines(features, **{**SMALL, **kw})


def run_or_error(case, **kw):
    try:
        return run(case, **kw), None
    except InputError as exc:
        return None, str(exc)


def usable(g):
    return g is not None and not g.is_empty


def point_parts(g):
    """Indices of the non-empty parts of a point feature (their position in the MultiPoint)."""
    parts = shapely.get_parts(g)
    return [k for k, p in enumerate(parts) if not p.is_empty]


def key(case, layer, index, part):
    """A feature's identity that survives reordering: layer, id, part and its coordinates."""
    if layer == "polygons":
        return ("p", case.polygon_ids[index], 0, shapely.to_wkb(case.polygons[index]))
    g = shapely.get_parts(case.points[index])[part]
    return ("q", case.point_ids[index], int(part), shapely.to_wkb(g))


def per_element(case, res):
    """{feature key: sorted list of (cluster_id, threshold, primaries, commodities, status)}."""
    out = {}
    for layer, table in (("polygons", res.polygons), ("points", res.points)):
        for r in range(len(table)):
            k = key(case, layer, int(table.index[r]), int(table.part[r]))
            out.setdefault(k, []).append((int(table.cluster_id[r]), float(table.threshold_m[r]),
                                          table.primary_commodities[r], table.commodities[r],
                                          table.status[r]))
    return {k: sorted(v, key=repr) for k, v in out.items()}


def partition(case, res):
    members = {}
    for layer, table in (("polygons", res.polygons), ("points", res.points)):
        for r in range(len(table)):
            members.setdefault(int(table.cluster_id[r]), []).append(
                key(case, layer, int(table.index[r]), int(table.part[r])))
    return sorted(tuple(sorted(v)) for v in members.values())


def check_accounting(case, res):
    """Every input feature is in an output table or in the drop list with its reason."""
    dropped = {}
    for layer, fid, reason in res.dropped:
        assert layer in ("polygons", "points") and isinstance(reason, str) and reason.strip()
        dropped.setdefault((layer, fid), []).append(reason)
    kept_p = list(res.polygons.index)
    assert len(kept_p) == len(set(kept_p))               # one row per polygon feature
    n_drop_p = sum(len(v) for (l, _), v in dropped.items() if l == "polygons")
    assert len(kept_p) + n_drop_p == len(case.polygons)
    for i, g in enumerate(case.polygons):
        if usable(g):
            assert i in kept_p
            assert list(res.polygons.feature_id[res.polygons.index == i]) == [case.polygon_ids[i]]
        else:
            assert ("polygons", case.polygon_ids[i]) in dropped
    rows = {}
    for r in range(len(res.points)):
        rows.setdefault(int(res.points.index[r]), []).append(int(res.points.part[r]))
    n_drop_q = sum(len(v) for (l, _), v in dropped.items() if l == "points")
    assert len(rows) + n_drop_q == len(case.points)
    for i, g in enumerate(case.points):
        parts = point_parts(g) if usable(g) else []
        if parts:
            assert sorted(rows[i]) == parts               # one row per non-empty part
        else:
            assert i not in rows and ("points", case.point_ids[i]) in dropped


def check_area(case, res):
    """Total area in (given areas, else the sphere's) = total area out, in every table."""
    expected = 0.0
    for i, g in enumerate(case.polygons):
        if not usable(g):
            continue
        a = None if case.areas is None else case.areas[i]
        expected += float(geodesic_area_m2([g])[0]) if a is None else float(a)
    tol = dict(rel=1e-9, abs=1e-6)
    assert res.total_area_m2 == pytest.approx(expected, **tol)
    assert float(np.sum(res.polygons.area_m2)) == pytest.approx(expected, **tol)
    assert float(np.sum(res.clusters.area_m2)) == pytest.approx(expected, **tol)
    assert float(np.sum(res.groups.area_m2)) == pytest.approx(expected, **tol)
    assert not np.any(res.points.area_m2)


def check_tables(res):
    k = res.n_clusters
    assert list(res.clusters.cluster_id) == list(range(1, k + 1))
    assert int(res.clusters.n_polygons.sum()) == len(res.polygons)
    assert int(res.clusters.n_points.sum()) == len(res.points)
    for table in (res.polygons, res.points):
        assert all(1 <= c <= k for c in table.cluster_id)
    for prim, comm, status in zip(res.clusters.primary_commodities, res.clusters.commodities,
                                  res.clusters.status):
        n = 0 if prim is None else len(prim.split(","))
        assert status == ("unassigned" if n == 0 else "assigned" if n == 1 else "multiple")
        if prim is not None:
            assert set(prim.split(",")) <= set(comm.split(","))
    for name in ("area_unassigned_pct", "area_multi_pct", "max_threshold_m",
                 "global_threshold_m"):
        assert math.isfinite(getattr(res, name)), name
    assert 0.0 <= res.area_unassigned_pct <= 100.0 + 1e-9
    assert res.max_threshold_m in set(res.thresholds_m.tolist())
    rows = res.sensitivity_rows()
    assert sum(r["chosen"] for r in rows) == 2


def same_result(a, b):
    """Two results of the same input are identical, field by field."""
    for table in ("polygons", "points", "clusters", "groups"):
        ta, tb = getattr(a, table), getattr(b, table)
        for name in ta.__dataclass_fields__:
            va, vb = getattr(ta, name), getattr(tb, name)
            if isinstance(va, np.ndarray):
                np.testing.assert_array_equal(va, vb, err_msg=f"{table}.{name}")
            else:
                assert va == vb, f"{table}.{name}"
    for curve in ("global_curve", "local_curve"):
        ca, cb = getattr(a, curve), getattr(b, curve)
        for name in ("threshold_m", "area_unassigned_pct", "area_multi_pct", "distance"):
            np.testing.assert_array_equal(getattr(ca, name), getattr(cb, name))
        assert ca.chosen_index == cb.chosen_index
    assert a.dropped == b.dropped
    assert (a.max_threshold_m, a.global_threshold_m, a.total_area_m2) == \
        (b.max_threshold_m, b.global_threshold_m, b.total_area_m2)


@examples(400)
@given(case=layers(), method=st.sampled_from(["local", "global"]),
       formula=st.sampled_from(["eq1", "r"]), weight=st.sampled_from([0.0, 0.5, 1.0]))
def test_any_layer_gives_a_result_or_one_input_error(case, method, formula, weight):
    res, err = run_or_error(case, method=method, formula=formula, weight=weight)
    event("refused" if err else "clustered")
    if err is not None:
        assert case.bad, f"clean input refused: {err}"
        assert is_one_sentence(err), err
        assert "polygons" in err or "points" in err, err
        return
    assert not case.bad, "a NaN/out-of-range coordinate or a bad area went through"
    check_accounting(case, res)
    check_area(case, res)
    check_tables(res)
    same_result(res, run(case, method=method, formula=formula, weight=weight))


@examples(250)
@given(case=layers(allow_bad_areas=False, unique_ids=True,
                   polygon_kinds=["box", "box", "triangle", "hole", "multi", "multi_far", "bowtie",
                                  "zero_area", "spike", "repeated", "multi_empty_part", "empty",
                                  "null"],
                   point_kinds=["point", "point", "multipoint", "multipoint_empty_part",
                                "empty", "empty_multi", "null", "duplicate_parts"]),
       data=st.data())
def test_partition_does_not_depend_on_feature_order(case, data):
    pp = data.draw(st.permutations(range(len(case.polygons))))
    qp = data.draw(st.permutations(range(len(case.points))))
    shuffled = case.permuted(pp, qp)
    a, b = run(case), run(shuffled)
    assert partition(case, a) == partition(shuffled, b)
    # same feature ids -> same cluster ids, thresholds, commodity sets and status
    assert per_element(case, a) == per_element(shuffled, b)
    assert sorted(a.dropped) == sorted(b.dropped)
    np.testing.assert_array_equal(a.local_curve.distance, b.local_curve.distance)
    np.testing.assert_array_equal(a.global_curve.distance, b.global_curve.distance)


@examples(100)
@given(case=layers(allow_bad_areas=False, unique_ids=False,
                   polygon_kinds=["box", "triangle", "multi", "multi_far", "empty", "null"],
                   point_kinds=["point", "multipoint", "empty", "null"]),
       data=st.data())
def test_duplicate_ids_keep_every_feature_and_the_partition(case, data):
    pp = data.draw(st.permutations(range(len(case.polygons))))
    qp = data.draw(st.permutations(range(len(case.points))))
    shuffled = case.permuted(pp, qp)
    a, b = run(case), run(shuffled)
    check_accounting(case, a)
    assert partition(case, a) == partition(shuffled, b)
    assert per_element(case, a) == per_element(shuffled, b)


@pytest.mark.parametrize("lon", [180.0, -180.0])
def test_a_cluster_across_the_antimeridian_is_one_cluster(lon):
    """Two points 1.1 km apart on either side of ±180 are one cluster at 2 km."""
    pts = [shapely.Point(lon, 10.0), shapely.Point(-lon + (0.01 if lon > 0 else -0.01), 10.0)]
    res = cluster_mines(prepare_features(points=pts, point_ids=[1, 2], primary=["Gold", "Gold"]),
                        h_limit_m=2000.0, thresholds_m=[2000.0])
    assert len(set(res.points.cluster_id)) == 1


def test_a_bow_tie_polygon_keeps_the_area_of_both_lobes():
    bowtie = shapely.Polygon([(10, 10), (10.01, 10.01), (10.01, 10), (10, 10.01)])
    lobes = shapely.get_parts(shapely.make_valid(bowtie))
    expected = float(geodesic_area_m2(lobes).sum())      # about 0.6 km²
    features = prepare_features(polygons=[bowtie], polygon_ids=[1])
    assert features.area_m2[0] == pytest.approx(expected, rel=1e-6)


def test_one_giant_group_of_twenty_thousand_features():
    """A jittered lattice of 16,000 polygons and 4,000 points ~2-3 km apart: one pre-group at
    H_limit = 5 km. Nothing lost, area conserved, same answer when shuffled and run again."""
    from fuzz_cases import Layers
    rng = np.random.default_rng(7)
    i, j = np.meshgrid(np.arange(200), np.arange(100))
    x = (9 + 0.025 * i + rng.uniform(-0.003, 0.003, i.shape)).ravel()
    y = (45 + 0.025 * j + rng.uniform(-0.003, 0.003, i.shape)).ravel()
    is_poly = rng.uniform(size=x.size) < 0.8
    polys = list(shapely.box(x[is_poly], y[is_poly], x[is_poly] + 0.002, y[is_poly] + 0.002))
    pts = list(shapely.points(x[~is_poly], y[~is_poly]))
    case = Layers(polygons=polys, polygon_kinds=["box"] * len(polys),
                  polygon_ids=list(range(len(polys))), area_kinds=["missing"] * len(polys),
                  points=pts, point_kinds=["point"] * len(pts),
                  point_ids=list(range(10**6, 10**6 + len(pts))),
                  primary=rng.choice(["Gold", "Sand", "Coal,Gold", "NA"], len(pts)).tolist())
    res = run(case)
    assert res.stats["pregroups"] == 1 and res.stats["largest_pregroup"] == 20000
    check_accounting(case, res)
    check_area(case, res)
    check_tables(res)
    shuffled = case.permuted(rng.permutation(len(polys)).tolist(),
                             rng.permutation(len(pts)).tolist())
    again = run(shuffled)
    assert partition(case, res) == partition(shuffled, again)
    assert per_element(case, res) == per_element(shuffled, again)
    same_result(res, run(case))
