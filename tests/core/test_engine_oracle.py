"""The engine against brute force: distances on the sphere from the input geometries alone, a
dense matrix + fastcluster single linkage + a cut per h, and the METHOD.md optimisation written
independently (tests/core/oracle.py)."""
import csv

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mine_clusters.core import cluster_mines, prepare_features
from mine_clusters.core.engine import candidate_thresholds
from mine_clusters.core.features import POINT
from mine_clusters.core.linkage import single_linkage_forest

from layouts import random_layout
from oracle import brute_force_cuts, brute_force_optimum, canonical
from realdata import have_shared, read_geojson, read_gpkg, shared_path

# Centres: equator, mid and high latitudes, near both poles, on both sides of the antimeridian.
CENTRES = [(10.0, 0.0), (25.0, 60.0), (-70.0, 85.0), (140.0, -85.0), (179.99, 0.5), (-179.995, 64.0),
           (180.0, -30.0), (0.0, 89.9)]


def engine_cuts(features, h_limit, thresholds):
    forest = single_linkage_forest(features, h_limit)
    # A spanning forest of the features: one edge fewer than features per pre-group, no loops
    # (a feature's parts are one node, so no second edge between the same two features).
    assert len(forest.weight_m) == len(features) - len(set(forest.labels(h_limit)))
    assert not np.any(forest.u == forest.v)
    return {h: forest.labels(h) for h in thresholds}


def engine_partition(features, result):
    """Final partition and thresholds of the result, indexed like the features' elements."""
    by_key = {}
    for table, kind in ((result.polygons, 0), (result.points, POINT)):
        for r in range(len(table)):
            by_key[(kind, int(table.index[r]), int(table.part[r]))] = (int(table.cluster_id[r]),
                                                                       float(table.threshold_m[r]))
    rows = [by_key[(int(k), int(i), int(p))] for k, i, p in zip(features.kind, features.index, features.part)]
    return canonical([r[0] for r in rows]), [r[1] for r in rows]


def check_against_oracle(features, h_limit, step, weight=0.5, formula="eq1", max_threshold=None, method="local"):
    """Asserts the engine's cuts where the sphere decides them and its optimum on those cuts.

    Returns the result and the number of cuts that a link within the distance tolerance of the
    threshold leaves undecided (there the optimum is checked on the engine's own cut)."""
    thresholds = list(candidate_thresholds(h_limit, None, step))
    all_h = sorted(set(thresholds + [h_limit]))
    oracle_cuts = brute_force_cuts(features, all_h)
    ours = engine_cuts(features, h_limit, all_h)
    undecided = 0
    for h in all_h:
        if oracle_cuts[h] is None:
            undecided += 1
            continue
        assert canonical(ours[h]) == canonical(oracle_cuts[h]), f"partition differs at h = {h} m"
    cuts = {h: oracle_cuts[h] if oracle_cuts[h] is not None else list(ours[h]) for h in all_h}
    want = brute_force_optimum(features, thresholds, cuts, weight, formula, max_threshold, method)
    res = cluster_mines(features, h_limit_m=h_limit, threshold_step_m=step, weight=weight, formula=formula,
                        max_threshold_m=max_threshold, method=method)
    part, thr = engine_partition(features, res)
    assert res.global_threshold_m == want["global_threshold_m"]
    assert res.max_threshold_m == want["max_threshold_m"]
    assert part == want["partition"]
    assert thr == want["threshold_m"]
    total = float(features.area_m2.sum())
    if total > 0:
        np.testing.assert_allclose(res.local_curve.area_unassigned_pct, 100 * np.array(want["local_au"]) / total,
                                   rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(res.global_curve.area_multi_pct, 100 * np.array(want["global_am"]) / total,
                                   rtol=1e-9, atol=1e-9)
    return res, undecided


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), centre=st.sampled_from(CENTRES),
       n_polygons=st.integers(0, 20), n_points=st.integers(0, 12), spread=st.sampled_from([800.0, 3000.0, 9000.0]),
       weight=st.sampled_from([0.0, 0.3, 0.5, 1.0]), formula=st.sampled_from(["eq1", "r"]),
       method=st.sampled_from(["local", "global"]), far_parts=st.booleans())
def test_random_layouts_match_brute_force(seed, centre, n_polygons, n_points, spread, weight, formula, method,
                                          far_parts):
    rng = np.random.default_rng(seed)
    polys, pts, primary = random_layout(rng, centre[0], centre[1], n_polygons, n_points, spread,
                                        far_parts=far_parts)
    if not polys and not pts:
        return
    features = prepare_features(polys, range(len(polys)), None, pts, range(len(pts)), primary)
    _, undecided = check_against_oracle(features, 5000.0, 1000.0, weight, formula, method=method)
    event(f"undecided cuts: {undecided}")
    assert undecided <= 1     # links within ~1e-4 of a threshold are rare: the check has teeth


def test_multipart_features_far_apart_match_brute_force():
    """MultiPolygons whose parts lie 5-100° apart, with neighbours of the far parts 0.5-6 km away."""
    undecided = 0
    for seed, (lon, lat) in enumerate(CENTRES):
        rng = np.random.default_rng(100 + seed)
        polys, pts, primary = random_layout(rng, lon, lat, 8, 6, 4000.0, far_parts=True)
        assert any(g.geom_type == "MultiPolygon" and g.bounds[2] - g.bounds[0] > 5 for g in polys)
        features = prepare_features(polys, range(len(polys)), None, pts, range(len(pts)), primary)
        undecided += check_against_oracle(features, 6000.0, 1000.0)[1]
    assert undecided <= 1


def test_fixed_max_threshold_matches_brute_force():
    rng = np.random.default_rng(7)
    polys, pts, primary = random_layout(rng, 179.99, 70.0, 25, 10, 6000.0)
    features = prepare_features(polys, range(len(polys)), None, pts, range(len(pts)), primary)
    res = check_against_oracle(features, 5000.0, 1000.0, max_threshold=3000.0)[0]
    assert res.max_threshold_m == 3000.0
    assert set(res.groups.chosen_threshold_m) <= {1000.0, 2000.0, 3000.0}


def test_groups_across_the_antimeridian_are_one_cluster():
    # Two boxes 200 m either side of ±180 at 64° N join at 1 km, whichever side they are on.
    from layouts import box_m
    a = box_m(179.999, 64.0, -300.0, 0.0, 100.0, 100.0)
    b = box_m(-179.999, 64.0, 200.0, 0.0, 100.0, 100.0)
    features = prepare_features([a, b], [1, 2], None, [a.centroid], [9], ["Gold"])
    res = cluster_mines(features, h_limit_m=2000.0, threshold_step_m=1000.0)
    assert len(set(res.polygons.cluster_id)) == 1
    assert res.polygons.primary_commodities == ["Gold", "Gold"]


def _real_inputs(bbox, max_polygons=None):
    polys, props = read_geojson(shared_path("maus2020-v1-india-brazil", "indian_polygon_with_grId.geojson"), bbox)
    if max_polygons:
        polys, props = polys[:max_polygons], props[:max_polygons]
    pts, prim = [], []
    g, p = read_geojson(shared_path("icmm-global-mining-dataset-2025", "mines.geojson"), bbox)
    pts += g
    prim += [q.get("primaryCommodity") for q in p]
    g, p = read_gpkg(shared_path("jasansky2022-facilities-prerelease", "facilities.gpkg"), "facilities", bbox)
    pts += g
    prim += [q.get("primary_commodity") for q in p]
    with open(shared_path("gem-global-coal-mine-tracker-2022-07", "Global-Coal-Mine-Tracker-July-2022.csv"),
              encoding="latin-1") as fh:
        import shapely
        for row in csv.DictReader(fh):
            try:
                x, y = float(row["Longitude"]), float(row["Latitude"])
            except ValueError:
                continue
            if bbox[0] <= x <= bbox[2] and bbox[1] <= y <= bbox[3]:
                pts.append(shapely.Point(x, y))
                prim.append("Coal")
    return polys, [int(q["fid"]) for q in props], pts, prim


@pytest.mark.skipif(not have_shared(), reason="the shared real data are not here")
@pytest.mark.parametrize("bbox", [(82.0, 20.0, 88.0, 25.0), (72.0, 14.0, 78.0, 22.0)])
def test_real_india_polygons_and_points_match_brute_force(bbox):
    """Maus India polygons with ICMM, Jasansky and GEM coal points: the whole region, brute force."""
    polys, pids, pts, prim = _real_inputs(bbox)
    assert len(polys) > 100 and len(pts) > 20
    features = prepare_features(polys, pids, None, pts, range(len(pts)), prim)
    res = check_against_oracle(features, 20000.0, 1000.0)[0]
    assert res.n_clusters < len(features)
    assert {"assigned", "unassigned"} <= set(res.polygons.status)


def test_bundled_real_sample_matches_brute_force(repo_root):
    """The bundled real subset (Maus polygons, ICMM/Jasansky/GEM points, eastern India): always here."""
    import os
    sample = os.path.join(repo_root, "resources", "sample")
    polys, pprops = read_gpkg(os.path.join(sample, "mine_polygons.gpkg"), "mine_polygons")
    pts, qprops = read_gpkg(os.path.join(sample, "mine_points.gpkg"), "mine_points")
    assert len(polys) > 300 and len(pts) > 300
    features = prepare_features(polys, [p["fid"] for p in pprops], None, pts, [q["fid"] for q in qprops],
                                [q["primary_commodity"] for q in qprops], [q["commodities"] for q in qprops])
    res = check_against_oracle(features, 20000.0, 1000.0)[0]
    assert len(res.points) == len(pts) and len(res.polygons) == len(polys)
    assert {"assigned", "unassigned"} <= set(res.polygons.status)
